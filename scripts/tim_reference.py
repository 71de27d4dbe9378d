#!/usr/bin/python3
"""Independent PyTorch implementation of the TIM fusion networks
(Liu et al., TPAMI 2024; reference code LiuZhu-CV/TIMFusion, test side only).

Used for test fixtures, checkpoint conversion and benchmarks. The module
names are chosen so that `state_dict()` keys equal the reference's keys
exactly (stem.0.conv2d.weight, cells.0._ops.0._op.op.0.conv.weight, ...);
two-stage models wrap the two reference networks as `stage1` / `stage2`.
See ../shared/reference/TIM.md (beside the repository, with the shared data) for the operator definitions.

Architectures (width C is a parameter; the released models use C = 48):
  ivif-light   Network_Fusion9_Meta, cells [Chain2, Chain2],
               normal [Residualblocks_3_1, ECAattention_3]; forward(vis, ir)
  ivif-full    stage1 = Network_Fusion9_Meta [Fusion, Chain2] (genotype fusion_M),
               called stage1(ir, vis); stage2 = Network_Fusion9_3 called
               stage2(vis, ir, f1) with BN on per-image batch statistics
  mmif-ct/pet/spect
               stage1 as above; stage2 = Network_Fusion9_2 (tanh head), eval BN;
               ct: (MRI, CT), pet: (PET_Y, MRI), spect: (MRI, SPECT_Y)

timfusion slot convention: IVIF "ir" = thermal, "vis" = visible luma;
MMIF "ir" = MRI, "vis" = CT / PET luma / SPECT luma.

CLI:
  tim_reference.py bench --arch ivif-light [--weights W] --width 640 --height 480 --threads N --frames K
  tim_reference.py fuse  [--arch A] --weights W --ir IR.png --vis VIS.png --output OUT.png
  tim_reference.py info  [--arch A] [--channels C] [--weights W]
"""
import argparse
import copy
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

# --------------------------------------------------------------------------
# Architecture specs (mirrors core/include/timfusion/arch.h)
# --------------------------------------------------------------------------

FUSION_M_CHAIN_FUSION = ["Residualblocks_3_1", "DilConv_3_2"]
FUSION_M_NORMAL = ["Denseblocks_3_1", "DilConv_3_2"]


def _two_stage(name, kind, inputs, g1, g2, batch_stats):
    return {
        "name": name, "kind": kind, "channels": 48, "inputs": list(inputs),
        "cells": ["Fusion", "Chain2"],
        "normal": list(FUSION_M_NORMAL),
        "chain_fusion": list(FUSION_M_CHAIN_FUSION),
        "stage2": {"cells": 2, "g1": list(g1), "g2": list(g2), "batch_stats": batch_stats},
    }


BUILTIN_ARCHS = {
    "ivif-light": {
        "name": "ivif-light", "kind": "single", "channels": 48, "inputs": ["vis", "ir"],
        "cells": ["Chain2", "Chain2"],
        "normal": ["Residualblocks_3_1", "ECAattention_3"],
    },
    # IVIF/testFusion.py: g1 = fusion_ir_proposed (cells2), g2 = fusion_vis_proposed (cells3)
    "ivif-full": _two_stage("ivif-full", "ivif-two-stage", ["ir", "vis"],
                            ["SPAattention_3", "DilConv_3_2"], ["ECAattention_3", "SPAattention_3"], True),
    # MmIF scripts: (g1, g2) = (fusion_mri*, fusion_<modality>)
    "mmif-ct": _two_stage("mmif-ct", "mmif-two-stage", ["ir", "vis"],
                          ["Residualblocks_5_1", "Residualblocks_5_1"],
                          ["Residualblocks_5_1", "SPAattention_3"], False),
    "mmif-pet": _two_stage("mmif-pet", "mmif-two-stage", ["vis", "ir"],
                           ["SepConv_3_1", "Residualblocks_5_1"],
                           ["Residualblocks_3_1", "Residualblocks_5_1"], False),
    "mmif-spect": _two_stage("mmif-spect", "mmif-two-stage", ["ir", "vis"],
                             ["Residualblocks_5_1", "Denseblocks_3_1"],
                             ["Residualblocks_3_1", "SPAattention_3"], False),
}

KINDS = ("single", "ivif-two-stage", "mmif-two-stage")
OP_TYPES = ("Residualblocks", "Denseblocks", "DilConv", "SepConv", "ECAattention", "SPAattention", "Identity")


def arch_spec(name_or_spec, channels=None):
    """Returns a normalised spec dict from a built-in name, a JSON file path,
    a JSON string or a dict. `channels` overrides the width."""
    if isinstance(name_or_spec, dict):
        spec = copy.deepcopy(name_or_spec)
    elif name_or_spec in BUILTIN_ARCHS:
        spec = copy.deepcopy(BUILTIN_ARCHS[name_or_spec])
    elif os.path.isfile(name_or_spec):
        with open(name_or_spec) as f:
            spec = json.load(f)
    else:
        try:
            spec = json.loads(name_or_spec)
        except (TypeError, json.JSONDecodeError):
            raise ValueError("unknown architecture %r (built-in: %s)" % (name_or_spec, ", ".join(sorted(BUILTIN_ARCHS))))
    spec.setdefault("name", "custom")
    spec.setdefault("kind", "single")
    spec.setdefault("channels", 48)
    spec.setdefault("inputs", ["vis", "ir"])
    if channels is not None:
        spec["channels"] = int(channels)
    validate_spec(spec)
    return spec


def spec_json(spec):
    """Compact JSON as stored in "timfusion.arch" (same field order as the C++ writer)."""
    out = {"name": spec["name"], "kind": spec["kind"], "channels": spec["channels"],
           "inputs": spec["inputs"], "cells": spec["cells"]}
    if spec.get("normal"):
        out["normal"] = spec["normal"]
    if spec.get("chain_fusion"):
        out["chain_fusion"] = spec["chain_fusion"]
    if spec["kind"] != "single":
        s = spec["stage2"]
        out["stage2"] = {"cells": s.get("cells", 2), "g1": s["g1"], "g2": s["g2"],
                         "batch_stats": bool(s.get("batch_stats", False))}
    return json.dumps(out, separators=(",", ":"))


def parse_op(name):
    """'DilConv_3_2' -> ('DilConv', 3, 2); attention ops take only _k (dilation 1)."""
    parts = name.split("_")
    t = parts[0]
    if t not in OP_TYPES:
        raise ValueError("unknown operation %r" % name)
    if t == "Identity":
        if len(parts) != 1:
            raise ValueError("operation %r takes no parameters" % name)
        return t, 0, 0
    if t in ("ECAattention", "SPAattention"):
        if len(parts) != 2:
            raise ValueError("operation %r must be %s_k" % (name, t))
        k, d = int(parts[1]), 1
    else:
        if len(parts) != 3:
            raise ValueError("operation %r must be %s_k_d" % (name, t))
        k, d = int(parts[1]), int(parts[2])
    if k < 1 or d < 1 or k % 2 == 0:
        raise ValueError("operation %r: kernel must be odd and >= 1, dilation >= 1" % name)
    if t == "SepConv" and (k != 3 or d != 1):
        # The reference passes padding=1 and the "dilation" field as stride:
        # only SepConv_3_1 keeps the spatial size.
        raise ValueError("operation %r: only SepConv_3_1 keeps the image size in the reference" % name)
    if t in ("Residualblocks", "Denseblocks", "DilConv", "SPAattention") and basic_conv_padding(k, d) is None:
        raise ValueError("operation %r: the reference padding table has no entry for k=%d d=%d" % (name, k, d))
    return t, k, d


def validate_spec(spec):
    if spec["kind"] not in KINDS:
        raise ValueError("unknown kind %r" % spec["kind"])
    if not (2 <= int(spec["channels"]) <= 1024):
        raise ValueError("channels must be in 2..1024")
    if sorted(spec["inputs"]) != ["ir", "vis"]:
        raise ValueError("inputs must name ir and vis once each")
    if not spec.get("cells"):
        raise ValueError("no cells")
    for c in spec["cells"]:
        if c == "Chain2":
            ops = spec.get("normal")
        elif c == "Fusion":
            ops = spec.get("chain_fusion")
        else:
            raise ValueError("unknown cell type %r" % c)
        if not ops:
            raise ValueError("cell %s needs a non-empty op list" % c)
        for op in ops:
            parse_op(op)
    if spec["kind"] != "single":
        s = spec.get("stage2")
        if not s or not s.get("g1") or not s.get("g2") or int(s.get("cells", 2)) < 1:
            raise ValueError("two-stage spec needs stage2 {cells>=1, g1, g2}")
        for op in s["g1"] + s["g2"]:
            parse_op(op)


def pad_multiple(spec):
    return 4 if "Fusion" in spec["cells"] else 1


# --------------------------------------------------------------------------
# Operators (model/operations.py)
# --------------------------------------------------------------------------

_BASIC_PAD = {(3, 1): 1, (3, 2): 2, (5, 1): 2, (5, 2): 4, (7, 1): 3, (7, 2): 6, (1, 1): 0}


def basic_conv_padding(k, d):
    """The hard-coded padding table of the reference BasicConv (k=1 -> 0)."""
    return _BASIC_PAD.get((k, d))


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm2d (same state-dict entries). With `batch_stats` set, it
    normalises with the statistics of the current batch (biased variance,
    eps 1e-5), as the reference IVIF stage 2 does in train mode, but never
    updates the running buffers."""

    batch_stats = False

    def forward(self, x):
        if self.batch_stats:
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return super().forward(x)


class ConvLayer(nn.Module):
    """ReflectionPad2d(d*(k-1)/2) then Conv2d with bias."""

    def __init__(self, cin, cout, k, stride=1, dilation=1):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(int(dilation * (k - 1) / 2))
        self.conv2d = nn.Conv2d(cin, cout, k, stride, dilation=dilation)

    def forward(self, x):
        return self.conv2d(self.reflection_pad(x))


class BasicConv(nn.Module):
    """Bias-free conv with the reference padding table; no BN, no activation
    (every use in the searched ops passes relu=False)."""

    def __init__(self, cin, cout, k, dilation=1, groups=1):
        super().__init__()
        pad = basic_conv_padding(k, dilation)
        self.conv = nn.Conv2d(cin, cout, k, stride=1, padding=0 if pad is None else pad,
                              dilation=dilation, groups=groups, bias=False)

    def forward(self, x):
        return self.conv(x)


class ReLUConvBN(nn.Module):
    def __init__(self, cin, cout, k=1, stride=1, padding=0):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False),
                                BatchNorm(cout))

    def forward(self, x):
        return self.op(x)


class ResidualModule(nn.Module):  # Residualblocks_k_d
    def __init__(self, c, k, d):
        super().__init__()
        self.op = nn.Sequential(
            BasicConv(c, c, k, dilation=d, groups=c),
            nn.Conv2d(c, c, 3, padding=2, dilation=2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            BatchNorm(c),
            nn.PReLU(),
        )

    def forward(self, x):
        return x + self.op(x)


class ResidualDenseBlock(nn.Module):  # Denseblocks_k_d
    def __init__(self, c, k, d):
        super().__init__()
        self.conv1 = BasicConv(c, c, k, dilation=d, groups=c)
        self.conv2 = BasicConv(2 * c, c, k, dilation=d, groups=c)
        self.conv3 = BasicConv(3 * c, c, k, dilation=d, groups=c)
        self.lrelu = nn.PReLU()

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        return x3 * 0.333 + x


class ECALayer(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)                        # [B,C,1,1]
        s = self.conv(s.squeeze(-1).transpose(-1, -2))             # [B,1,C]: conv along channels
        s = torch.sigmoid(s.transpose(-1, -2).unsqueeze(-1))       # [B,C,1,1]
        return x * s


class ECABasicBlock(nn.Module):  # ECAattention_k
    def __init__(self, c, k):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.se = ECALayer(k)
        self.relu = nn.PReLU()

    def forward(self, x):
        return self.relu(self.conv1(self.se(x)))


class SpatialAttn(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.spatial = BasicConv(2, 1, k)

    def forward(self, x):
        m = torch.cat((x.max(dim=1, keepdim=True)[0], x.mean(dim=1, keepdim=True)), dim=1)
        return x * torch.sigmoid(self.spatial(m))


class SpatialBasicBlock(nn.Module):  # SPAattention_k
    def __init__(self, c, k):
        super().__init__()
        self.se = SpatialAttn(k)

    def forward(self, x):
        return self.se(x)


class DilConv(nn.Module):  # DilConv_k_d (with residual, unlike DARTS)
    def __init__(self, c, k, d):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(), BasicConv(c, c, k, dilation=d, groups=c),
                                nn.Conv2d(c, c, 1, bias=False), BatchNorm(c))

    def forward(self, x):
        return self.op(x) + x


class SepConv(nn.Module):  # SepConv_k_s (padding 1, the name's 2nd field is the stride)
    def __init__(self, c, k, stride):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(), nn.Conv2d(c, c, k, stride=stride, padding=1, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), BatchNorm(c),
            nn.ReLU(), nn.Conv2d(c, c, k, stride=1, padding=1, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), BatchNorm(c))

    def forward(self, x):
        return self.op(x)


def make_op(c, name):
    t, k, d = parse_op(name)
    if t == "Residualblocks":
        return ResidualModule(c, k, d)
    if t == "Denseblocks":
        return ResidualDenseBlock(c, k, d)
    if t == "ECAattention":
        return ECABasicBlock(c, k)
    if t == "SPAattention":
        return SpatialBasicBlock(c, k)
    if t == "DilConv":
        return DilConv(c, k, d)
    if t == "SepConv":
        return SepConv(c, k, d)
    return nn.Identity()  # timfusion extension, no parameters


class MixedOp(nn.Module):
    """Wrapper giving the `._op.` level of the reference keys."""

    def __init__(self, c, name):
        super().__init__()
        self._op = make_op(c, name)

    def forward(self, x):
        return self._op(x)


def blur_filter(channels):
    f = torch.tensor([1.0, 2.0, 1.0])
    f = f[:, None] * f[None, :]
    f = f / f.sum()
    return f[None, None].repeat(channels, 1, 1, 1)


class BlurPool(nn.Module):
    """Antialiased-CNN Downsample(filt_size=3, stride=2, reflect pad 1).
    `filt` is a registered buffer, so it appears in the state dict."""

    def __init__(self, channels):
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.register_buffer("filt", blur_filter(channels))

    def forward(self, x):
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


class ResidualDownSample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.top = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.PReLU(),
                                 nn.Conv2d(c, c, 3, padding=1, bias=False), nn.PReLU(),
                                 BlurPool(c), nn.Conv2d(c, 2 * c, 1, bias=False))
        self.bot = nn.Sequential(BlurPool(c), nn.Conv2d(c, 2 * c, 1, bias=False))

    def forward(self, x):
        return self.top(x) + self.bot(x)


class ResidualUpSample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.top = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.PReLU(),
                                 nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1, bias=False),
                                 nn.PReLU(), nn.Conv2d(c, c // 2, 1, bias=False))
        self.bot = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                 nn.Conv2d(c, c // 2, 1, bias=False))

    def forward(self, x):
        return self.top(x) + self.bot(x)


class DownSample(nn.Module):
    def __init__(self, c, factor):
        super().__init__()
        mods = []
        for _ in range(int(math.log2(factor))):
            mods.append(ResidualDownSample(c))
            c *= 2
        self.body = nn.Sequential(*mods)

    def forward(self, x):
        return self.body(x)


class UpSample(nn.Module):
    def __init__(self, c, factor):
        super().__init__()
        mods = []
        for _ in range(int(math.log2(factor))):
            mods.append(ResidualUpSample(c))
            c //= 2
        self.body = nn.Sequential(*mods)

    def forward(self, x):
        return self.body(x)


class SKFF(nn.Module):
    def __init__(self, c, height=3, reduction=8):
        super().__init__()
        self.height = height
        d = max(int(c / reduction), 4)
        self.conv_du = nn.Sequential(nn.Conv2d(c, d, 1, bias=False), nn.PReLU())
        self.fcs = nn.ModuleList([nn.Conv2d(d, c, 1, bias=False) for _ in range(height)])

    def forward(self, feats):
        b, c = feats[0].shape[:2]
        stacked = torch.stack(feats, dim=1)                         # [B,3,C,H,W]
        u = stacked.sum(dim=1)
        z = self.conv_du(u.mean(dim=(2, 3), keepdim=True))
        att = torch.stack([fc(z) for fc in self.fcs], dim=1)       # [B,3,C,1,1]
        att = torch.softmax(att, dim=1)
        return (stacked * att).sum(dim=1)


# --------------------------------------------------------------------------
# Cells and networks (model/model_searched.py)
# --------------------------------------------------------------------------

class CellChain2(nn.Module):
    def __init__(self, ops, c):
        super().__init__()
        self.preprocess1 = ReLUConvBN(c, c)
        self._ops = nn.ModuleList([MixedOp(c, n) for n in ops])

    def forward(self, x):
        x = self.preprocess1(x)
        for op in self._ops:
            x = op(x)
        return x


class CellFusion(nn.Module):
    def __init__(self, ops, c):
        super().__init__()
        self.preprocess1 = ReLUConvBN(c, c)
        self.down_2 = DownSample(c, 2)
        self.down_4 = DownSample(c, 4)
        self.upsample_2 = UpSample(2 * c, 2)
        self.upsample_4 = UpSample(4 * c, 4)
        self.SKFF = SKFF(c)
        self._ops = nn.ModuleList([MixedOp(c, n) for n in ops])
        self._ops_1 = nn.ModuleList([MixedOp(2 * c, n) for n in ops])
        self._ops_2 = nn.ModuleList([MixedOp(4 * c, n) for n in ops])

    def forward(self, x):
        x = self.preprocess1(x)
        s0, s1, s2 = x, self.down_2(x), self.down_4(x)
        for a, b, c in zip(self._ops, self._ops_1, self._ops_2):
            s0, s1, s2 = a(s0), b(s1), c(s2)
        return x + self.SKFF([s0, self.upsample_2(s1), self.upsample_4(s2)])


def _stem(c, bn):
    mods = [ConvLayer(2, 2 * c, 3), nn.PReLU(), ConvLayer(2 * c, c, 3)]
    if bn:
        mods.append(BatchNorm(c))
    mods.append(nn.PReLU())
    return nn.Sequential(*mods)


def _stem_out(cin, c, act=True):
    mods = [ConvLayer(cin, c, 3)]
    if act:
        mods.append(nn.PReLU())
    mods += [ConvLayer(c, c // 2, 3), ConvLayer(c // 2, 1, 1)]
    return nn.Sequential(*mods)


class NetworkFusion9Meta(nn.Module):
    """Stage-1 / single network: stem -> cells -> stem_out (raw output)."""

    def __init__(self, c, cell_names, normal=None, chain_fusion=None):
        super().__init__()
        self.stem = _stem(c, bn=False)
        self.stem_out = _stem_out(c, c)
        cells = []
        for n in cell_names:
            cells.append(CellChain2(normal, c) if n == "Chain2" else CellFusion(chain_fusion, c))
        self.cells = nn.ModuleList(cells)

    def forward(self, a, b):
        x = self.stem(torch.cat([a, b], dim=1))
        for cell in self.cells:
            x = cell(x)
        return self.stem_out(x)


class _Stage2Base(nn.Module):
    def _streams(self, a, b, fused):
        fa = self.stem2(torch.cat([a, fused], dim=1))   # first argument -> cells3 (g2)
        fb = self.stem3(torch.cat([b, fused], dim=1))   # second argument -> cells2 (g1)
        for cell in self.cells2:
            fb = cell(fb)
        for cell in self.cells3:
            fa = cell(fa)
        return fa, fb

    def set_batch_stats(self, on):
        for m in self.modules():
            if isinstance(m, BatchNorm):
                m.batch_stats = bool(on)


class NetworkFusion9_3(_Stage2Base):
    """IVIF stage 2: mask-weighted merge of the two streams, linear head."""

    def __init__(self, c, n_cells, g1, g2):
        super().__init__()
        self.spa = nn.Module()
        self.spa.spatial = BasicConv(3, 1, 1)
        self.stem2 = _stem(c, bn=True)
        self.stem_out2 = _stem_out(c, c)
        self.stem3 = _stem(c, bn=True)
        self.stem_out3 = _stem_out(c, c)
        self.stem_out4 = _stem_out(c, c, act=False)
        self.cells2 = nn.ModuleList([CellChain2(g1, c) for _ in range(n_cells)])
        self.cells3 = nn.ModuleList([CellChain2(g2, c) for _ in range(n_cells)])

    def mask(self, f):
        mx = f.max(dim=1, keepdim=True)[0]
        m = torch.cat((mx, mx, f.mean(dim=1, keepdim=True)), dim=1)
        return torch.sigmoid(self.spa.spatial(m))

    def forward(self, a, b, fused, aux=True):
        fa, fb = self._streams(a, b, fused)
        m = self.mask(fa)
        final = self.stem_out4(m * fa + (1 - m) * fb)
        if not aux:
            return final
        return torch.tanh(self.stem_out2(fa)), torch.tanh(self.stem_out3(fb)), final


class NetworkFusion9_2(_Stage2Base):
    """MMIF stage 2: concatenation of the two streams, tanh head."""

    def __init__(self, c, n_cells, g1, g2):
        super().__init__()
        self.stem2 = _stem(c, bn=True)
        self.stem_out2 = _stem_out(c, c)
        self.stem3 = _stem(c, bn=True)
        self.stem_out3 = _stem_out(c, c)
        self.stem_out4 = _stem_out(2 * c, c, act=False)
        self.cells2 = nn.ModuleList([CellChain2(g1, c) for _ in range(n_cells)])
        self.cells3 = nn.ModuleList([CellChain2(g2, c) for _ in range(n_cells)])

    def forward(self, a, b, fused, aux=True):
        fa, fb = self._streams(a, b, fused)
        final = torch.tanh(self.stem_out4(torch.cat((fa, fb), dim=1)))
        if not aux:
            return final
        return torch.tanh(self.stem_out2(fa)), torch.tanh(self.stem_out3(fb)), final


class TwoStage(nn.Module):
    def __init__(self, spec):
        super().__init__()
        c = spec["channels"]
        s = spec["stage2"]
        self.stage1 = NetworkFusion9Meta(c, spec["cells"], spec.get("normal"), spec.get("chain_fusion"))
        cls = NetworkFusion9_3 if spec["kind"] == "ivif-two-stage" else NetworkFusion9_2
        self.stage2 = cls(c, int(s.get("cells", 2)), s["g1"], s["g2"])
        self.stage2.set_batch_stats(s.get("batch_stats", False))


def build(spec):
    """Builds the network of a spec (name, dict, JSON). Returns an nn.Module in
    eval mode; for two-stage specs a TwoStage with .stage1 / .stage2."""
    spec = arch_spec(spec)
    if spec["kind"] == "single":
        m = NetworkFusion9Meta(spec["channels"], spec["cells"], spec.get("normal"), spec.get("chain_fusion"))
    else:
        m = TwoStage(spec)
    m.spec = spec
    return m.eval()


def count_params(module):
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------
# Weights I/O
# --------------------------------------------------------------------------

def load_weights(path, arch=None, channels=None):
    """Loads a timfusion .safetensors. `arch` (name/JSON/dict) overrides the
    file's metadata. Strict: every key must match with the right shape."""
    tensors, meta = safetensors_io.load(path)
    if arch is None:
        if "timfusion.arch" not in meta:
            raise ValueError("%s has no timfusion.arch metadata; name the architecture (--arch)" % path)
        spec = arch_spec(json.loads(meta["timfusion.arch"]), channels)
    else:
        spec = arch_spec(arch, channels)
    model = build(spec)
    check_state_dict(model, tensors, path)
    model.load_state_dict(tensors, strict=True)
    return model.eval(), spec, meta


def check_state_dict(model, tensors, where="weights"):
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    bad = ["%s %s (expected %s)" % (k, tuple(tensors[k].shape), tuple(v.shape))
           for k, v in expected.items() if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)]
    if missing or unexpected or bad:
        msg = ["%s does not match the architecture:" % where]
        if missing:
            msg.append("  missing %d: %s" % (len(missing), ", ".join(missing[:10])))
        if unexpected:
            msg.append("  unexpected %d: %s" % (len(unexpected), ", ".join(unexpected[:10])))
        if bad:
            msg.append("  wrong shape: %s" % "; ".join(bad[:10]))
        raise ValueError("\n".join(msg))


def save_weights(path, model, spec=None, provenance=None, metadata=True):
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = None
    if metadata:
        meta = {"timfusion.arch": spec_json(spec or model.spec)}
        if provenance is not None:
            meta["timfusion.provenance"] = json.dumps(provenance, separators=(",", ":"), sort_keys=True)
    safetensors_io.save(path, sd, meta)


# --------------------------------------------------------------------------
# Fusion with the timfusion (ir, vis) slot convention
# --------------------------------------------------------------------------

def _to_tensor(img):
    a = np.asarray(img)
    if a.ndim != 2:
        raise ValueError("expected a 2-D gray image, got shape %s" % (a.shape,))
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    else:
        a = a.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(a))[None, None]


def _pad_br(x, mult):
    h, w = x.shape[-2:]
    ph, pw = (-h) % mult, (-w) % mult
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")  # reflect-101, bottom/right only
    return x


def forward_raw(spec, model, ir, vis):
    """Runs the network on [1,1,H,W] float tensors (in [0,1]) placed in the
    (ir, vis) slots. Pads bottom/right by reflection to the spec's multiple,
    crops back, returns the network's final output before clamping
    ([1,1,H,W]; ivif: linear head, mmif: tanh)."""
    if isinstance(model, (tuple, list)):  # (stage1, stage2) given separately
        pair = nn.Module()
        pair.stage1, pair.stage2 = model
        model = pair
    h, w = ir.shape[-2:]
    mult = pad_multiple(spec)
    ir_p, vis_p = _pad_br(ir, mult), _pad_br(vis, mult)
    slot = {"ir": ir_p, "vis": vis_p}
    a, b = slot[spec["inputs"][0]], slot[spec["inputs"][1]]
    if spec["kind"] == "single":
        y = model(a, b)
    else:
        f1 = model.stage1(a, b)
        if spec["kind"] == "ivif-two-stage":
            y = model.stage2(b, a, f1, aux=False)   # reference: model_2(vis, ir, f1) after model_1(ir, vis)
        else:
            y = model.stage2(a, b, f1, aux=False)   # reference: same order as stage 1
    return y[..., :h, :w]


def fuse(arch, model, ir_u8, vis_u8, raw=False):
    """arch: name or spec; model: the built network (a TwoStage, or a
    (stage1, stage2) tuple, for two-stage archs); ir_u8 / vis_u8: HxW uint8
    (or float in [0,1]) in the timfusion slots.
    Returns the HxW float32 output clamped to [0,1] (and the unclamped one
    too when raw=True)."""
    spec = arch_spec(arch) if not isinstance(arch, dict) else arch
    ir, vis = _to_tensor(ir_u8), _to_tensor(vis_u8)
    if ir.shape != vis.shape:
        raise ValueError("ir %s and vis %s differ in size" % (tuple(ir.shape), tuple(vis.shape)))
    with torch.inference_mode():
        y = forward_raw(spec, model, ir, vis)[0, 0].float()
    out = y.clamp(0, 1).numpy().copy()
    if raw:
        return out, y.numpy().copy()
    return out


def to_u8(y):
    """round(clamp(y,0,1)*255), rounding half up as torchvision.save_image does:
    floor(clamp(y,0,1)*255 + 0.5) computed in float32."""
    y = np.clip(np.asarray(y, dtype=np.float32), 0, 1)
    return np.floor(y * np.float32(255) + np.float32(0.5)).astype(np.uint8)


def read_gray(path):
    """8-bit gray image; colour files give their luma (OpenCV BGR->YUV Y,
    as the reference MMIF scripts do)."""
    import cv2
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("cannot read %s" % path)
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = img[:, :, :3]
        img = cv2.cvtColor(img, cv2.COLOR_BGR2YUV)[:, :, 0]
    if img.dtype != np.uint8:
        raise ValueError("%s: expected an 8-bit image" % path)
    return img


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def _model_from_args(args):
    if args.weights:
        model, spec, _ = load_weights(args.weights, args.arch, getattr(args, "channels", None))
    else:
        if not args.arch:
            raise SystemExit("give --arch or --weights")
        spec = arch_spec(args.arch, getattr(args, "channels", None))
        torch.manual_seed(0)
        model = build(spec)
    return model.eval(), spec


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    model, spec = _model_from_args(args)
    rng = np.random.default_rng(0)
    ir = rng.integers(0, 256, (args.height, args.width), dtype=np.uint8)
    vis = rng.integers(0, 256, (args.height, args.width), dtype=np.uint8)
    for _ in range(args.warmup):
        fuse(spec, model, ir, vis)
    t0 = time.perf_counter()
    for _ in range(args.frames):
        fuse(spec, model, ir, vis)
    ms = (time.perf_counter() - t0) * 1000.0 / args.frames
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print("python %s %dx%d threads=%d ms_per_frame=%.1f peak_rss_mb=%.1f"
          % (spec["name"], args.width, args.height, args.threads, ms, rss))


def cmd_fuse(args):
    import cv2
    if args.threads:
        torch.set_num_threads(args.threads)
    model, spec = _model_from_args(args)
    ir, vis = read_gray(args.ir), read_gray(args.vis)
    y = fuse(spec, model, ir, vis)
    if not cv2.imwrite(args.output, to_u8(y), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise SystemExit("cannot write %s" % args.output)


def cmd_info(args):
    model, spec = _model_from_args(args)
    sd = model.state_dict()
    print("arch %s" % spec_json(spec))
    if spec["kind"] == "single":
        print("params %d  state-dict entries %d" % (count_params(model), len(sd)))
    else:
        print("params %d (stage1 %d, stage2 %d)  state-dict entries %d" % (
            count_params(model), count_params(model.stage1), count_params(model.stage2), len(sd)))
    if args.keys:
        for k, v in sd.items():
            print("  %-64s %s %s" % (k, str(v.dtype).replace("torch.", ""), tuple(v.shape)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("bench", help="time the Python reference on random frames")
    b.add_argument("--arch", default=None, help="built-in name or JSON spec (overrides the file's metadata)")
    b.add_argument("--weights", default=None, help=".safetensors (random weights if omitted)")
    b.add_argument("--channels", type=int, default=None)
    b.add_argument("--width", type=int, default=640)
    b.add_argument("--height", type=int, default=480)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--frames", type=int, default=3)
    b.add_argument("--warmup", type=int, default=1)
    b.set_defaults(func=cmd_bench)

    f = sub.add_parser("fuse", help="fuse one image pair, write an 8-bit gray PNG")
    f.add_argument("--arch", default=None)
    f.add_argument("--weights", required=True)
    f.add_argument("--ir", required=True, help="ir slot (thermal; MRI for MMIF)")
    f.add_argument("--vis", required=True, help="vis slot (visible; CT/PET/SPECT for MMIF; colour -> luma)")
    f.add_argument("--output", required=True)
    f.add_argument("--threads", type=int, default=0)
    f.set_defaults(func=cmd_fuse)

    i = sub.add_parser("info", help="print parameter counts and state-dict keys")
    i.add_argument("--arch", default=None)
    i.add_argument("--weights", default=None)
    i.add_argument("--channels", type=int, default=None)
    i.add_argument("--keys", action="store_true")
    i.set_defaults(func=cmd_info)

    args = p.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, OSError) as e:
        print("tim_reference: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
