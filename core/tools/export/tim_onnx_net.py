"""The TIM fusion network as timfusion's core runs it, written for ONNX export.

Every module mirrors its C++ counterpart (core/src/nn/networks.cpp here;
ops.cpp and cells.cpp in tim_onnx_ops.py) and registers its tensors under the
same names, so a weight file's state dict loads with strict name and shape
checks. Inference only: BatchNorm layers are folded into the convolution
before them (fold_batch_norms), in float32 as core's ConvBN::fold does, so the
exported graph has no BatchNormalization node.

Every architecture core builds: single-stage networks (Chain2 and Fusion
cells, every op, downscale 1/2/4, heads image/blend/detail, detail_coring,
noise_coring, image_means, salient_prior, detail_select, residual) and the two-stage reference models (IVIF with its
per-image BatchNorm statistics, MMIF).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from tim_onnx_ops import OP_TYPES, BasicConv, ConvLayer, make_cell, make_stem, make_stem_out, parse_op

# Fields of an architecture JSON (core/include/timfusion/arch.h) this module
# understands. An arch with any other field was written by a newer timfusion:
# exporting it would silently drop what that field does, so it is refused.
KNOWN_FIELDS = {"name", "kind", "channels", "inputs", "cells", "normal", "chain_fusion", "downscale", "head",
                "detail_coring", "noise_coring", "image_means", "stage2", "salient_prior", "detail_select",
                "residual"}
MIN_SIDE = 8  # core's kMinImageSide (image_limits.h)


class ExportError(ValueError):
    pass


def check_exportable(arch):
    """Raises ExportError naming the first part of `arch` this exporter cannot reproduce."""
    unknown = sorted(set(arch) - KNOWN_FIELDS)
    if unknown:
        raise ExportError("architecture field(s) %s unknown to this exporter (a newer timfusion wrote the file)"
                          % ", ".join(unknown))
    if arch.get("kind", "single") not in ("single", "ivif-two-stage", "mmif-two-stage"):
        raise ExportError("kind \"%s\" is unknown" % arch["kind"])
    for c in arch.get("cells", []):
        if c not in ("Chain2", "Fusion"):
            raise ExportError("cell \"%s\" is unknown" % c)
    stage2 = arch.get("stage2", {})
    for op in arch.get("normal", []) + arch.get("chain_fusion", []) + stage2.get("g1", []) + stage2.get("g2", []):
        if parse_op(op)[0] not in OP_TYPES:
            raise ExportError("operation \"%s\" is not implemented" % op)
    if arch.get("head", "image") not in ("image", "blend", "detail"):
        raise ExportError("head \"%s\" is unknown" % arch["head"])
    if arch.get("downscale", 1) not in (1, 2, 4):
        raise ExportError("downscale %s is not 1, 2 or 4" % arch["downscale"])
    if sorted(arch.get("inputs", ["vis", "ir"])) != ["ir", "vis"]:
        raise ExportError("inputs must be \"vis\" and \"ir\" in some order")


# ---------------------------------------------------------------- full-resolution parts


def base_layer(x):
    """5x5 box mean with reflection padding (core's base_layer; its running
    sums and this average pool add the same 25 values in another order)."""
    return F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), 5, stride=1)


def box_mean(x, k):
    """k x k box mean, reflection-padded to keep the size (core's box_mean in
    networks.cpp; frames are at least MIN_SIDE = 8 > k // 2 pixels)."""
    return F.avg_pool2d(F.pad(x, (k // 2, (k - 1) // 2, k // 2, (k - 1) // 2), mode="reflect"), k, stride=1)


PRIOR_WINDOW = 15    # core's kPriorWindow
PRIOR_MARGIN = 1e-3  # core's kPriorMargin
SELECTION_RAMP = 1.0 / 255.0  # core's kSelectionRamp


def salient_prior(a, b, mean_a, mean_b, softness):
    """The salient prior's weight of a (core's salient_prior, arch.h)."""
    dev_a = (box_mean(a, PRIOR_WINDOW) - mean_a).abs()
    dev_b = (box_mean(b, PRIOR_WINDOW) - mean_b).abs()
    p = box_mean(torch.sigmoid((dev_a - dev_b) / softness), PRIOR_WINDOW)
    return p.clamp(PRIOR_MARGIN, 1 - PRIOR_MARGIN)


# Immerkaer's finest-band mask (core/src/nn/noise_sigma.cpp).
_NOISE_MASK = [[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]]


def noise_sigma(x):
    """[B,1,1,1]: median(|mask * x|) / (0.6745 * 6), the mask applied 'valid'
    with stride 2. ONNX has no median operator: the lower median (torch's, for
    an even count) is the k-th smallest value, k = (n - 1) // 2 + 1, taken
    with TopK(largest=0) over each image's flattened responses: exact, no
    approximation."""
    kernel = torch.tensor(_NOISE_MASK, dtype=x.dtype).view(1, 1, 3, 3)
    r = F.conv2d(x, kernel, stride=2).abs().flatten(1)  # [B, n]
    k = (r.shape[1] - 1) // 2 + 1
    lower_median = torch.topk(r, k, dim=1, largest=False, sorted=True)[0][:, -1:]
    return (lower_median / (0.6745 * 6.0)).view(-1, 1, 1, 1)


def cored(detail, t):
    """Soft threshold: detail - clamp(detail, -t, t); t a number or a [B,1,1,1] tensor."""
    if isinstance(t, torch.Tensor):
        return detail - torch.minimum(torch.maximum(detail, -t), t)
    if t <= 0:
        return detail
    return detail - detail.clamp(-t, t)


class FusionNet(nn.Module):
    """The single-stage network with core's padding, heads and input order:
    forward(ir, vis) -> fused, all [B,1,H,W] float32; inputs in [0,1]."""

    def __init__(self, arch):
        super().__init__()
        check_exportable(arch)
        c = int(arch.get("channels", 48))
        self.first, self.second = arch.get("inputs", ["vis", "ir"])
        self.s = int(arch.get("downscale", 1))
        self.head = arch.get("head", "image")
        self.coring = arch.get("detail_coring", 0) / 255.0
        self.noise_coring = float(arch.get("noise_coring", 0))
        self.image_means = bool(arch.get("image_means", False))
        self.prior_softness = arch.get("salient_prior", 0) / 255.0
        self.select = bool(arch.get("detail_select", False))
        self.residual = bool(arch.get("residual", True))
        s2 = self.s * self.s
        per_pixel = {"image": 1, "blend": 2, "detail": 4}[self.head]
        self.stem = make_stem(c, 2 * s2 + (2 if self.image_means else 0))
        self.cells = nn.ModuleList([make_cell(k, c, arch.get("normal", []), arch.get("chain_fusion", []))
                                    for k in arch.get("cells", [])])
        self.stem_out = make_stem_out(c, c, per_pixel * s2)

    def grid(self, a, b, mean_a, mean_b):
        x = torch.cat([a, b], 1)
        if self.s > 1:
            x = F.pixel_unshuffle(x, self.s)
        if self.image_means:
            ones = torch.ones_like(x[:, :1])
            x = torch.cat([x, mean_a * ones, mean_b * ones], 1)
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        raw = self.stem_out(x)
        return F.pixel_shuffle(raw, self.s) if self.s > 1 else raw

    def apply_head(self, raw, a, b, mean_a, mean_b):
        if self.head == "image":
            return raw
        if self.head == "blend":
            w = torch.sigmoid(raw[:, 0:1])
            return b + raw[:, 1:2] + w * (a - b)
        base_a, base_b = base_layer(a), base_layer(b)
        w = torch.sigmoid(raw[:, 0:1])
        if self.prior_softness > 0:
            # sigmoid(z + logit(p)) as core writes it (weight_with_prior).
            p = salient_prior(a, b, mean_a, mean_b, self.prior_softness)
            num = w * p
            w = num / (num + (1 - w) * (1 - p))
        gain_a, gain_b = 2 * torch.sigmoid(raw[:, 2:3]), 2 * torch.sigmoid(raw[:, 3:4])
        out = (base_b + raw[:, 1:2] if self.residual else base_b) + w * (base_a - base_b)
        if self.noise_coring > 0:
            t_a = torch.clamp(noise_sigma(a) * self.noise_coring, min=self.coring)
            t_b = torch.clamp(noise_sigma(b) * self.noise_coring, min=self.coring)
        else:
            t_a = t_b = self.coring
        detail_a, detail_b = cored(a - base_a, t_a), cored(b - base_b, t_b)
        if self.select:
            # core's selection_of_first: a ramp of one grey level.
            keep_a = ((detail_a.abs() - detail_b.abs()) / SELECTION_RAMP + 0.5).clamp(0.0, 1.0)
            return out + keep_a * (gain_a * detail_a) + (1 - keep_a) * (gain_b * detail_b)
        return out + gain_a * detail_a + gain_b * detail_b

    def forward(self, a, b, mean_a, mean_b):
        return self.apply_head(self.grid(a, b, mean_a, mean_b), a, b, mean_a, mean_b)


class MaskLayer(nn.Module):
    """[max_c, max_c, mean_c] -> 1x1 conv -> sigmoid (the IVIF stage 2's merge mask)."""

    def __init__(self):
        super().__init__()
        self.spatial = BasicConv(3, 1, 1)

    def forward(self, x):
        mx = x.max(1, keepdim=True)[0]
        return torch.sigmoid(self.spatial(torch.cat([mx, mx, x.mean(1, keepdim=True)], 1)))


class ImageStatsNorm(nn.Module):
    """A BatchNorm that normalises with the statistics of the image itself
    (stage2 "batch_stats": the reference's IVIF stage 2 runs in train mode;
    timfusion fuses one image at a time, so batch = image). Nothing to fold."""

    def __init__(self, bn):
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps

    def forward(self, x):
        # Per image and channel over H, W; biased variance, as batch_norm
        # normalises a batch of one. Not InstanceNormalization nor a plain
        # mean of x: ONNX Runtime sums a 640x480 plane in one float32 pass
        # (its InstanceNormalization was 0.15 off in normalised units on a
        # plane of mean 5, spread 0.01). Centred on one of its own values
        # first, the sums see the spread, not the mean; then two passes.
        y = x - x[:, :, :1, :1]
        d = y - y.mean((2, 3), keepdim=True)
        var = (d * d).mean((2, 3), keepdim=True)
        return d / torch.sqrt(var + self.eps) * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class Stage2(nn.Module):
    """Two streams refine (input, stage-1 result); IVIF merges them with a
    spatial mask (Network_Fusion9_3), MMIF concatenates them under tanh
    (Network_Fusion9_2). stem_out2/3 are training-time heads, never run."""

    def __init__(self, arch):
        super().__init__()
        c = int(arch.get("channels", 48))
        st = arch.get("stage2", {})
        self.ivif = arch["kind"] == "ivif-two-stage"
        self.batch_stats = bool(st.get("batch_stats", False))
        if self.ivif:
            self.spa = MaskLayer()
        self.stem2 = make_stem(c, 2, with_bn=True)
        self.stem_out2 = make_stem_out(c, c, 1)
        self.stem3 = make_stem(c, 2, with_bn=True)
        self.stem_out3 = make_stem_out(c, c, 1)
        self.stem_out4 = make_stem_out(c if self.ivif else 2 * c, c, 1, prelu=False)
        n = int(st.get("cells", 2))
        self.cells2 = nn.ModuleList([make_cell("Chain2", c, st.get("g1", []), []) for _ in range(n)])
        self.cells3 = nn.ModuleList([make_cell("Chain2", c, st.get("g2", []), []) for _ in range(n)])

    def forward(self, first, second, fused):
        f1 = self.stem2(torch.cat([first, fused], 1))
        for cell in self.cells3:
            f1 = cell(f1)
        f2 = self.stem3(torch.cat([second, fused], 1))
        for cell in self.cells2:
            f2 = cell(f2)
        if self.ivif:
            mask = self.spa(f1)
            return self.stem_out4(mask * f1 + (1 - mask) * f2)
        return torch.tanh(self.stem_out4(torch.cat([f1, f2], 1)))


class TimNet(nn.Module):
    """The whole network with core's padding and input order (TimNet::forward):
    forward(ir, vis) -> fused, all [B,1,H,W] float32; inputs in [0,1]. The
    state dict's names are core's: single-stage unprefixed, two-stage under
    stage1. / stage2."""

    def __init__(self, arch):
        super().__init__()
        check_exportable(arch)
        self.arch = arch
        self.first, self.second = arch.get("inputs", ["vis", "ir"])
        self.two_stage = arch.get("kind", "single") != "single"
        self.image_means = bool(arch.get("image_means", False))
        s = int(arch.get("downscale", 1))
        self.pad_multiple = 4 * s if "Fusion" in arch.get("cells", []) else s  # ArchSpec::pad_multiple
        if self.two_stage:
            self.stage1 = FusionNet(arch)
            self.stage2 = Stage2(arch)
        else:
            net = FusionNet(arch)
            self.stem, self.cells, self.stem_out = net.stem, net.cells, net.stem_out
            self._single = [net]  # a list: not registered twice under a second prefix

    def forward(self, ir, vis):
        h, w = ir.shape[2], ir.shape[3]
        # The means of the unpadded images, as core takes them (before padding).
        mean_ir, mean_vis = ir.mean((2, 3), keepdim=True), vis.mean((2, 3), keepdim=True)
        m = self.pad_multiple
        if m > 1:
            # Bottom/right reflection padding to a multiple of m, cropped off
            # below (sides >= MIN_SIDE > m keep reflection valid).
            ph, pw = (m - h % m) % m, (m - w % m) % m
            ir = F.pad(ir, [0, pw, 0, ph], mode="reflect")
            vis = F.pad(vis, [0, pw, 0, ph], mode="reflect")
        pick = {"ir": (ir, mean_ir), "vis": (vis, mean_vis)}
        (a, ma), (b, mb) = pick[self.first], pick[self.second]
        net = self.stage1 if self.two_stage else self._single[0]
        y = net(a, b, ma, mb)
        if self.two_stage:
            # The IVIF stage 2 takes (vis, ir); the MMIF ones keep stage 1's order.
            y = self.stage2(vis, ir, y) if self.stage2.ivif else self.stage2(a, b, y)
        return y[:, :, :h, :w].clamp(0.0, 1.0)


# ---------------------------------------------------------------- BatchNorm folding


def _fold_into(conv_layer, bn):
    """conv' = conv * scale, bias' = bias * scale + shift (float32, as core's ConvBN::fold)."""
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        w = conv_layer.weight * scale.view(-1, 1, 1, 1)
        b = conv_layer.bias * scale + shift if conv_layer.bias is not None else shift
        folded = nn.Conv2d(conv_layer.in_channels, conv_layer.out_channels, conv_layer.kernel_size,
                           stride=conv_layer.stride, padding=conv_layer.padding, dilation=conv_layer.dilation,
                           groups=conv_layer.groups, bias=True)
        folded.weight.copy_(w)
        folded.bias.copy_(b)
    return folded


def fold_batch_norms(net):
    """Replaces every (convolution, BatchNorm2d) pair in a Sequential by one
    convolution, the BN by an identity (indices stay). BNs that normalise with
    the image's own statistics (a two-stage model's stage 2 with batch_stats,
    where core folds nothing either) become ImageStatsNorm. Returns how many
    were folded; a BN after anything but a convolution is an error."""
    per_image = set()
    if getattr(net, "two_stage", False) and net.stage2.batch_stats:
        per_image = {id(m) for m in net.stage2.modules() if isinstance(m, nn.BatchNorm2d)}
    folded = 0
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        for i, layer in enumerate(seq):
            if not isinstance(layer, nn.BatchNorm2d):
                continue
            if id(layer) in per_image:
                seq[i] = ImageStatsNorm(layer)
                continue
            prev = seq[i - 1] if i > 0 else None
            if isinstance(prev, nn.Conv2d):
                seq[i - 1] = _fold_into(prev, layer)
            elif isinstance(prev, ConvLayer):  # a stage-2 stem: reflection pad + conv, then BN
                prev.conv2d = _fold_into(prev.conv2d, layer)
            else:
                raise ExportError("internal: a BatchNorm with no convolution before it")
            seq[i] = nn.Identity()
            folded += 1
    if any(isinstance(m, nn.BatchNorm2d) for m in net.modules()):
        raise ExportError("internal: a BatchNorm was left unfolded")
    return folded


def build(arch, tensors):
    """The network of `arch` with `tensors` (name -> float tensor) loaded under
    strict name and shape checks, in eval mode, BatchNorm folded."""
    net = TimNet(arch)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ExportError("tensor names do not match the architecture: missing %s; unexpected %s"
                          % (missing[:5] or "none", unexpected[:5] or "none"))
    for name, t in expected.items():
        if tuple(tensors[name].shape) != tuple(t.shape):
            raise ExportError("tensor %s has shape %s, the architecture needs %s"
                              % (name, list(tensors[name].shape), list(t.shape)))
    state = {k: (v.to(torch.float32) if v.is_floating_point() else v) for k, v in tensors.items()}
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ExportError("tensor %s holds a NaN or an infinity" % k)
    net.load_state_dict(state, strict=True)
    net.eval()
    fold_batch_norms(net)
    return net
