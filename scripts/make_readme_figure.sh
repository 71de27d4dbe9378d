#!/usr/bin/env bash
# docs/readme-fusion.png: IR | visible | fused, side by side, for the README.
# The fused image is made by timfusion-fuse with the default model (ivif-rt)
# from one shared MSRS pair (night scene, not in the shipped models' training
# data); rerun this script after the default model is retrained.
#
#   scripts/make_readme_figure.sh [PAIR]     (default 00032N, from ../shared/data/msrs_sample)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
PAIR=${1:-00032N}
DATA=${TIMFUSION_DATA_DIR:-$(cat "$BUILD_DIR/data_dir.txt")}
ir=$DATA/msrs_sample/ir/$PAIR.png vis=$DATA/msrs_sample/vis/$PAIR.png
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Its first stderr line names the model file: "timfusion-fuse: .../ivif-rt.safetensors (arch) on cpu, fp32".
model=$(env -u TIMFUSION_MODEL "$BUILD_DIR/core/timfusion-fuse" --ir "$ir" --vis "$vis" --output "$tmp/fused.png" 2>&1 |
  sed -n 's|^timfusion-fuse: .*/\([^/]*\)\.safetensors (.*|\1|p')
[ -s "$tmp/fused.png" ] || { echo "make_readme_figure: timfusion-fuse failed" >&2; exit 1; }
mkdir -p docs
/usr/bin/python3 - "$ir" "$vis" "$tmp/fused.png" docs/readme-fusion.png "$PAIR" "$model" <<'PY'
import sys
import cv2
import numpy as np
ir_p, vis_p, fused_p, out_p, pair, model = sys.argv[1:7]
width = 256  # per panel: the PNG stays small (~150 KB)
panels = []
for path, label in ((ir_p, "infrared"), (vis_p, "visible"), (fused_p, f"fused ({model})")):
    im = cv2.imread(path, cv2.IMREAD_COLOR)
    im = cv2.resize(im, (width, round(im.shape[0] * width / im.shape[1])), interpolation=cv2.INTER_AREA)
    cv2.rectangle(im, (0, 0), (width, 22), (0, 0, 0), cv2.FILLED)
    cv2.putText(im, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    panels.append(im)
gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
row = np.hstack([panels[0], gap, panels[1], gap, panels[2]])
cv2.imwrite(out_p, row, [cv2.IMWRITE_PNG_COMPRESSION, 9])
print(f"{out_p}: {row.shape[1]}x{row.shape[0]}, MSRS pair {pair}, model {model}")
PY
