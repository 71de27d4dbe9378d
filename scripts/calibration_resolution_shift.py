#!/usr/bin/python3
"""How far the cross-modal structure optimum moves when only the IR camera's
resolution changes: the measurement behind the noise-blur rule of
core/src/calibration/structure.cpp (make_level).

For registered pairs that are not in any benchmark (RoadScene pairs outside
the cddfuse_test50 split, every 12th; MSRS pairs of msrs_seg, every 10th),
the structure optimum H0 of the untouched pair is found at full resolution
(homography ECC of the structure maps, as the calibration's finest level);
then the IR frame is reduced to 1/2 and 1/3 of the resolution (area filter)
and the optimum is found again from H0, once with the old rule (noise blur
of one IR pixel before the gradient) and once with the current one (one
visible pixel, i.e. 1/ratio IR pixels; none below 0.3). Printed: median and
90th percentile of the distance between the two optima in visible pixels
(mean over a 5x5 lattice). The structure map mirrors structure.cpp's
(gradient magnitude / local mean, 99th percentile, square root).

    scripts/calibration_resolution_shift.py      (about 4 min on 2 cores)
"""
import argparse
import os
import pathlib
import sys
from multiprocessing import Pool

import cv2
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fusion_tools import data_dir, default_build  # noqa: E402

CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 300, 1e-7)  # kFinestIterations, kFinestEps
RESOLUTIONS = (0.5, 1 / 3)


def structure_map(gray, pre_blur):
    if pre_blur >= 0.3:
        gray = cv2.GaussianBlur(gray, (0, 0), pre_blur)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    local = cv2.GaussianBlur(mag, (0, 0), max(4.0, max(gray.shape) / 40.0)) + 0.2 * mag.mean() + 1e-6
    mag = mag / local
    return np.sqrt(np.minimum(mag / max(np.percentile(mag, 99), 1e-12), 1.0)).astype(np.float32)


def distance(h1, h2, width, height):
    pts = np.array([[(x + 0.5) * width / 5 - 0.5, (y + 0.5) * height / 5 - 0.5, 1.0]
                    for y in range(5) for x in range(5)]).T
    p1, p2 = h1 @ pts, h2 @ pts
    return float(np.mean(np.hypot(*(p1[:2] / p1[2] - p2[:2] / p2[2]))))


def shifts(paths):
    ir = cv2.imread(paths[0], cv2.IMREAD_GRAYSCALE).astype(np.float32)
    vis = cv2.imread(paths[1], cv2.IMREAD_GRAYSCALE).astype(np.float32)
    height, width = vis.shape
    out = []
    try:
        _, h0 = cv2.findTransformECC(structure_map(ir, 1.0), structure_map(vis, 1.0), np.eye(3, dtype=np.float32),
                                     cv2.MOTION_HOMOGRAPHY, CRITERIA, None, 5)
    except cv2.error:
        return None
    h0 = h0.astype(np.float64)
    for r in RESOLUTIONS:
        ratio = 1 / r  # visible pixels per IR pixel
        small = cv2.resize(cv2.GaussianBlur(ir, (0, 0), 0.45 * ratio), (round(width * r), round(height * r)),
                           interpolation=cv2.INTER_AREA)
        up = np.array([[ratio, 0, 0.5 * ratio - 0.5], [0, ratio, 0.5 * ratio - 0.5], [0, 0, 1]])
        vis_blurred = cv2.GaussianBlur(vis, (0, 0), 0.45 * np.sqrt(ratio * ratio - 1))
        row = []
        for ir_blur in (1.0, 1.0 / ratio):  # old rule, current rule
            try:
                _, w = cv2.findTransformECC(structure_map(small, ir_blur), structure_map(vis_blurred, 1.0),
                                            (h0 @ up).astype(np.float32), cv2.MOTION_HOMOGRAPHY, CRITERIA, None, 5)
                row.append(distance(w.astype(np.float64) @ np.linalg.inv(up), h0, width, height))
            except cv2.error:
                row.append(np.nan)
        out.append(row)
    return out


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    data = data_dir(default_build())
    test = set((data / "roadscene/subsets/cddfuse_test50.txt").read_text().split())
    road = [n for n in sorted(os.listdir(data / "roadscene/ir")) if n[:-4] not in test][::12]
    msrs = sorted(os.listdir(data / "msrs_seg/ir"))[::10]
    jobs = [(str(data / "roadscene/ir" / n), str(data / "roadscene/vis" / n)) for n in road]
    jobs += [(str(data / "msrs_seg/ir" / n), str(data / "msrs_seg/vis" / n)) for n in msrs]
    with Pool(2) as pool:
        results = [r for r in pool.map(shifts, jobs) if r is not None]
    print(f"{len(results)} pairs (RoadScene outside the test split, msrs_seg)")
    print("| IR resolution | noise blur | median shift (px) | 90th pct. (px) |")
    print("|---|---|---|---|")
    for i, r in enumerate(RESOLUTIONS):
        arr = np.array([res[i] for res in results])
        for j, rule in enumerate(("one IR pixel (before)", "one visible pixel (now)")):
            print(f"| 1/{1 / r:.0f} | {rule} | {np.nanmedian(arr[:, j]):.2f} | {np.nanpercentile(arr[:, j], 90):.2f} |")


if __name__ == "__main__":
    main()
