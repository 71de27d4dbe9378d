#!/usr/bin/env bash
# Speed table, one run: ivif-light at 640x480 — the Python/PyTorch reference
# implementation (Debian python3-torch, same weights) vs timfusion core vs the
# timfusion element in a real pipeline; ms/frame, ratio to Python, 1 and 2
# threads, peak RSS; then the same for the real-time model ivif-rt. Usage: scripts/speed_table.sh [FRAMES]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
FRAMES=${1:-3}
MODEL=core/models/ivif-light.safetensors
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '| implementation | threads | ms/frame | fps | vs Python | peak RSS MB |\n|---|---|---|---|---|---|\n'
declare -A py
for t in 1 2; do
  line=$(/usr/bin/python3 scripts/tim_reference.py bench --arch ivif-light --weights "$MODEL" \
         --width 640 --height 480 --threads "$t" --frames "$FRAMES")
  ms=$(sed -n 's/.*ms_per_frame=\([0-9.]*\).*/\1/p' <<<"$line"); rss=$(sed -n 's/.*peak_rss_mb=\([0-9.]*\).*/\1/p' <<<"$line")
  py[$t]=$ms
  awk -v t="$t" -v ms="$ms" -v rss="$rss" 'BEGIN{printf "| Python reference (PyTorch eager) | %d | %.0f | %.2f | 1.00x | %.0f |\n", t, ms, 1000/ms, rss}'
done
# timfusion-bench rows: | arch | size | threads | layout | mean | best | fps | GFLOP/s | RSS |
"$BUILD_DIR/core/timfusion-bench" --model "$MODEL" --frames "$FRAMES" | grep '| 640x480 |' | while IFS='|' read -r _ arch size t layout mean best fps gf rss; do
  t=$(echo $t); mean=$(echo $mean); rss=$(echo $rss)
  awk -v t="$t" -v ms="$mean" -v py="${py[$t]}" -v rss="$rss" \
    'BEGIN{printf "| timfusion core (LibTorch, BN folded, NHWC) | %d | %.0f | %.2f | %.2fx faster | %.0f |\n", t, ms, 1000/ms, py/ms, rss}'
done
echo
echo "Element in a pipeline (appsrc ! timfusion ! fakesink, all cores) vs the bare core loop:"
"$BUILD_DIR/gst-plugin/timfusion-gst-bench" --model "$MODEL" --frames "$FRAMES" --rounds 1 --no-rss
# The real-time model (issue 6's goal: >= 30 fps at 640x480 on 2 cores, in the element).
RT=core/models/ivif-rt.safetensors
if [ -f "$RT" ]; then
  RT_FRAMES=$((FRAMES * 30))
  echo
  echo "ivif-rt ($RT), $RT_FRAMES frames: core forward per thread count, then the element (all cores):"
  echo
  "$BUILD_DIR/core/timfusion-bench" --model "$RT" --frames "$RT_FRAMES" | grep '| 640x480 |\|^| arch\|^|---'
  "$BUILD_DIR/gst-plugin/timfusion-gst-bench" --model "$RT" --frames "$RT_FRAMES" --rounds 1 --no-rss
fi
