#!/usr/bin/python3
"""timfusion-export against timfusion-fuse, under ONNX Runtime.

For every model given: timfusion-export writes the ONNX file; the graph is
checked (onnx.checker, opset, inputs/outputs and their dynamic axes, no
BatchNormalization left); ONNX Runtime (onnxruntime-node) runs it on real pairs
of the shared data, converted to luma as timfusion does (BT.601, OpenCV), and
round(fused * 255) must be within 1 grey level of timfusion-fuse's output on
the same luma pair, at every pixel. The pairs include sizes that are not a
multiple of 4 (the padding inside the graph).

The same for random weights of genotypes that together use every op, cell and
network kind core implements (RANDOM_ARCHS), written as timfusion weight files;
the IVIF two-stage one against the float64 network instead (BATCH_STATS_NOTE).

A last check exports ivif-rt's weights with noise_coring set (the per-image
noise floor, a median computed with TopK in the graph): ONNX Runtime against
the same network run eagerly with torch.median, within 1 grey level.

  onnx_vs_fuse.py BUILD_DIR DATA_DIR ORT_DIR MODEL...
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings

import cv2
import numpy as np

# (data set, pair name): a gray 768x576 TNO pair, two RoadScene pairs of odd
# sizes (329x500, 365x492: padding) and a 640x480 MSRS night pair.
PAIRS = [("tno42", "01.png"), ("roadscene", "FLIR_00006.png"), ("roadscene", "FLIR_00060.png"),
         ("msrs_sample", "00032N.png")]


def luma(path):
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        sys.exit("cannot read %s" % path)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def check_graph(path):
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ops = {n.op_type for n in m.graph.node}
    assert "BatchNormalization" not in ops, "BatchNorm not folded"
    assert [i.name for i in m.graph.input] == ["ir", "vis"], [i.name for i in m.graph.input]
    assert [o.name for o in m.graph.output] == ["fused"]
    for v in list(m.graph.input) + list(m.graph.output):
        dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        assert dims == ["N", 1, "H", "W"], (v.name, dims)
    opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")]
    meta = {p.key: p.value for p in m.metadata_props}
    assert "timfusion.contract" in meta and "timfusion.arch" in meta
    return opset[0], len(m.graph.node)


def run_ort(ort_dir, model, jobs, tmp):
    spec = os.path.join(tmp, "jobs.json")
    with open(spec, "w") as f:
        json.dump({"model": model, "jobs": jobs}, f)
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run(["node", os.path.join(here, "ort_run.js"), ort_dir, spec], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("ONNX Runtime failed: " + r.stderr.strip())
    return r.stdout.strip().splitlines()


def exact_reference(build, model, arch, ir, vis):
    """The network in float64 (tim_onnx_net, eagerly): the exact maths, for
    where timfusion-fuse is known to deviate from it (see BATCH_STATS_NOTE)."""
    sys.path.insert(0, os.path.join(build, "core"))
    import torch
    import safetensors_io
    import tim_onnx_net
    net = tim_onnx_net.build(arch, safetensors_io.load(model)[0]).double()
    with torch.no_grad():
        y = net(torch.from_numpy(ir / 255.0)[None, None], torch.from_numpy(vis / 255.0)[None, None])
    return np.rint(y[0, 0].numpy() * 255).astype(np.int16)


# LibTorch 1.13's batch_norm on channels-last CPU tensors (the element's
# layout) computes per-batch statistics in one float32 pass, E[x^2] - E[x]^2,
# which cancels badly where a channel's mean is large against its spread: an
# IVIF two-stage model (stage2 batch_stats) then fuses unpadded frames up to
# tens of grey levels away from the exact per-image normalisation (padded
# frames go through NCHW and agree). The ONNX graph computes the exact
# statistics; for that model the test compares it with the float64 network and
# prints timfusion-fuse's distance for information.
BATCH_STATS_NOTE = "core: LibTorch channels-last batch_norm statistics"


def compare_model(build, data, ort_dir, model, tmp, arch=None, pairs=PAIRS):
    exact = bool(arch and arch.get("stage2", {}).get("batch_stats"))
    onnx_path = os.path.join(tmp, os.path.basename(model) + ".onnx")
    subprocess.run([os.path.join(build, "core", "timfusion-export"), model, "-o", onnx_path], check=True)
    opset, nodes = check_graph(onnx_path)
    ir_dir, vis_dir, out_dir = (os.path.join(tmp, d) for d in ("ir", "vis", "fused"))
    jobs = []
    for d in (ir_dir, vis_dir, out_dir):
        os.makedirs(d, exist_ok=True)
    for ds, name in pairs:
        stem = ds + "-" + os.path.splitext(name)[0]
        ir, vis = luma(os.path.join(data, ds, "ir", name)), luma(os.path.join(data, ds, "vis", name))
        assert ir.shape == vis.shape, (ds, name, ir.shape, vis.shape)
        cv2.imwrite(os.path.join(ir_dir, stem + ".png"), ir)
        cv2.imwrite(os.path.join(vis_dir, stem + ".png"), vis)
        h, w = ir.shape
        job = {"h": h, "w": w, "name": stem}
        for key, img in (("ir", ir), ("vis", vis)):
            job[key] = os.path.join(tmp, stem + "." + key + ".f32")
            (img.astype(np.float32) / 255.0).tofile(job[key])
        job["out"] = os.path.join(tmp, stem + ".onnx-out.f32")
        jobs.append(job)
    subprocess.run([os.path.join(build, "core", "timfusion-fuse"), "--model", model, "--threads", "1", "-q",
                    "--ir", ir_dir, "--vis", vis_dir, "-o", out_dir], check=True)
    timing = run_ort(ort_dir, onnx_path, [{k: v for k, v in j.items() if k != "name"} for j in jobs], tmp)
    worst = 0
    for j in jobs:
        onnx_y = np.fromfile(j["out"], dtype=np.float32).reshape(j["h"], j["w"])
        onnx_u8 = np.rint(np.clip(onnx_y, 0, 1) * 255).astype(np.int16)  # rint: half to even, as core
        fused = cv2.imread(os.path.join(out_dir, j["name"] + ".png"), cv2.IMREAD_UNCHANGED).astype(np.int16)
        note = ""
        if exact:
            ir, vis = (cv2.imread(os.path.join(d, j["name"] + ".png"), cv2.IMREAD_UNCHANGED) for d in (ir_dir, vis_dir))
            note = " (timfusion-fuse: %d, %s)" % (np.abs(onnx_u8 - fused).max(), BATCH_STATS_NOTE)
            fused = exact_reference(build, model, arch, ir, vis)
        diff = np.abs(onnx_u8 - fused)
        worst = max(worst, int(diff.max()))
        # The network must do something: a fused image equal to the inputs'
        # mean (or clipped flat) would match without testing the layers.
        ir, vis = (cv2.imread(os.path.join(d, j["name"] + ".png"), cv2.IMREAD_UNCHANGED) for d in (ir_dir, vis_dir))
        away = np.abs(fused - (ir.astype(np.int16) + vis) / 2).mean()
        assert away > 2, "%s on %s: fused is within %.2f grey levels of the inputs' mean" % (model, j["name"], away)
        assert fused.std() > 4, "%s on %s: fused is nearly flat (std %.2f)" % (model, j["name"], fused.std())
        print("%-12s %-22s %4dx%-4d max |ONNX Runtime - %s| = %d grey level(s), %.4f %% of pixels differ%s"
              % (os.path.basename(model), j["name"], j["w"], j["h"], "float64 network" if exact else "timfusion-fuse",
                 diff.max(), 100.0 * (diff > 0).mean(), note))
    print("%s: opset %d, %d nodes; %s" % (os.path.basename(model), opset, nodes, "; ".join(timing)))
    return worst


# Genotypes beyond the shipped models: every op core implements, Fusion cells
# (padding to a multiple of 8 with downscale 2), both two-stage kinds, both
# input orders, downscale 1 and 2, blend and detail heads, coring, image means.
RANDOM_ARCHS = [
    {"name": "all-ops-a", "kind": "single", "channels": 8, "inputs": ["ir", "vis"], "cells": ["Chain2"],
     "normal": ["Denseblocks_3_2", "SPAattention_5", "DilConv_3_2", "SepConv_5_1"], "downscale": 2,
     "head": "blend"},
    {"name": "all-ops-b", "kind": "single", "channels": 8, "inputs": ["vis", "ir"], "cells": ["Chain2", "Chain2"],
     "normal": ["Residualblocks_5_2", "Identity", "ECAattention_5"], "head": "detail", "detail_coring": 2,
     "image_means": True},
    {"name": "prior-head", "kind": "single", "channels": 8, "inputs": ["vis", "ir"], "cells": ["Chain2"],
     "normal": ["ECAattention_3"], "downscale": 4, "head": "detail", "image_means": True, "salient_prior": 4,
     "detail_select": True, "residual": False},
    {"name": "fusion-cell", "kind": "single", "channels": 8, "inputs": ["vis", "ir"], "cells": ["Fusion", "Chain2"],
     "chain_fusion": ["Residualblocks_3_1", "DilConv_3_2"], "normal": ["Denseblocks_3_1", "DilConv_3_2"],
     "downscale": 2, "head": "blend"},
    {"name": "ivif-two-stage", "kind": "ivif-two-stage", "channels": 8, "inputs": ["ir", "vis"],
     "cells": ["Fusion", "Chain2"], "chain_fusion": ["Residualblocks_3_1", "DilConv_3_2"],
     "normal": ["Denseblocks_3_1", "DilConv_3_2"],
     "stage2": {"cells": 2, "g1": ["SPAattention_3", "DilConv_3_2"], "g2": ["ECAattention_3", "SPAattention_3"],
                "batch_stats": True}},
    {"name": "mmif-two-stage", "kind": "mmif-two-stage", "channels": 8, "inputs": ["vis", "ir"],
     "cells": ["Fusion", "Chain2"], "chain_fusion": ["Residualblocks_3_1", "DilConv_3_2"],
     "normal": ["Denseblocks_3_1", "DilConv_3_2"],
     "stage2": {"cells": 1, "g1": ["SepConv_3_1", "Residualblocks_5_1"], "g2": ["Residualblocks_3_1", "SPAattention_3"]}},
]


# Random weights ~ N(0, gain^2 / fan_in): 0.5 keeps the residual networks'
# outputs inside 0..1; the MMIF stage 2 (tanh head, no skip) loses the signal
# at 0.5 (a flat image, std 0.03 grey levels) and needs He-like 1.4.
GAINS = {"mmif-two-stage": 1.4}


def random_weight_file(build, arch, path):
    """A weight file of `arch` with random weights and BatchNorm statistics."""
    gain = GAINS.get(arch["name"], 0.5)
    sys.path.insert(0, os.path.join(build, "core"))
    import torch
    import safetensors_io
    import tim_onnx_net
    gen = torch.Generator().manual_seed(29)
    tensors = {}
    for name, t in tim_onnx_net.TimNet(arch).state_dict().items():
        if name.endswith(".filt"):  # the blur pool's fixed filter, as core writes it
            tensors[name] = t.clone()
        elif name.endswith("num_batches_tracked"):
            tensors[name] = torch.tensor(100, dtype=torch.int64)
        elif name.endswith("running_var"):
            tensors[name] = 0.5 + torch.rand(t.shape, generator=gen)
        elif name.endswith(".weight") and t.dim() == 1 and "op." in name and t.numel() > 1:  # BN gamma
            tensors[name] = 0.5 + torch.rand(t.shape, generator=gen)
        elif t.dim() == 1 and t.numel() == 1:  # PReLU slope
            tensors[name] = torch.full(t.shape, 0.25)
        elif name.endswith(("stem_out.3.conv2d.bias", "stem_out4.3.conv2d.bias")) and t.numel() == 1:
            tensors[name] = torch.full(t.shape, 0.5)  # an image head: centred in 0..1, not clipped flat
        else:
            fan_in = max(1, t[0].numel()) if t.dim() > 1 else 1
            tensors[name] = torch.randn(t.shape, generator=gen) * (gain / fan_in ** 0.5)
    safetensors_io.save(path, tensors, metadata={"timfusion.arch": json.dumps(arch)})


def check_noise_coring(build, ort_dir, data, tmp):
    """noise_coring's TopK median under ONNX Runtime against torch.median, eagerly."""
    sys.path.insert(0, os.path.join(build, "core"))
    import torch
    import safetensors_io
    import tim_onnx_net
    tensors, meta = safetensors_io.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "core", "models", "ivif-rt.safetensors"))
    arch = json.loads(meta["timfusion.arch"])
    arch["noise_coring"] = 3.0
    net = tim_onnx_net.build(arch, tensors)
    # The median through TopK equals torch's lower median, even and odd counts.
    for shape in [(2, 1, 9, 13), (1, 1, 10, 10), (3, 1, 17, 8)]:
        x = torch.rand(shape)
        ref = torch.nn.functional.conv2d(x, torch.tensor(tim_onnx_net._NOISE_MASK).view(1, 1, 3, 3), stride=2)
        ref = ref.abs().flatten(1).median(dim=1)[0] / (0.6745 * 6.0)
        assert torch.equal(tim_onnx_net.noise_sigma(x).flatten(), ref), shape
    onnx_path = os.path.join(tmp, "noise-coring.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic (see timfusion_export.py)
        torch.onnx.export(net, (torch.rand(1, 1, 48, 64), torch.rand(1, 1, 48, 64)), onnx_path,
                          opset_version=17, input_names=["ir", "vis"], output_names=["fused"],
                          dynamic_axes={n: {0: "N", 2: "H", 3: "W"} for n in ("ir", "vis", "fused")})
    ir = luma(os.path.join(data, "roadscene", "ir", "FLIR_00006.png")).astype(np.float32) / 255
    vis = luma(os.path.join(data, "roadscene", "vis", "FLIR_00006.png")).astype(np.float32) / 255
    rng = np.random.default_rng(1)
    vis = np.clip(vis + rng.normal(0, 6 / 255, vis.shape).astype(np.float32), 0, 1)  # a noisy camera
    h, w = ir.shape
    job = {"h": h, "w": w, "ir": os.path.join(tmp, "n.ir.f32"), "vis": os.path.join(tmp, "n.vis.f32"),
           "out": os.path.join(tmp, "n.out.f32")}
    ir.tofile(job["ir"])
    vis.tofile(job["vis"])
    run_ort(ort_dir, onnx_path, [job], tmp)
    got = np.rint(np.fromfile(job["out"], dtype=np.float32).reshape(h, w) * 255)

    def eager_median_sigma(x):  # the formula with torch.median, not the exporter's TopK
        r = torch.nn.functional.conv2d(x, torch.tensor(tim_onnx_net._NOISE_MASK).view(1, 1, 3, 3), stride=2)
        return (r.abs().flatten(1).median(dim=1)[0] / (0.6745 * 6.0)).view(-1, 1, 1, 1)
    tim_onnx_net.noise_sigma = eager_median_sigma
    with torch.no_grad():
        want = torch.round(net(torch.from_numpy(ir)[None, None], torch.from_numpy(vis)[None, None]) * 255)[0, 0]
    diff = np.abs(got - want.numpy())
    # Coring must change the result, or the comparison proves nothing about it.
    arch0 = dict(arch, noise_coring=0.0)
    plain = tim_onnx_net.build(arch0, tensors)
    with torch.no_grad():
        uncored = torch.round(plain(torch.from_numpy(ir)[None, None], torch.from_numpy(vis)[None, None]) * 255)[0, 0]
    changed = float((uncored != want).float().mean())
    print("noise_coring=3, noisy RoadScene pair %dx%d: max |ONNX Runtime - eager torch.median| = %d grey level(s); "
          "coring changes %.1f %% of pixels" % (w, h, diff.max(), 100 * changed))
    assert changed > 0.01, "noise_coring had no effect on a noisy image"
    return int(diff.max())


def main():
    build, data, ort_dir = sys.argv[1:4]
    models = sys.argv[4:]
    if not os.path.isdir(os.path.join(ort_dir, "node_modules", "onnxruntime-node")):
        sys.exit("onnxruntime-node is not installed in %s (scripts/setup.sh installs it)" % ort_dir)
    worst = {}
    with tempfile.TemporaryDirectory(prefix="timfusion-onnx-") as tmp:
        for m in models:
            sub = os.path.join(tmp, os.path.basename(m))
            os.makedirs(sub)
            worst[m] = compare_model(build, data, ort_dir, m, sub)
        for arch in RANDOM_ARCHS:
            sub = os.path.join(tmp, arch["name"])
            os.makedirs(sub)
            path = os.path.join(sub, arch["name"] + ".safetensors")
            random_weight_file(build, arch, path)
            # Two pairs each (CI time): one padded inside the graph, one not.
            worst[arch["name"]] = compare_model(build, data, ort_dir, path, sub, arch, PAIRS[1:2] + PAIRS[3:])
        worst["noise_coring"] = check_noise_coring(build, ort_dir, data, tmp)
    bad = {k: v for k, v in worst.items() if v > 1}
    if bad:
        sys.exit("more than 1 grey level apart: %s" % bad)
    print("all within 1 grey level: %s" % worst)


if __name__ == "__main__":
    main()
