"""The TIM fusion network as timfusion's core runs it, written for ONNX export.

Every module mirrors its C++ counterpart (core/src/nn/networks.cpp here;
ops.cpp and cells.cpp in tim_onnx_ops.py) and registers its tensors under the
same names, so a weight file's state dict loads with strict name and shape
checks. Inference only: BatchNorm
layers are folded into the convolution before them (fold_batch_norms), in
float32 as core's ConvBN::fold does, so the exported graph has no
BatchNormalization node.

Supported: single-stage networks (kind "single") with Chain2 cells and every
op core implements (Residualblocks, Denseblocks, ECAattention, SPAattention,
DilConv, SepConv, Identity), downscale 1/2/4, heads image/blend/detail,
detail_coring, noise_coring and image_means. Fusion cells and the two-stage
reference models are refused by check_exportable (not written yet).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from tim_onnx_ops import OP_TYPES, Chain2Cell, make_stem, make_stem_out, parse_op

# Fields of an architecture JSON (core/include/timfusion/arch.h) this module
# understands. An arch with any other field was written by a newer timfusion:
# exporting it would silently drop what that field does, so it is refused.
KNOWN_FIELDS = {"name", "kind", "channels", "inputs", "cells", "normal", "chain_fusion", "downscale", "head",
                "detail_coring", "noise_coring", "image_means", "stage2"}
MIN_SIDE = 8  # core's kMinImageSide (image_limits.h)


class ExportError(ValueError):
    pass


def check_exportable(arch):
    """Raises ExportError naming the first part of `arch` this exporter cannot reproduce."""
    unknown = sorted(set(arch) - KNOWN_FIELDS)
    if unknown:
        raise ExportError("architecture field(s) %s unknown to this exporter (a newer timfusion wrote the file)"
                          % ", ".join(unknown))
    if arch.get("kind", "single") != "single":
        raise ExportError("kind \"%s\": only single-stage networks can be exported so far" % arch["kind"])
    for c in arch.get("cells", []):
        if c != "Chain2":
            raise ExportError("cell \"%s\": only Chain2 cells can be exported so far" % c)
    for op in arch.get("normal", []):
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
        s2 = self.s * self.s
        per_pixel = {"image": 1, "blend": 2, "detail": 4}[self.head]
        self.stem = make_stem(c, 2 * s2 + (2 if self.image_means else 0))
        self.cells = nn.ModuleList([Chain2Cell(c, arch.get("normal", [])) for _ in arch.get("cells", [])])
        self.stem_out = make_stem_out(c, per_pixel * s2)
        self.pad_multiple = self.s  # Chain2 cells only: no Fusion cell's extra factor 4

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

    def apply_head(self, raw, a, b):
        if self.head == "image":
            return raw
        if self.head == "blend":
            w = torch.sigmoid(raw[:, 0:1])
            return b + raw[:, 1:2] + w * (a - b)
        base_a, base_b = base_layer(a), base_layer(b)
        w = torch.sigmoid(raw[:, 0:1])
        gain_a, gain_b = 2 * torch.sigmoid(raw[:, 2:3]), 2 * torch.sigmoid(raw[:, 3:4])
        out = base_b + raw[:, 1:2] + w * (base_a - base_b)
        if self.noise_coring > 0:
            t_a = torch.clamp(noise_sigma(a) * self.noise_coring, min=self.coring)
            t_b = torch.clamp(noise_sigma(b) * self.noise_coring, min=self.coring)
        else:
            t_a = t_b = self.coring
        return out + gain_a * cored(a - base_a, t_a) + gain_b * cored(b - base_b, t_b)

    def forward(self, ir, vis):
        h, w = ir.shape[2], ir.shape[3]
        # Means of the unpadded images, as core takes them (before padding).
        mean_ir, mean_vis = ir.mean((2, 3), keepdim=True), vis.mean((2, 3), keepdim=True)
        m = self.pad_multiple
        if m > 1:
            # Bottom/right reflection padding to a multiple of m, cropped off
            # below (core's TimNet::forward; sides >= MIN_SIDE > m keep reflection valid).
            ph, pw = (m - h % m) % m, (m - w % m) % m
            ir = F.pad(ir, [0, pw, 0, ph], mode="reflect")
            vis = F.pad(vis, [0, pw, 0, ph], mode="reflect")
        pick = {"ir": (ir, mean_ir), "vis": (vis, mean_vis)}
        (a, ma), (b, mb) = pick[self.first], pick[self.second]
        y = self.apply_head(self.grid(a, b, ma, mb), a, b)
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


def fold_batch_norms(module):
    """Replaces every (Conv2d, BatchNorm2d) pair in a Sequential by one Conv2d
    (identity in place of the BN, so indices stay). Returns how many were folded;
    a BatchNorm2d with no Conv2d right before it is an error (none exists in core)."""
    folded = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for i, layer in enumerate(seq):
            if isinstance(layer, nn.BatchNorm2d):
                if i == 0 or not isinstance(seq[i - 1], nn.Conv2d):
                    raise ExportError("internal: a BatchNorm with no convolution before it")
                seq[i - 1] = _fold_into(seq[i - 1], layer)
                seq[i] = nn.Identity()
                folded += 1
    if any(isinstance(m, nn.BatchNorm2d) for m in module.modules()):
        raise ExportError("internal: a BatchNorm was left unfolded")
    return folded


def build(arch, tensors):
    """The network of `arch` with `tensors` (name -> float tensor) loaded under
    strict name and shape checks, in eval mode, BatchNorm folded."""
    net = FusionNet(arch)
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
