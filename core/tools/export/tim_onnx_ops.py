"""Building blocks, searchable ops and cells of the TIM networks, mirroring
core/src/nn/ops.cpp and cells.cpp module for module: the same state-dict
names, the same padding (reflection in the stems' ConvLayer, zeros elsewhere)
and the same order of operations. Inference only (see tim_onnx_net.py)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

OP_TYPES = {"Residualblocks", "Denseblocks", "ECAattention", "SPAattention", "DilConv", "SepConv", "Identity"}


def parse_op(name):
    """'DilConv_3_2' -> ('DilConv', 3, 2), as core's OpName::parse (kernel 3, dilation 1 by default)."""
    parts = name.split("_")
    kernel = int(parts[1]) if len(parts) > 1 else 3
    dilation = int(parts[2]) if len(parts) > 2 else 1
    return parts[0], kernel, dilation


# ---------------------------------------------------------------- building blocks


def conv(cin, cout, k, dilation=1, groups=1, bias=False):
    """core's conv_opts: zero padding d*(k-1)/2, no bias unless asked."""
    return nn.Conv2d(cin, cout, k, padding=dilation * (k - 1) // 2, dilation=dilation, groups=groups, bias=bias)


class ConvLayer(nn.Module):
    """Reflection padding (mirror without repeating the edge) + Conv2d with bias."""

    def __init__(self, cin, cout, k, dilation=1):
        super().__init__()
        self.pad = dilation * (k - 1) // 2
        self.conv2d = nn.Conv2d(cin, cout, k, dilation=dilation)

    def forward(self, x):
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return self.conv2d(x)


class BasicConv(nn.Module):
    def __init__(self, cin, cout, k, dilation=1, groups=1):
        super().__init__()
        self.conv = conv(cin, cout, k, dilation, groups)

    def forward(self, x):
        return self.conv(x)


class ReLUConvBN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(), conv(c, c, 1), nn.BatchNorm2d(c))

    def forward(self, x):
        return self.op(x)


class ResidualModule(nn.Module):  # Residualblocks_k_d: x + PReLU(BN(pw(dw3x3_d2(dw_kxk_d(x)))))
    def __init__(self, c, k, d):
        super().__init__()
        self.op = nn.Sequential(BasicConv(c, c, k, d, c), conv(c, c, 3, 2, c), conv(c, c, 1), nn.BatchNorm2d(c),
                                nn.PReLU())

    def forward(self, x):
        return x + self.op(x)


class ResidualDenseBlock(nn.Module):  # Denseblocks_k_d
    def __init__(self, c, k, d):
        super().__init__()
        self.conv1 = BasicConv(c, c, k, d, c)
        self.conv2 = BasicConv(2 * c, c, k, d, c)
        self.conv3 = BasicConv(3 * c, c, k, d, c)
        self.lrelu = nn.PReLU()

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat([x, x1], 1)))
        x3 = self.lrelu(self.conv3(torch.cat([x, x1, x2], 1)))
        return x3 * 0.333 + x


class EcaLayer(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, x):
        s = x.mean((2, 3)).unsqueeze(1)                   # [B,1,C]
        a = torch.sigmoid(self.conv(s)).squeeze(1)       # [B,C]
        return x * a.unsqueeze(-1).unsqueeze(-1)


class EcaBasicBlock(nn.Module):  # ECAattention_k: PReLU(conv3x3(eca(x)))
    def __init__(self, c, k):
        super().__init__()
        self.conv1 = conv(c, c, 3)
        self.se = EcaLayer(k)
        self.relu = nn.PReLU()

    def forward(self, x):
        return self.relu(self.conv1(self.se(x)))


class SpatialAttnLayer(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.spatial = BasicConv(2, 1, k)

    def forward(self, x):
        pooled = torch.cat([x.max(1, keepdim=True)[0], x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(pooled))


class SpatialBasicBlock(nn.Module):  # SPAattention_k
    def __init__(self, k):
        super().__init__()
        self.se = SpatialAttnLayer(k)

    def forward(self, x):
        return self.se(x)


class DilConv(nn.Module):  # DilConv_k_d: BN(pw(dw_dilated(relu x))) + x
    def __init__(self, c, k, d):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(), BasicConv(c, c, k, d, c), conv(c, c, 1), nn.BatchNorm2d(c))

    def forward(self, x):
        return self.op(x) + x


class SepConv(nn.Module):  # SepConv_k_1: two ReLU-dw-pw-BN rounds
    def __init__(self, c, k):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(), conv(c, c, k, 1, c), conv(c, c, 1), nn.BatchNorm2d(c),
                                nn.ReLU(), conv(c, c, k, 1, c), conv(c, c, 1), nn.BatchNorm2d(c))

    def forward(self, x):
        return self.op(x)


class MixedOp(nn.Module):
    """Holds one op under "_op", as core and the reference do."""

    def __init__(self, c, name):
        super().__init__()
        t, k, d = parse_op(name)
        self._op = {
            "Residualblocks": lambda: ResidualModule(c, k, d),
            "Denseblocks": lambda: ResidualDenseBlock(c, k, d),
            "ECAattention": lambda: EcaBasicBlock(c, k),
            "SPAattention": lambda: SpatialBasicBlock(k),
            "DilConv": lambda: DilConv(c, k, d),
            "SepConv": lambda: SepConv(c, k),
            "Identity": nn.Identity,
        }[t]()

    def forward(self, x):
        return self._op(x)


class Chain2Cell(nn.Module):
    def __init__(self, c, ops):
        super().__init__()
        self.preprocess1 = ReLUConvBN(c)
        self._ops = nn.ModuleList([MixedOp(c, o) for o in ops])

    def forward(self, x):
        x = self.preprocess1(x)
        for op in self._ops:
            x = op(x)
        return x


def make_stem(c, cin):
    return nn.Sequential(ConvLayer(cin, 2 * c, 3), nn.PReLU(), ConvLayer(2 * c, c, 3), nn.PReLU())


def make_stem_out(c, cout):
    return nn.Sequential(ConvLayer(c, c, 3), nn.PReLU(), ConvLayer(c, c // 2, 3), ConvLayer(c // 2, cout, 1))
