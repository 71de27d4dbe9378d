#!/usr/bin/python3
"""Writes the test fixtures under tests/fixtures/ (re-runnable, byte-identical
output): deterministic random TIM weights in timfusion .safetensors files,
a manifest of inputs (crops of the shared data, cut at test time), and the outputs of
the Python reference (scripts/tim_reference.py) that the C++ tests compare
against. Also writes tests/fixtures/manifest.json and README.md.

  /usr/bin/python3 scripts/make_fixtures.py [--data ../shared/data] [--out tests/fixtures]
"""
import argparse
import hashlib
import json
import os
import sys
import zlib

import cv2
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import tim_reference as R  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------------------
# Inputs. Crops are (x, y, w, h) in pixels of the source image; names W x H.
# ---------------------------------------------------------------------------
TNO_FULL = ["06", "12", "37"]  # 575x475, 595x328, 359x247: odd width and/or height

CROPS = {
    # name: (source kind, pair name, x, y, w, h)
    "crop-tno16-37x29": ("tno", "16", 384, 152, 37, 29),
    "crop-tno21-45x38": ("tno", "21", 296, 248, 45, 38),
    "crop-tno34-23x19": ("tno", "34", 264, 168, 23, 19),
    "crop-ct16009-41x37": ("mri_ct", "16009", 48, 40, 41, 37),
    "crop-pet25015-41x37": ("mri_pet", "25015", 64, 136, 41, 37),
    "crop-spect10018-41x37": ("mri_spect", "10018", 24, 136, 41, 37),
}
MODALITY = {"mri_ct": "ct", "mri_pet": "pet", "mri_spect": "spect"}

# Op-coverage genotypes (C = 8, single-stage, 2 Chain2 cells unless stated).
OPS_FIXTURES = {
    "ops-residual-c8": {"normal": ["Residualblocks_3_1", "Residualblocks_5_1", "Residualblocks_3_2",
                                   "Residualblocks_5_2", "Residualblocks_7_1"]},
    "ops-dense-c8": {"normal": ["Denseblocks_3_1", "Denseblocks_5_1", "Denseblocks_3_2", "Denseblocks_5_2"]},
    "ops-dilconv-c8": {"normal": ["DilConv_3_1", "DilConv_5_1", "DilConv_3_2", "DilConv_5_2"]},
    "ops-sepconv-c8": {"normal": ["SepConv_3_1", "Identity", "SepConv_3_1"]},
    "ops-attention-c8": {"normal": ["ECAattention_3", "ECAattention_5", "SPAattention_3", "SPAattention_5",
                                    "SPAattention_7"]},
    # A single-stage net with a multi-scale Fusion cell and a custom genotype:
    # exercises pad-to-4 / crop on a single network and ops at 2C and 4C.
    "ops-fusion-c8": {"cells": ["Fusion", "Chain2"], "inputs": ["ir", "vis"],
                      "chain_fusion": ["SPAattention_5", "Denseblocks_5_2"],
                      "normal": ["ECAattention_5", "SepConv_3_1"]},
}

TWO_STAGE_FIXTURES = [
    ("ivif-full-c8", "ivif-full", "crop-tno21-45x38"),
    ("mmif-ct-c8", "mmif-ct", "crop-ct16009-41x37"),
    ("mmif-pet-c8", "mmif-pet", "crop-pet25015-41x37"),
    ("mmif-spect-c8", "mmif-spect", "crop-spect10018-41x37"),
]


def seed_of(name):
    return zlib.crc32(("timfusion-fixture:" + name).encode()) & 0x7FFFFFFF


# ---------------------------------------------------------------------------
# Deterministic random weights
# ---------------------------------------------------------------------------

def randomize(model, name):
    """Fills every parameter and buffer of `model` from a generator seeded by
    `name`: convs ~ N(0, 1/fan_in) (LeCun, activations stay O(1)), biases
    U(-0.1, 0.1), BN weight U(0.5, 1.5), bias U(-0.2, 0.2), running_mean
    U(-0.3, 0.3), running_var U(0.5, 2), num_batches_tracked in [1, 5000],
    PReLU slopes U(0.05, 0.4). Antialias `filt` buffers keep their fixed value."""
    g = torch.Generator().manual_seed(seed_of(name))

    def U(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    with torch.no_grad():
        for _, m in model.named_modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                w = m.weight
                fan_in = w.shape[1] * int(np.prod(w.shape[2:]))
                w.copy_(torch.randn(w.shape, generator=g) / np.sqrt(fan_in))
                if m.bias is not None:
                    U(m.bias, -0.1, 0.1)
            elif isinstance(m, nn.ConvTranspose2d):
                w = m.weight  # [in, out, k, k]; stride 2: ~in*k*k/4 taps per output
                fan_in = max(1, w.shape[0] * int(np.prod(w.shape[2:])) // 4)
                w.copy_(torch.randn(w.shape, generator=g) / np.sqrt(fan_in))
            elif isinstance(m, nn.BatchNorm2d):
                U(m.weight, 0.5, 1.5)
                U(m.bias, -0.2, 0.2)
                U(m.running_mean, -0.3, 0.3)
                U(m.running_var, 0.5, 2.0)
                m.num_batches_tracked.fill_(int(torch.randint(1, 5001, (1,), generator=g)))
            elif isinstance(m, nn.PReLU):
                U(m.weight, 0.05, 0.4)


def last_conv(net_head):
    """The final ConvLayer(C/2 -> 1, k=1) of a stem_out Sequential."""
    return net_head[len(net_head) - 1].conv2d


def calibrate(conv, run, target_mean, target_std):
    """Rescales the last 1x1 conv so that its output on the calibration input
    has the given mean/std (keeps fixtures informative: few clamped pixels)."""
    cache = {}
    h = conv.register_forward_hook(lambda mod, inp, out: cache.__setitem__("y", out.detach()))
    with torch.inference_mode():
        run()
    h.remove()
    y = cache["y"]
    mean, std = float(y.mean()), float(y.std())
    s = target_std / max(std, 1e-6)
    with torch.no_grad():
        conv.weight.mul_(s)
        conv.bias.copy_((conv.bias - mean) * s + target_mean)


def make_model(spec, name, cal_ir, cal_vis):
    model = R.build(spec)
    randomize(model, name)
    ir, vis = R._to_tensor(cal_ir), R._to_tensor(cal_vis)
    if spec["kind"] == "single":
        calibrate(last_conv(model.stem_out), lambda: R.forward_raw(spec, model, ir, vis), 0.5, 0.2)
    else:
        def run_stage1():
            slot = {"ir": R._pad_br(ir, 4), "vis": R._pad_br(vis, 4)}
            model.stage1(slot[spec["inputs"][0]], slot[spec["inputs"][1]])
        calibrate(last_conv(model.stage1.stem_out), run_stage1, 0.5, 0.2)
        # MMIF: pre-tanh mean 0.55 / std 0.3 -> outputs mostly inside (0, 1).
        tm, ts = (0.5, 0.2) if spec["kind"] == "ivif-two-stage" else (0.55, 0.3)
        calibrate(last_conv(model.stage2.stem_out4), lambda: R.forward_raw(spec, model, ir, vis), tm, ts)
    return model.eval()


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def read_pair(data, kind, pair):
    if kind == "tno":
        ir = cv2.imread(os.path.join(data, "tno42", "ir", pair + ".png"), 0)
        vis = cv2.imread(os.path.join(data, "tno42", "vis", pair + ".png"), 0)
    else:
        ir = cv2.imread(os.path.join(data, "harvard_medical", kind, "mri", pair + ".png"), 0)
        other = cv2.imread(os.path.join(data, "harvard_medical", kind, MODALITY[kind], pair + ".png"),
                           cv2.IMREAD_UNCHANGED)
        if other is None:
            raise SystemExit("cannot read %s pair %s" % (kind, pair))
        # Reference MMIF scripts: functional image BGR -> YUV, Y channel
        # (identical to COLOR_BGR2GRAY and BGR2YCrCb's Y for 8-bit images).
        vis = cv2.cvtColor(other, cv2.COLOR_BGR2YUV)[:, :, 0] if other.ndim == 3 else other
    if ir is None or vis is None:
        raise SystemExit("cannot read %s pair %s under %s" % (kind, pair, data))
    return ir, vis


def write_png(path, img):
    # Fixed compression level so reruns are byte-identical.
    if not cv2.imwrite(path, img, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise SystemExit("cannot write " + path)


def describe(y_raw):
    y = np.asarray(y_raw, dtype=np.float64)
    return {"raw_min": round(float(y.min()), 4), "raw_max": round(float(y.max()), 4),
            "raw_mean": round(float(y.mean()), 4),
            "clamped_fraction": round(float(((y < 0) | (y > 1)).mean()), 4)}


def near_half(y):
    """Fraction of pixels whose y*255 is within 1e-3 of a .5 rounding edge."""
    v = np.clip(np.asarray(y, dtype=np.float64), 0, 1) * 255.0
    return round(float((np.abs(v - np.floor(v) - 0.5) < 1e-3).mean()), 5)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # reproducible float results
    out = args.out
    os.makedirs(out, exist_ok=True)
    cases = []
    files = {}  # file name -> description (for the README)

    def P(name):
        return os.path.join(out, name)

    # ---- input crops ------------------------------------------------------
    # Crops are cut from the shared data at test time (the data must never be
    # copied into the repository); the manifest says where.
    crops, crop_src = {}, {}
    for cname, (kind, pair, x, y, w, h) in CROPS.items():
        ir, vis = read_pair(args.data, kind, pair)
        ci, cv = ir[y:y + h, x:x + w].copy(), vis[y:y + h, x:x + w].copy()
        assert ci.shape == (h, w) and cv.shape == (h, w)
        crops[cname] = (ci, cv)
        if kind == "tno":
            src = ("$DATA/tno42/ir/%s.png" % pair, "$DATA/tno42/vis/%s.png" % pair)
        else:
            src = ("$DATA/harvard_medical/%s/mri/%s.png" % (kind, pair),
                   "$DATA/harvard_medical/%s/%s/%s.png" % (kind, MODALITY[kind], pair))
        crop_src[cname] = {"ir": src[0], "vis": src[1], "crop": [x, y, w, h]}

    def float_case(fixture, weights, arch_override, spec, model, cname):
        ir, vis = crops[cname]
        y, raw = R.fuse(spec, model, ir, vis, raw=True)
        tensors = {"out": torch.from_numpy(y), "raw": torch.from_numpy(raw)}
        if spec["kind"] != "single":
            with torch.inference_mode():
                slot = {"ir": R._pad_br(R._to_tensor(ir), 4), "vis": R._pad_br(R._to_tensor(vis), 4)}
                f1 = model.stage1(slot[spec["inputs"][0]], slot[spec["inputs"][1]])
            tensors["stage1"] = f1[0, 0].contiguous()
        ename = "%s.expected.%s.safetensors" % (fixture, cname)
        safetensors_io.save(P(ename), tensors, {"timfusion.fixture": json.dumps(
            dict(weights=weights, **crop_src[cname]), separators=(",", ":"))})
        files[ename] = ("expected float output of %s on %s: out [H,W] = clamp(raw,0,1), raw [H,W]%s"
                        % (fixture, cname, ", stage1 [Hp,Wp] (padded stage-1 output)" if "stage1" in tensors else ""))
        case = {"name": "%s/%s" % (fixture, cname), "weights": weights, "arch": arch_override,
                "expected": ename, "compare": "float", "atol": 1e-4}
        case.update(crop_src[cname])
        case.update(describe(raw))
        cases.append(case)
        return y

    # ---- a. ivif-light, C = 48 ---------------------------------------------
    spec = R.arch_spec("ivif-light")
    cal_ir, cal_vis = read_pair(args.data, "tno", "37")
    light = make_model(spec, "ivif-light-c48", cal_ir, cal_vis)
    prov = {"source": "scripts/make_fixtures.py", "weights": "deterministic random (seed %d), calibrated"
            % seed_of("ivif-light-c48"), "purpose": "test fixture, not a trained model"}
    R.save_weights(P("ivif-light-c48.safetensors"), light, spec, prov)
    R.save_weights(P("ivif-light-c48-nometa.safetensors"), light, metadata=False)
    files["ivif-light-c48.safetensors"] = "ivif-light weights, C=48 (127,358 params, 49 tensors), with timfusion.arch"
    files["ivif-light-c48-nometa.safetensors"] = "same tensors, no metadata at all (load with arch ivif-light)"
    for pair in TNO_FULL:
        ir, vis = read_pair(args.data, "tno", pair)
        y, raw = R.fuse(spec, light, ir, vis, raw=True)
        name = "ivif-light-c48.expected.tno%s.png" % pair
        write_png(P(name), R.to_u8(y))
        files[name] = ("expected 8-bit output of ivif-light-c48 on tno42/{ir,vis}/%s.png (%dx%d)"
                       % (pair, ir.shape[1], ir.shape[0]))
        case = {"name": "ivif-light-c48/tno%s" % pair, "weights": "ivif-light-c48.safetensors", "arch": None,
                "ir": "$DATA/tno42/ir/%s.png" % pair, "vis": "$DATA/tno42/vis/%s.png" % pair,
                "expected": name, "compare": "png", "max_abs_diff": 1,
                "near_rounding_edge_fraction": near_half(y)}
        case.update(describe(raw))
        cases.append(case)
    float_case("ivif-light-c48", "ivif-light-c48.safetensors", None, spec, light, "crop-tno16-37x29")
    float_case("ivif-light-c48", "ivif-light-c48-nometa.safetensors", "ivif-light", spec, light, "crop-tno16-37x29")
    cases[-1]["name"] += " (nometa)"

    # ---- b. two-stage models, C = 8 ----------------------------------------
    for fixture, arch, cname in TWO_STAGE_FIXTURES:
        spec = R.arch_spec(arch, 8)
        ir, vis = crops[cname]
        model = make_model(spec, fixture, ir, vis)
        prov = {"source": "scripts/make_fixtures.py", "weights": "deterministic random (seed %d), calibrated"
                % seed_of(fixture), "purpose": "test fixture, not a trained model"}
        R.save_weights(P(fixture + ".safetensors"), model, spec, prov)
        files[fixture + ".safetensors"] = "%s weights, C=8 (%d params: stage1 %d, stage2 %d), with timfusion.arch" % (
            arch, R.count_params(model), R.count_params(model.stage1), R.count_params(model.stage2))
        float_case(fixture, fixture + ".safetensors", None, spec, model, cname)

    # ---- c. op coverage, C = 8 ---------------------------------------------
    for fixture, g in OPS_FIXTURES.items():
        spec = R.arch_spec({"name": fixture, "kind": "single", "channels": 8,
                            "inputs": g.get("inputs", ["vis", "ir"]),
                            "cells": g.get("cells", ["Chain2", "Chain2"]),
                            "normal": g.get("normal"), "chain_fusion": g.get("chain_fusion")})
        spec = {k: v for k, v in spec.items() if v is not None}
        ir, vis = crops["crop-tno34-23x19"]
        model = make_model(spec, fixture, ir, vis)
        prov = {"source": "scripts/make_fixtures.py", "weights": "deterministic random (seed %d), calibrated"
                % seed_of(fixture), "purpose": "test fixture (op coverage)"}
        R.save_weights(P(fixture + ".safetensors"), model, spec, prov)
        files[fixture + ".safetensors"] = "single-stage C=8, cells %s, %s (%d params)" % (
            "+".join(spec["cells"]),
            "; ".join("%s %s" % (k, ",".join(spec[k])) for k in ("chain_fusion", "normal") if k in spec),
            R.count_params(model))
        float_case(fixture, fixture + ".safetensors", None, spec, model, "crop-tno34-23x19")

    # ---- manifest + README --------------------------------------------------
    manifest = {
        "generator": "/usr/bin/python3 scripts/make_fixtures.py",
        "data_dir_placeholder": "$DATA = the shared data folder (TIMFUSION_DATA_DIR, ../shared/data)",
        "conventions": CONVENTIONS,
        "cases": cases,
    }
    with open(P("manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write("\n")
    files["manifest.json"] = "machine-readable list of the test cases below (weights, inputs, expected, tolerance)"
    write_readme(P("README.md"), files, cases, out)
    total = sum(os.path.getsize(P(n)) for n in files) + os.path.getsize(P("README.md"))
    print("wrote %d files, %.1f KiB in %s" % (len(files) + 1, total / 1024.0, out))


CONVENTIONS = [
    "Inputs: 8-bit gray images, float = value / 255, tensor [1,1,H,W].",
    "Slots: IVIF ir = thermal, vis = visible luma. MMIF ir = MRI, vis = CT / PET luma / SPECT luma "
    "(luma = OpenCV BGR->YUV Y = BGR2GRAY for 8-bit).",
    "Stage-1 argument order = arch 'inputs' (ivif-light: (vis, ir); ivif-full, mmif-ct, mmif-spect: (ir, vis); "
    "mmif-pet: (vis, ir)).",
    "Stage 2: ivif-two-stage is called with the stage-1 inputs swapped, (second, first, f1) = (vis, ir, f1) "
    "for ivif-full; mmif-two-stage with the stage-1 order, (first, second, f1).",
    "Stage-2 streams: stem2(cat[first arg, f1]) -> cells3 (genotype g2); stem3(cat[second arg, f1]) -> "
    "cells2 (genotype g1). ivif: mask = sigmoid(conv1x1([max_c, max_c, mean_c] of the first stream)); "
    "final = stem_out4(mask*F_first + (1-mask)*F_second), no activation. mmif: final = "
    "tanh(stem_out4(cat[F_first, F_second])).",
    "BatchNorm: eval (running statistics, eps 1e-5) everywhere, except ivif-full stage 2 (stage2.batch_stats "
    "= true): every stage-2 BN uses the current image's per-channel mean and biased variance over the "
    "(padded) H x W, eps 1e-5, running buffers unused.",
    "Padding: archs with a Fusion cell (all two-stage archs, ops-fusion-c8) pad H and W at the bottom/right "
    "to a multiple of 4 by reflection without edge repeat (torch 'reflect' = BORDER_REFLECT_101), run every "
    "stage on the padded images (stage-2 batch statistics include the padded rows/columns) and crop the "
    "final output to [0:H, 0:W]. Single Chain2-only nets use no padding.",
    "Output: raw = network output (ivif: unbounded linear head; mmif: tanh), out = clamp(raw, 0, 1). "
    "8-bit PNG = floor(out * 255 + 0.5) (round half up, as torchvision.save_image), gray, 1 channel.",
    "Float fixtures: safetensors tensors out/raw F32 [H,W]; two-stage ones also stage1 F32 [Hp,Wp] = "
    "stage-1 output on the padded input (before cropping).",
    "Deliberate differences from the released scripts: the SPECT script's MRI double scaling (plt.imread "
    "then /255) is not reproduced (every input is value/255), and 8-bit output rounds half up for MMIF too "
    "(the MMIF scripts truncate with astype(uint8)).",
    "Computed by PyTorch 1.13 on CPU, float32, 1 thread.",
]


def write_readme(path, files, cases, out):
    L = []
    L.append("# Test fixtures (generated)")
    L.append("")
    L.append("Made by `/usr/bin/python3 scripts/make_fixtures.py` (re-runnable; the output is byte-identical).")
    L.append("Do not edit by hand: change the script and rerun it. The network code is `scripts/tim_reference.py`,")
    L.append("an independent PyTorch re-implementation of the TIM reference networks (see")
    L.append("`../shared/reference/TIM.md`); the safetensors I/O is `scripts/safetensors_io.py`.")
    L.append("")
    L.append("All weights are **deterministic random** values (seeded per fixture, LeCun-normal convs,")
    L.append("BN running_mean U(-0.3,0.3), running_var U(0.5,2), BN weight U(0.5,1.5), bias U(-0.2,0.2),")
    L.append("PReLU slopes U(0.05,0.4), num_batches_tracked int64 in [1,5000], antialias `filt` buffers fixed at")
    L.append("[1,2,1]x[1,2,1]/16), with the last 1x1 conv of each stage rescaled so that the outputs on the")
    L.append("calibration input are mostly inside [0,1]. They are **not trained models**.")
    L.append("")
    L.append("The input crops (at most 45x38 pixels) are cut from the shared data at test time; the manifest")
    L.append("gives each crop's source images and [x, y, w, h]; full-size inputs are read from there too (`$DATA`).")
    L.append("")
    L.append("## Conventions the C++ side must match")
    L.append("")
    for c in CONVENTIONS:
        L.append("- " + c)
    L.append("")
    L.append("## Files")
    L.append("")
    L.append("| file | bytes | content |")
    L.append("|---|---|---|")
    for n in sorted(files):
        L.append("| `%s` | %d | %s |" % (n, os.path.getsize(os.path.join(out, n)), files[n]))
    L.append("")
    L.append("## Test cases (also in `manifest.json`)")
    L.append("")
    L.append("| case | weights (arch override) | ir / vis | expected | compare | raw range, clamped fraction |")
    L.append("|---|---|---|---|---|---|")
    for c in cases:
        L.append("| %s | `%s`%s | `%s` / `%s` | `%s` | %s | [%.3f, %.3f], %.4f |" % (
            c["name"], c["weights"], (" (%s)" % c["arch"]) if c["arch"] else "", c["ir"], c["vis"],
            c["expected"], ("float atol %g" % c["atol"]) if c["compare"] == "float" else
            ("png, max |diff| <= %d" % c["max_abs_diff"]), c["raw_min"], c["raw_max"], c["clamped_fraction"]))
    L.append("")
    L.append("PNG cases: float32 differences between LibTorch builds can move a pixel across a rounding edge,")
    L.append("so compare with max |diff| <= 1 gray level (`near_rounding_edge_fraction` in the manifest gives")
    L.append("the share of pixels within 0.001 gray levels of a rounding edge). Float cases: atol 1e-4 on `out` and")
    L.append("`raw`; prefer `raw` where much of `out` is clamped (the ivif-light 37x29 crop: small crops are")
    L.append("dominated by border effects, 42% of its pixels fall outside [0,1]).")
    L.append("")
    L.append("## Regenerate / check")
    L.append("")
    L.append("```")
    L.append("/usr/bin/python3 scripts/make_fixtures.py            # rewrites tests/fixtures/*")
    L.append("/usr/bin/python3 scripts/tim_reference.py fuse --weights tests/fixtures/ivif-light-c48.safetensors \\")
    L.append("    --ir ../shared/data/tno42/ir/37.png --vis ../shared/data/tno42/vis/37.png --output /tmp/37.png")
    L.append("cmp /tmp/37.png tests/fixtures/ivif-light-c48.expected.tno37.png   # pixel-identical (PNG bytes too)")
    L.append("```")
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
