#!/usr/bin/env bash
# Speed table, one run, 640x480: for ivif-light, the Python/PyTorch reference
# implementation (Debian python3-torch, same weights) vs timfusion core vs the
# timfusion element in a real pipeline (appsrc ! timfusion ! fakesink); then
# core and element for the real-time model ivif-rt (the Python reference has no
# downscale/blend head). ms/frame, fps, ratio to Python, 1 and 2 threads, peak
# RSS of each row's own process. Usage: scripts/speed_table.sh [FRAMES]
# (default 3 for ivif-light; ivif-rt runs 30x as many).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
FRAMES=${1:-3}
LIGHT=core/models/ivif-light.safetensors
RT=core/models/ivif-rt.safetensors
RT_FRAMES=$((FRAMES * 30))
echo "timfusion $("$BUILD_DIR/core/timfusion-bench" --version | cut -d' ' -f2); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo

row() {  # label threads ms rss python_ms
  awk -v l="$1" -v t="$2" -v ms="$3" -v rss="$4" -v py="$5" 'BEGIN{
    vs = (py == "") ? "-" : sprintf("%.2fx", py / ms);
    printf "| %s | %d | %.1f | %.2f | %s | %.0f |\n", l, t, ms, 1000 / ms, vs, rss }'
}
core_row() {  # model threads frames -> "ms rss" from timfusion-bench (mean, peak RSS)
  "$BUILD_DIR/core/timfusion-bench" --model "$1" --frames "$3" | grep '| 640x480 |' |
    awk -F'|' -v t="$2" '{gsub(/ /, "", $4); if ($4 == t) { gsub(/ /, "", $6); gsub(/ /, "", $10); print $6, $10 }}'
}
element_row() {  # model threads frames -> "ms rss"
  "$BUILD_DIR/gst-plugin/timfusion-gst-bench" --element-only --model "$1" --threads "$2" --frames "$3" 2>/dev/null |
    awk '/^ELEMENT/ { print $3, $4 }'
}

printf '| implementation | threads | ms/frame | fps | speed-up vs Python | peak RSS MB |\n|---|---|---|---|---|---|\n'
declare -A py
for t in 1 2; do
  line=$(/usr/bin/python3 scripts/tim_reference.py bench --arch ivif-light --weights "$LIGHT" \
         --width 640 --height 480 --threads "$t" --frames "$FRAMES")
  ms=$(sed -n 's/.*ms_per_frame=\([0-9.]*\).*/\1/p' <<<"$line"); rss=$(sed -n 's/.*peak_rss_mb=\([0-9.]*\).*/\1/p' <<<"$line")
  py[$t]=$ms
  row "ivif-light: Python reference (PyTorch eager)" "$t" "$ms" "$rss" "$ms"
done
rows() {  # label measure-function model frames [vs-python]: one row per thread count
  for t in 1 2; do
    read -r ms rss < <("$2" "$3" "$t" "$4")
    row "$1" "$t" "$ms" "$rss" "${5:+${py[$t]}}"
  done
}
rows "ivif-light: timfusion core (LibTorch, BN folded, NHWC)" core_row "$LIGHT" "$FRAMES" vs-python
rows "ivif-light: timfusion element in a pipeline" element_row "$LIGHT" "$FRAMES" vs-python
if [ -f "$RT" ]; then
  rows "ivif-rt: timfusion core" core_row "$RT" "$RT_FRAMES"
  rows "ivif-rt: timfusion element in a pipeline" element_row "$RT" "$RT_FRAMES"
fi
echo
echo "Frames: $FRAMES (ivif-light), $RT_FRAMES (ivif-rt) after an untimed warm-up frame. Core rows: timfusion-bench"
echo "(mean network forward, BN folded, NHWC); element rows: timfusion-gst-bench --element-only (whole frame path, first output"
echo "untimed), each in its own process, so the peak RSS is that row's own."
