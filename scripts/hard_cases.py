#!/usr/bin/python3
"""Side-by-side images of the hard cases for docs/ (IR | visible | our models |
a published method where one exists), plus the road-arrow contrast of MSRS
00032N (luma, rows 330-480, columns 300-450: the 95th minus the 50th
percentile, i.e. paint vs asphalt), which a fusion that follows the IR there
loses; the last row is a night frame with a noisy colour camera.

    scripts/hard_cases.py [--model NAME_OR_FILE ...] [--out docs/hard-cases.png]
"""
import argparse
import pathlib
import sys
import tempfile

import cv2
import numpy as np

from fusion_tools import ROOT, data_dir, default_build, fuse, label, shipped_models
# (set, pair, published method folder or None, visible noise sigma): the last
# row is a night frame from a noisy colour camera (sigma 10 grey levels of
# Gaussian noise added to the visible image, fixed seed), as a live rig at night
# delivers; published outputs are of the clean pair, so none is shown there.
CASES = [("msrs_sample", "00032N", "SeAFusion_VIFBenchmark_run", 0), ("tno42", "10", "SeAFusion", 0),
         ("llvip_sample", None, None, 0), ("msrs_sample", "00881N", None, 10)]
HEIGHT = 240  # each tile is scaled to this height


def bgr(img):
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img


def tile(img, label):
    img = bgr(img)
    img = cv2.resize(img, (round(img.shape[1] * HEIGHT / img.shape[0]), HEIGHT), interpolation=cv2.INTER_AREA)
    cv2.putText(img, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def arrow_contrast(img):
    y = cv2.cvtColor(bgr(img), cv2.COLOR_BGR2GRAY).astype(np.float64)[330:480, 300:450]
    return float(np.percentile(y, 95) - np.percentile(y, 50))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append")
    ap.add_argument("--build", default=default_build())
    ap.add_argument("--out", default=str(ROOT / "docs" / "hard-cases.png"))
    args = ap.parse_args()
    models = args.model or shipped_models()
    data = data_dir(args.build)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for set_name, pair, published, vis_noise in CASES:
            if pair is None:
                names = sorted(p.stem for p in (data / set_name / "ir").glob("*.png"))
                pair = names[len(names) // 2]
            ir_path, vis_path = data / set_name / "ir" / f"{pair}.png", data / set_name / "vis" / f"{pair}.png"
            if vis_noise:
                clean = cv2.imread(str(vis_path), cv2.IMREAD_UNCHANGED).astype(np.float64)
                noisy = clean + np.random.default_rng(1).normal(0, vis_noise, clean.shape)
                vis_path = pathlib.Path(tmp) / f"noisy-{set_name}-{pair}.png"
                cv2.imwrite(str(vis_path), np.clip(noisy, 0, 255).round().astype(np.uint8))
            tiles = [tile(cv2.imread(str(ir_path), cv2.IMREAD_UNCHANGED), f"IR {set_name}/{pair}"),
                     tile(cv2.imread(str(vis_path), cv2.IMREAD_UNCHANGED),
                          f"visible + noise {vis_noise}" if vis_noise else "visible")]
            vis = cv2.imread(str(vis_path), cv2.IMREAD_UNCHANGED)
            if pair == "00032N":
                print(f"00032N arrow contrast (luma p95 - p50, rows 330-480, cols 300-450): visible "
                      f"{arrow_contrast(vis):.1f}")
            for model in models:
                out = pathlib.Path(tmp) / f"{label(model)}-{set_name}-{pair}.png"
                fuse(args.build, model, ir_path, vis_path, out)
                fused = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
                tiles.append(tile(fused, label(model)))
                if pair == "00032N":
                    print(f"  {label(model)}: {arrow_contrast(fused):.1f}")
            if published:
                pub = cv2.imread(str(data / set_name / "fused" / published / f"{pair}.png"), cv2.IMREAD_UNCHANGED)
                tiles.append(tile(pub, published.split("_")[0]))
                if pair == "00032N":
                    print(f"  {published}: {arrow_contrast(pub):.1f}")
            rows.append(tiles)
    width = max(sum(t.shape[1] for t in r) for r in rows)
    canvas = np.zeros((HEIGHT * len(rows), width, 3), np.uint8)
    for i, r in enumerate(rows):
        x = 0
        for t in r:
            canvas[i * HEIGHT:(i + 1) * HEIGHT, x:x + t.shape[1]] = t
            x += t.shape[1]
    cv2.imwrite(args.out, canvas, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({canvas.shape[1]}x{canvas.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
