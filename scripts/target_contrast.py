#!/usr/bin/python3
"""Night target contrast: how a person stands out from its surround in the
fused image, the reason a thermal camera is on a rig at night.

For every person box of the IR labels (class 0, msrs_sample
labels/detection/ir) on msrs_sample's night test pairs (names ending in N,
split "test": not in any shipped model's training data), the contrast is

    mean luma inside the box - mean luma of its surround

(the surround: the box grown by half its width and height on each side,
minus the box, clipped to the image), averaged over all boxes. Printed for
each model (timfusion-fuse), SeAFusion's published outputs, and the two
inputs.

    scripts/target_contrast.py [--model NAME_OR_FILE ...]
"""
import argparse
import pathlib
import sys
import tempfile

import cv2
import numpy as np

from fusion_tools import data_dir, default_build, fuse, label, shipped_models


def luma(img):
    return (img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)).astype(np.float64)


def person_boxes(path, w, h):
    boxes = []
    for line in open(path):
        f = line.split()
        if len(f) == 5 and f[0] == "0":
            cx, cy, bw, bh = (float(v) for v in f[1:])
            boxes.append((int((cx - bw / 2) * w), int((cy - bh / 2) * h), int(bw * w), int(bh * h)))
    return [b for b in boxes if b[2] > 1 and b[3] > 1]


def contrast(img, box):
    x, y, w, h = box
    H, W = img.shape
    gx, gy = w // 2, h // 2
    x0, y0, x1, y1 = max(0, x - gx), max(0, y - gy), min(W, x + w + gx), min(H, y + h + gy)
    ring = np.zeros((H, W), bool)
    ring[y0:y1, x0:x1] = True
    inside = np.zeros((H, W), bool)
    inside[max(0, y):y + h, max(0, x):x + w] = True
    ring &= ~inside
    return img[inside].mean() - img[ring].mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append")
    ap.add_argument("--build", default=default_build())
    args = ap.parse_args()
    models = args.model or shipped_models()
    data = data_dir(args.build) / "msrs_sample"
    split = dict(l.split() for l in open(data / "split.txt") if l.strip())
    names = [n for n, s in sorted(split.items()) if s == "test" and n.endswith("N")]
    sources = {"IR": lambda n: data / "ir" / f"{n}.png", "visible": lambda n: data / "vis" / f"{n}.png",
               "SeAFusion": lambda n: data / "fused" / "SeAFusion_VIFBenchmark_run" / f"{n}.png"}
    rows = {k: [] for k in list(sources) + [label(m) for m in models]}
    with tempfile.TemporaryDirectory() as tmp:
        boxes_seen = 0
        for n in names:
            labels = data / "labels" / "detection" / "ir" / f"{n}.txt"
            if not labels.exists():
                continue
            ir = cv2.imread(str(sources["IR"](n)), cv2.IMREAD_UNCHANGED)
            boxes = person_boxes(labels, ir.shape[1], ir.shape[0])
            if not boxes:
                continue
            boxes_seen += len(boxes)
            images = {k: luma(cv2.imread(str(f(n)), cv2.IMREAD_UNCHANGED)) for k, f in sources.items()}
            for m in models:
                out = pathlib.Path(tmp) / f"{label(m)}-{n}.png"
                fuse(args.build, m, sources["IR"](n), sources["visible"](n), out)
                images[label(m)] = luma(cv2.imread(str(out), cv2.IMREAD_UNCHANGED))
            for k, img in images.items():
                rows[k] += [contrast(img, b) for b in boxes]
    print(f"{boxes_seen} IR person boxes on {len(names)} msrs_sample night test pairs; "
          "luma, box mean - surround mean (grey levels)\n")
    print("| image | person contrast |")
    print("|---|---:|")
    for k, v in rows.items():
        print(f"| {k} | {np.mean(v):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
