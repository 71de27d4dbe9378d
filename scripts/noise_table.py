#!/usr/bin/python3
"""Noise transfer: how much of the visible camera's frame-to-frame noise a
fusion model passes on (or amplifies), per pair, at several noise levels.

A live colour camera at night runs at high gain: every frame brings fresh
noise. For each pair below we make FRAMES frames of the same (static) scene:
fresh Gaussian noise of VIS_SIGMA grey levels on the visible image and of 2
on the IR image in every frame (rounded to 8 bit). Each frame is fused on its
own (timfusion-fuse, folder mode; "average" is the plain mean of the two
lumas, computed here). Then, on the luma,

    transfer = mean_t mean|F_t - F_{t-1}|  /  mean_t mean|V_t - V_{t-1}|

1.0 passes the visible camera's noise on as it is; above 1.0 amplifies it.
At visible sigma 0 only the IR changes: the column then gives the fused
change over the IR's (IR noise transfer). Every pair is printed, then the
median and the worst per model: a mean over pairs hides the pairs where a
model sharpens noise.

Pairs: held-out pairs of TNO42, RoadScene's test50 split and msrs_sample
(no shipped model trained on them), and two LLVIP frames, which are in the
shipped models' training pool (marked "train pool").

    scripts/noise_table.py [--model NAME_OR_FILE ...] [--sigmas 0,3,6,10] [--frames 6]
"""
import argparse
import pathlib
import shutil
import sys

import cv2
import numpy as np

from fusion_tools import ROOT, data_dir, default_build, fuse, label, shipped_models

# (set, pair, held out): 13 pairs from 4 data sets, the hard cases among them.
PAIRS = [("tno42", "10", True), ("tno42", "02", True), ("tno42", "19", True), ("tno42", "33", True),
         ("roadscene", "FLIR_04269", True), ("roadscene", "FLIR_00211", True), ("roadscene", "FLIR_06570", True),
         ("msrs_sample", "00032N", True), ("msrs_sample", "00537D", True), ("msrs_sample", "00881N", True),
         ("msrs_sample", "00174D", True),
         ("llvip_sample", "200002", False), ("llvip_sample", "190001", False)]
IR_SIGMA = 2.0
AVERAGE = "average"


def luma(img):
    if img.ndim == 2:
        return img.astype(np.float64)
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)


def noisy(img, sigma, rng):
    if sigma <= 0:
        return img.copy()
    return np.clip(img.astype(np.float64) + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


def read_frames(folder, frames):
    return [luma(cv2.imread(str(folder / f"f{t:03d}.png"), cv2.IMREAD_UNCHANGED)) for t in range(frames)]


def change(frames):
    return float(np.mean([np.abs(frames[t] - frames[t - 1]).mean() for t in range(1, len(frames))]))


def make_sequence(ir, vis, sigma, frames, rng, out):
    (out / "ir").mkdir(parents=True)
    (out / "vis").mkdir(parents=True)
    for t in range(frames):
        cv2.imwrite(str(out / "ir" / f"f{t:03d}.png"), noisy(ir, IR_SIGMA, rng))
        cv2.imwrite(str(out / "vis" / f"f{t:03d}.png"), noisy(vis, sigma, rng))


def fused_change(build, model, seq, frames):
    if model == AVERAGE:
        ir, vis = read_frames(seq / "ir", frames), read_frames(seq / "vis", frames)
        return change([np.round((a + b) / 2) for a, b in zip(ir, vis)])
    out = seq / f"fused-{label(model)}"
    fuse(build, model, seq / "ir", seq / "vis", out)
    return change(read_frames(out, frames))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="shipped model name or weight file (repeatable; "
                    "default: every shipped model); the plain average is always added")
    ap.add_argument("--sigmas", default="0,3,6,10", help="visible noise levels, grey levels")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build", default=default_build())
    ap.add_argument("--out", default=str(ROOT / "out" / "noise"))
    args = ap.parse_args()
    models = (args.model or shipped_models()) + [AVERAGE]
    sigmas = [float(s) for s in args.sigmas.split(",")]
    data = data_dir(args.build)
    out = pathlib.Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(args.seed)

    # transfer[model][sigma] = [(pair label, ratio)]
    transfer = {m: {s: [] for s in sigmas} for m in models}
    for set_name, pair, held_out in PAIRS:
        ir = cv2.imread(str(data / set_name / "ir" / f"{pair}.png"), cv2.IMREAD_GRAYSCALE)
        vis = cv2.imread(str(data / set_name / "vis" / f"{pair}.png"), cv2.IMREAD_UNCHANGED)
        if ir is None or vis is None:
            sys.exit(f"noise_table: {set_name}/{pair} not found in {data}")
        name = f"{set_name}/{pair}" + ("" if held_out else " (train pool)")
        for sigma in sigmas:
            seq = out / f"{set_name}-{pair}-s{sigma:g}"
            make_sequence(ir, vis, sigma, args.frames, rng, seq)
            reference = change(read_frames(seq / ("vis" if sigma > 0 else "ir"), args.frames))
            for model in models:
                transfer[model][sigma].append((name, fused_change(args.build, model, seq, args.frames) / reference))

    print(f"{args.frames} frames per pair, fresh noise per frame: visible sigma as in the column, IR sigma "
          f"{IR_SIGMA:g}. Cell: fused frame-to-frame change / the visible input's (at sigma 0: / the IR's).\n")
    head = " | ".join(f"sigma {s:g}" for s in sigmas)
    print(f"| model | pair | {head} |")
    print("|---|---|" + "---:|" * len(sigmas))
    for model in models:
        for i, (name, _) in enumerate(transfer[model][sigmas[0]]):
            cells = " | ".join(f"{transfer[model][s][i][1]:.2f}" for s in sigmas)
            print(f"| {label(model)} | {name} | {cells} |")
        for what, fn in (("median", np.median), ("worst", np.max)):
            cells = " | ".join(f"**{fn([r for _, r in transfer[model][s]]):.2f}**" for s in sigmas)
            print(f"| **{label(model)}** | **{what}** | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
