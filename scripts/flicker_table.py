#!/usr/bin/python3
"""Temporal stability of fusion models on short synthetic video sequences.

A still camera rig still flickers: sensor noise changes every frame and the
mounts vibrate by fractions of a pixel. A fusion network that sharpens must not
turn that into visible flicker. For each of a few registered pairs from the
shared data we make a sequence of FRAMES frames: the same sub-pixel jitter is
applied to both cameras (a rigid rig moves as one), then independent Gaussian
noise per camera and frame (sigma in grey levels, IR noisier than visible, as
microbolometers are). Every frame is fused with `timfusion-fuse` (folder mode).

    ratio = mean_t mean|F_t - F_{t-1}| / max(mean|I_t - I_{t-1}|, mean|V_t - V_{t-1}|)

(luma for colour images): how much the fused video changes from frame to frame
relative to the more changing of its two inputs. <= 1.0 means the model does
not amplify input noise and jitter. We also print the ratio over the mean of
the two inputs' differences (a stricter reference).

    scripts/flicker_table.py [--model NAME_OR_FILE ...] [--frames 8] [--out out/flicker]
"""
import argparse
import pathlib
import shutil
import sys

import cv2
import numpy as np

from fusion_tools import ROOT, data_dir, default_build, fuse, label, shipped_models

# (set, pair): a TNO night scene, MSRS day and night street, an LLVIP frame, a RoadScene test pair.
PAIRS = [("tno42", None), ("msrs_sample", "00032N"), ("msrs_sample", "00107D"),
         ("llvip_sample", None), ("roadscene", "FLIR_04269")]


def luma(img):
    if img.ndim == 2:
        return img.astype(np.float64)
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)


def jitter(img, dx, dy):
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def noisy(img, sigma, rng):
    return np.clip(img.astype(np.float64) + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


def make_sequence(ir, vis, frames, rng, out):
    (out / "ir").mkdir(parents=True)
    (out / "vis").mkdir(parents=True)
    for t in range(frames):
        dx, dy = rng.uniform(-0.5, 0.5, 2)
        cv2.imwrite(str(out / "ir" / f"f{t:03d}.png"), noisy(jitter(ir, dx, dy), 3.0, rng))
        cv2.imwrite(str(out / "vis" / f"f{t:03d}.png"), noisy(jitter(vis, dx, dy), 2.0, rng))


def mean_abs_diff(folder, frames, reader):
    imgs = [reader(cv2.imread(str(folder / f"f{t:03d}.png"), cv2.IMREAD_UNCHANGED)) for t in range(frames)]
    return float(np.mean([np.abs(imgs[t] - imgs[t - 1]).mean() for t in range(1, frames)]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="shipped model name or weight file (repeatable)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build", default=default_build())
    ap.add_argument("--out", default=str(ROOT / "out" / "flicker"))
    args = ap.parse_args()
    models = args.model or shipped_models()
    data = data_dir(args.build)
    out = pathlib.Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(args.seed)

    seqs = []
    for set_name, pair in PAIRS:
        names = sorted(p.stem for p in (data / set_name / "ir").glob("*.png"))
        name = pair if pair else names[len(names) // 2]
        ir = cv2.imread(str(data / set_name / "ir" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        vis = cv2.imread(str(data / set_name / "vis" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        seq = out / f"{set_name}-{name}"
        make_sequence(ir, vis, args.frames, rng, seq)
        d_ir = mean_abs_diff(seq / "ir", args.frames, luma)
        d_vis = mean_abs_diff(seq / "vis", args.frames, luma)
        seqs.append((f"{set_name}/{name}", seq, d_ir, d_vis))

    print(f"{args.frames} frames per sequence; noise sigma IR 3, visible 2 grey levels; "
          "jitter uniform +-0.5 px, the same for both cameras\n")
    print("| model | sequence | input dI | input dV | fused dF | dF / max(dI,dV) | dF / mean(dI,dV) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for model in models:
        ratios = []
        for name, seq, d_ir, d_vis in seqs:
            fused = seq / f"fused-{label(model)}"
            fuse(args.build, model, seq / "ir", seq / "vis", fused)
            d_f = mean_abs_diff(fused, args.frames, luma)
            r_max, r_mean = d_f / max(d_ir, d_vis), d_f / ((d_ir + d_vis) / 2)
            ratios.append((r_max, r_mean))
            print(f"| {label(model)} | {name} | {d_ir:.3f} | {d_vis:.3f} | {d_f:.3f} | "
                  f"{r_max:.3f} | {r_mean:.3f} |")
        mx = np.mean([r[0] for r in ratios])
        mn = np.mean([r[1] for r in ratios])
        print(f"| **{label(model)}** | **mean** | | | | **{mx:.3f}** | **{mn:.3f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
