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


def make_stem(c, cin, with_bn=False):
    layers = [ConvLayer(cin, 2 * c, 3), nn.PReLU(), ConvLayer(2 * c, c, 3)]
    layers += [nn.BatchNorm2d(c)] if with_bn else []
    return nn.Sequential(*layers, nn.PReLU())


def make_stem_out(c_in, c, cout, prelu=True):
    layers = [ConvLayer(c_in, c, 3)] + ([nn.PReLU()] if prelu else [])
    return nn.Sequential(*layers, ConvLayer(c, c // 2, 3), ConvLayer(c // 2, cout, 1))


# ---------------------------------------------------------------- Fusion cell (three scales)


def conv1x1(cin, cout):
    return conv(cin, cout, 1)


class BlurPool(nn.Module):
    """Antialiased stride-2 blur: reflection pad 1, depthwise 3x3 with the
    loaded buffer "filt" ([1,2,1]^2/16 in every file core writes)."""

    def __init__(self, c):
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("filt", (torch.outer(a, a) / 16).view(1, 1, 3, 3).repeat(c, 1, 1, 1))

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


class ResidualDownSample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.top = nn.Sequential(conv1x1(c, c), nn.PReLU(), conv(c, c, 3), nn.PReLU(), BlurPool(c), conv1x1(c, 2 * c))
        self.bot = nn.Sequential(BlurPool(c), conv1x1(c, 2 * c))

    def forward(self, x):
        return self.top(x) + self.bot(x)


class ResidualUpSample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.top = nn.Sequential(conv1x1(c, c), nn.PReLU(),
                                 nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1, bias=False),
                                 nn.PReLU(), conv1x1(c, c // 2))
        self.bot = nn.Sequential(nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
                                 conv1x1(c, c // 2))

    def forward(self, x):
        return self.top(x) + self.bot(x)


class Scaler(nn.Module):
    def __init__(self, c, steps, down):
        super().__init__()
        layers = []
        for _ in range(steps):
            layers.append(ResidualDownSample(c) if down else ResidualUpSample(c))
            c = c * 2 if down else c // 2
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class Skff(nn.Module):
    """Selective kernel feature fusion over the 3 scales (softmax across them)."""

    def __init__(self, c, height=3, reduction=8):
        super().__init__()
        d = max(c // reduction, 4)
        self.conv_du = nn.Sequential(conv1x1(c, d), nn.PReLU())
        self.fcs = nn.ModuleList([conv1x1(d, c) for _ in range(height)])

    def forward(self, feats):
        stacked = torch.stack(feats, 1)                      # [B,3,C,H,W]
        z = self.conv_du(stacked.sum(1).mean((2, 3), keepdim=True))
        a = torch.softmax(torch.stack([fc(z) for fc in self.fcs], 1), 1)
        return (stacked * a).sum(1)


class FusionCell(nn.Module):
    """The op chain at C@H, 2C@H/2 and 4C@H/4, brought back up, merged by SKFF,
    plus the preprocessed input. H and W divide by 4 (the network pads)."""

    def __init__(self, c, ops):
        super().__init__()
        self.preprocess1 = ReLUConvBN(c)
        self.down_2 = Scaler(c, 1, True)
        self.down_4 = Scaler(c, 2, True)
        self.upsample_2 = Scaler(2 * c, 1, False)
        self.upsample_4 = Scaler(4 * c, 2, False)
        self.SKFF = Skff(c)
        self._ops = nn.ModuleList([MixedOp(c, o) for o in ops])
        self._ops_1 = nn.ModuleList([MixedOp(2 * c, o) for o in ops])
        self._ops_2 = nn.ModuleList([MixedOp(4 * c, o) for o in ops])

    @staticmethod
    def _chain(ops, x):
        for op in ops:
            x = op(x)
        return x

    def forward(self, x):
        s0 = self.preprocess1(x)
        s1, s2 = self.down_2(s0), self.down_4(s0)
        r0 = self._chain(self._ops, s0)
        r1 = self.upsample_2(self._chain(self._ops_1, s1))
        r2 = self.upsample_4(self._chain(self._ops_2, s2))
        return s0 + self.SKFF([r0, r1, r2])


def make_cell(kind, c, normal, chain_fusion):
    return Chain2Cell(c, normal) if kind == "Chain2" else FusionCell(c, chain_fusion)
