#!/usr/bin/python3
"""The element on video: static-region flicker, moving-object error and cost
of its temporal mode, on synthetic sequences made from the shared data.

Each sequence: a registered pair as a static scene, FRAMES frames, fresh
Gaussian noise every frame (visible sigma 6 grey levels, a low-light colour
camera; IR sigma 2), and a warm textured object (40x40 px, its texture from
elsewhere in the same images, 60-100 grey levels above the IR scene)
crossing the frame by 3 px right and 1 px down per frame. The clean frames
(no noise) are written too. Each sequence is played through
`multifilesrc ! pngdec ! timfusion ! pngenc` in a plain gst-launch-1.0 (30
fps, not live):

  default    the element with default properties (temporal mode on)
  per-frame  temporal=false: every noisy frame fused on its own
  clean      temporal=false on the noise-free frames: the reference

Columns (luma):
  flicker    mean|O_t - O_t-1| over the static region (pixels the object
             never comes within 8 px of) / the same of the visible camera
  object err mean|O_t - clean_t| over the object's box (+4 px) at t,
             averaged over t >= 1; `vs per-frame` = default's / per-frame's

Cost: ms per frame of the element at 640x480 on one thread in plain
gst-launch-1.0 (videotestsrc), temporal on and off, from the difference of a
320- and a 20-frame run, median of ROUNDS interleaved rounds.

    scripts/video_table.py [--model NAME_OR_FILE] [--frames 30] [--rounds 3] [--no-cost]
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np

from fusion_tools import ROOT, data_dir, default_build, label

SEQUENCES = [("msrs_sample", "00881N"), ("tno42", "10"), ("roadscene", "FLIR_04269"), ("msrs_sample", "00537D")]
VIS_SIGMA, IR_SIGMA, SIDE, STEP = 6.0, 2.0, 40, (3, 1)


def luma(img):
    if img.ndim == 2:
        return img.astype(np.float64)
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)


def object_box(t, shape):
    h, w = shape[:2]
    x0, y0 = w // 8, h // 3
    return x0 + STEP[0] * t, y0 + STEP[1] * t


def make_sequence(ir, vis, frames, rng, out):
    h, w = ir.shape[:2]
    # The object's texture: a textured patch from the lower right of the same pair.
    ty, tx = int(h * 0.6), int(w * 0.6)
    tex_ir = ir[ty:ty + SIDE, tx:tx + SIDE].astype(np.float64)
    tex_ir = 60 + 40 * (tex_ir - tex_ir.min()) / max(1.0, np.ptp(tex_ir))
    tex_vis = vis[ty:ty + SIDE, tx:tx + SIDE]
    for kind in ("clean", "noisy"):
        for cam in ("ir", "vis"):
            (out / kind / cam).mkdir(parents=True)
    boxes = []
    for t in range(frames):
        x, y = object_box(t, ir.shape)
        boxes.append((x, y))
        f_ir, f_vis = ir.astype(np.float64), vis.astype(np.float64)
        f_ir[y:y + SIDE, x:x + SIDE] = np.clip(ir[y:y + SIDE, x:x + SIDE] + tex_ir, 0, 255)
        f_vis[y:y + SIDE, x:x + SIDE] = tex_vis
        for kind, s_ir, s_vis in (("clean", 0, 0), ("noisy", IR_SIGMA, VIS_SIGMA)):
            n_ir = f_ir + (rng.normal(0, s_ir, f_ir.shape) if s_ir else 0)
            n_vis = f_vis + (rng.normal(0, s_vis, f_vis.shape) if s_vis else 0)
            cv2.imwrite(str(out / kind / "ir" / f"{t:06d}.png"), np.clip(n_ir, 0, 255).round().astype(np.uint8))
            cv2.imwrite(str(out / kind / "vis" / f"{t:06d}.png"), np.clip(n_vis, 0, 255).round().astype(np.uint8))
    return boxes


def env(build):
    e = dict(os.environ)
    e["GST_PLUGIN_PATH"] = str(pathlib.Path(build) / "gst-plugin")
    return e


def run_element(build, model, frames_dir, frames, out, props):
    out.mkdir(parents=True)
    src = lambda cam: (f'multifilesrc location={frames_dir / cam / "%06d.png"} index=0 stop-index={frames - 1} '
                       f'caps=image/png,framerate=30/1 ! pngdec ! videoconvert ! f.{cam}')
    line = (f'{src("vis")} {src("ir")} timfusion name=f model={model} {props} ! videoconvert ! pngenc ! '
            f'multifilesink location={out / "%06d.png"}')
    subprocess.run(["gst-launch-1.0", "-q"] + line.split(), check=True, env=env(build))
    return [luma(cv2.imread(str(out / f"{t:06d}.png"), cv2.IMREAD_UNCHANGED)) for t in range(frames)]


def read(folder, frames):
    return [luma(cv2.imread(str(folder / f"{t:06d}.png"), cv2.IMREAD_UNCHANGED)) for t in range(frames)]


def flicker(seq, mask):
    return float(np.mean([np.abs(seq[t] - seq[t - 1])[mask].mean() for t in range(1, len(seq))]))


def object_error(seq, ref, boxes):
    errs = []
    for t in range(1, len(seq)):
        x, y = boxes[t]
        sl = (slice(max(0, y - 4), y + SIDE + 4), slice(max(0, x - 4), x + SIDE + 4))
        errs.append(np.abs(seq[t][sl] - ref[t][sl]).mean())
    return float(np.mean(errs))


def launch_ms(build, model, frames, props):
    line = (f"videotestsrc num-buffers={frames} pattern=snow ! video/x-raw,format=RGB,width=640,height=480,"
            f"framerate=30/1 ! f.vis videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,format=GRAY8,"
            f"width=640,height=480,framerate=30/1 ! f.ir timfusion name=f threads=1 model={model} {props} ! fakesink")
    t0 = time.perf_counter()
    subprocess.run(["gst-launch-1.0", "-q"] + line.split(), check=True, env=env(build))
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ivif-rt", help="shipped model name or weight file")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-cost", action="store_true", help="skip the speed rows")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build", default=default_build())
    ap.add_argument("--out", default=str(ROOT / "out" / "video"))
    args = ap.parse_args()
    data = data_dir(args.build)
    out = pathlib.Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(args.seed)
    model = str(pathlib.Path(args.model).resolve()) if pathlib.Path(args.model).exists() else args.model

    print(f"model {label(args.model)}; {args.frames} frames per sequence at 30 fps; visible noise sigma "
          f"{VIS_SIGMA:g}, IR {IR_SIGMA:g}; a warm textured {SIDE}x{SIDE} object moving {STEP[0]} px right and "
          f"{STEP[1]} down per frame\n")
    print("| sequence | flicker: default | flicker: per-frame | object err: default | object err: per-frame "
          "| default vs per-frame |")
    print("|---|---:|---:|---:|---:|---:|")
    for set_name, pair in SEQUENCES:
        ir = cv2.imread(str(data / set_name / "ir" / f"{pair}.png"), cv2.IMREAD_GRAYSCALE)
        vis = cv2.imread(str(data / set_name / "vis" / f"{pair}.png"), cv2.IMREAD_UNCHANGED)
        seq = out / f"{set_name}-{pair}"
        boxes = make_sequence(ir, vis, args.frames, rng, seq)
        mask = np.ones(ir.shape[:2], bool)
        for x, y in boxes:
            mask[max(0, y - 8):y + SIDE + 8, max(0, x - 8):x + SIDE + 8] = False
        cam = flicker(read(seq / "noisy" / "vis", args.frames), mask)
        default = run_element(args.build, model, seq / "noisy", args.frames, seq / "default", "")
        per_frame = run_element(args.build, model, seq / "noisy", args.frames, seq / "per-frame", "temporal=false")
        clean = run_element(args.build, model, seq / "clean", args.frames, seq / "clean-fused", "temporal=false")
        e_d, e_p = object_error(default, clean, boxes), object_error(per_frame, clean, boxes)
        print(f"| {set_name}/{pair} | {flicker(default, mask) / cam:.2f} | {flicker(per_frame, mask) / cam:.2f} | "
              f"{e_d:.2f} | {e_p:.2f} | {e_d / e_p:.2f} |")
    if args.no_cost:
        return 0
    print("\n| 640x480, 1 thread, plain gst-launch-1.0 | ms/frame | fps |")
    print("|---|---:|---:|")
    times = {"temporal=true": [], "temporal=false": []}
    for _ in range(args.rounds):
        for props in times:
            times[props].append((launch_ms(args.build, model, 320, props) - launch_ms(args.build, model, 20, props))
                                / 300 * 1000)
    for props, ms in times.items():
        m = float(np.median(ms))
        print(f"| {props} (rounds: {', '.join(f'{x:.1f}' for x in ms)}) | {m:.1f} | {1000 / m:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
