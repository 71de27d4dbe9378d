#!/usr/bin/python3
"""Chooses among candidate models (e.g. seeds of one recipe) on a validation
subset of the TRAINING pool, never on a test set (TNO42, msrs_sample,
RoadScene test50 are only for the quality table).

    scripts/pick_by_validation.py --out DIR NAME=WEIGHTS [NAME=WEIGHTS ...]

Validation pairs (fixed by name order, so the subset is the same on every
machine): every 7th pair of msrs_seg, every 8th pair of RoadScene outside its
test split, all of llvip_sample and m3fd_sample. They are training pairs of
every candidate, so the scores are not an estimate of held-out quality; they
only rank candidates that saw the same data. Rule: each candidate scores one
point per (counted metric, other candidate) it beats on the subset's mean
(EN SD SF AG MI Qabf SSIM EI, higher is better for all); the most points wins,
ties go to the earlier candidate. --rule fidelity counts all ten shown
metrics (VIF, and Nabf where lower is better, as well): 5 of the 8 counted
ones reward contrast and sharpness, so that rule alone prefers sharpening to
fidelity; issue 26 asks for both. Prints a Markdown table and, last, the
winner's name.
"""
import argparse
import os
import subprocess
import sys

from fusion_tools import data_dir, default_build, fuse
from quality_summary import COUNTED, LABEL, SHOWN, read_means


def names(folder):
    return sorted(os.path.splitext(f)[0] for f in os.listdir(folder))


def file_of(folder, name):
    for f in os.listdir(folder):
        if os.path.splitext(f)[0] == name:
            return os.path.join(folder, f)
    sys.exit(f"pick_by_validation: no file for {name} in {folder}")


def make_split(data, dest):
    test50 = set(l.strip() for l in open(os.path.join(data, "roadscene/subsets/cddfuse_test50.txt")) if l.strip())
    chosen = []  # (dataset, name)
    msrs = names(os.path.join(data, "msrs_seg/ir"))
    chosen += [("msrs_seg", n) for i, n in enumerate(msrs, 1) if i % 7 == 0]
    road = [n for n in names(os.path.join(data, "roadscene/ir")) if n not in test50]
    chosen += [("roadscene", n) for i, n in enumerate(road, 1) if i % 8 == 0]
    for d in ("llvip_sample", "m3fd_sample"):
        chosen += [(d, n) for n in names(os.path.join(data, d, "ir"))]
    for side in ("ir", "vis"):
        os.makedirs(os.path.join(dest, side), exist_ok=True)
    for d, n in chosen:
        for side in ("ir", "vis"):
            src = file_of(os.path.join(data, d, side), n)
            link = os.path.join(dest, side, f"{d}_{n}{os.path.splitext(src)[1]}")
            if not os.path.lexists(link):
                os.symlink(os.path.realpath(src), link)
    return len(chosen)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="work folder (split links, fused images, scores.csv)")
    ap.add_argument("--build", default=default_build())
    ap.add_argument("--data", default=None, help="the shared data (default: the build's data_dir.txt)")
    ap.add_argument("--rule", choices=["counted", "fidelity"], default="counted",
                    help="counted: the 8 counted metrics; fidelity: all 10 shown (VIF, Nabf too)")
    ap.add_argument("models", nargs="+", help="NAME=WEIGHTS.safetensors")
    a = ap.parse_args()
    data = a.data or str(data_dir(a.build))
    split = os.path.join(a.out, "split")
    n = make_split(data, split)
    cands = [m.split("=", 1) for m in a.models]
    if any(len(c) != 2 for c in cands) or len(cands) < 2:
        sys.exit("pick_by_validation: give two or more NAME=WEIGHTS")
    ir, vis = os.path.join(split, "ir"), os.path.join(split, "vis")
    for name, weights in cands:
        fuse(a.build, weights, ir, vis, os.path.join(a.out, name))
    cmd = [os.path.join(a.build, "core/timfusion-eval"), "--no-progress", "--metrics", ",".join(SHOWN), "--format",
           "csv", "--ir", ir, "--vis", vis, "--fused", os.path.join(a.out, cands[0][0])]
    for name, _ in cands[1:]:
        cmd += ["--compare", f"{name}={os.path.join(a.out, name)}"]
    scores = os.path.join(a.out, "scores.csv")
    with open(scores, "w") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.DEVNULL)
    _, means = read_means(scores)
    order = [c[0] for c in cands]
    metrics = COUNTED if a.rule == "counted" else SHOWN

    def beats(m, o, k):
        return means[m][k] < means[o][k] if k == "nabf" else means[m][k] > means[o][k]

    points = {m: sum(1 for o in order if o != m for k in metrics if beats(m, o, k)) for m in order}
    print(f"Validation subset of the training pool: {n} pairs (means; VIFB per-channel); rule {a.rule}\n")
    print("| model | " + " | ".join(LABEL[k] for k in SHOWN) + " | points |")
    print("|---|" + "---:|" * (len(SHOWN) + 1))
    for m in order:
        print(f"| {m} | " + " | ".join(f"{means[m][k]:.4f}" for k in SHOWN) + f" | {points[m]} |")
    best = max(order, key=lambda m: (points[m], -order.index(m)))
    print(f"\n{best}")


if __name__ == "__main__":
    main()
