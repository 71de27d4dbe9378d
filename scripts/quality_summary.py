#!/usr/bin/env python3
"""Summarises one test set's timfusion-eval csv (method,image,metric,value) for
scripts/quality_table.sh: a Markdown table of the means per method and, for
each of our models, how many of the 8 counted metrics it wins against each
published method.

Counted (higher is better for all): EN SD SF AG MI Qabf SSIM EI.
Also shown, not counted: VIF (higher is better) and Nabf (artefacts: lower is better).
"""
import argparse
import csv
import sys

COUNTED = ["en", "sd", "sf", "ag", "mi", "qabf", "ssim", "ei"]
SHOWN = COUNTED + ["vif", "nabf"]
LABEL = {"en": "EN", "sd": "SD", "sf": "SF", "ag": "AG", "mi": "MI", "qabf": "Qabf", "ssim": "SSIM",
         "ei": "EI", "vif": "VIF", "nabf": "Nabf"}


def read_means(path):
    means = {}
    order = []
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["image"] != "mean":
                continue
            m = row["method"]
            if m not in means:
                means[m] = {}
                order.append(m)
            means[m][row["metric"]] = float(row["value"])
    return order, means


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--set", required=True)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--ours", required=True, help="comma-separated names of our models")
    ap.add_argument("csv")
    a = ap.parse_args()
    order, means = read_means(a.csv)
    ours = [m for m in a.ours.split(",") if m in means]
    published = [m for m in order if m not in ours]

    print(f"#### {a.set} ({a.pairs} pairs; VIFB per-channel means)\n")
    print("| method | " + " | ".join(LABEL[k] for k in SHOWN) + " |")
    print("|---|" + "---:|" * len(SHOWN))
    for m in order:
        best = {k: (min if k == "nabf" else max)(means[x].get(k, float("nan")) for x in order) for k in SHOWN}
        cells = []
        for k in SHOWN:
            v = means[m].get(k, float("nan"))
            s = f"{v:.4f}"
            cells.append(f"**{s}**" if v == best[k] else s)
        print(f"| {m} | " + " | ".join(cells) + " |")
    if not published:
        return 0
    print(f"\nWins of the 8 counted metrics (EN SD SF AG MI Qabf SSIM EI), ours vs each published method:\n")
    print("| model | " + " | ".join(published) + " |")
    print("|---|" + "---:|" * len(published))
    for o in ours:
        cells = []
        for p in published:
            won = [LABEL[k] for k in COUNTED if means[o][k] > means[p][k]]
            cells.append(f"{len(won)}/8")
        print(f"| {o} | " + " | ".join(cells) + " |")
    print()
    for o in ours:
        for p in published:
            won = [LABEL[k] for k in COUNTED if means[o][k] > means[p][k]]
            lost = [LABEL[k] for k in COUNTED if means[o][k] <= means[p][k]]
            print(f"- {o} vs {p}: wins {' '.join(won) or '-'}; loses {' '.join(lost) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
