#!/usr/bin/env bash
# Does the element's memory stay flat over a long run? The default model in a plain
# gst-launch-1.0 pipeline (640x480 RGB + GRAY8, no environment tweaks), once per frame
# count; peak RSS of the whole process (/usr/bin/time %M). Equal peaks for 1,000 and
# 10,000 frames mean nothing accumulates per frame. Prints Markdown rows:
#   | model | threads | frames | peak RSS MB | seconds |
#   FRAMES="1000 10000" THREADS=1 MODEL=ivif-rt scripts/rss_table.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export GST_PLUGIN_PATH=$PWD/${BUILD_DIR:-build}/gst-plugin
m=${MODEL:-ivif-rt}
echo "| model | threads | frames | peak RSS MB | seconds |"
echo "|---|---:|---:|---:|---:|"
for t in ${THREADS:-1}; do for n in ${FRAMES:-1000 10000}; do
  r=($(/usr/bin/time -f "%M %e" gst-launch-1.0 -q videotestsrc num-buffers=$n ! video/x-raw,format=RGB,width=640,height=480,framerate=30/1 ! f.vis \
       videotestsrc num-buffers=$n pattern=ball ! video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1 ! f.ir \
       timfusion name=f threads=$t model=$m ! fakesink 2>&1 | tail -1))
  echo "| $(basename "$m") | $t | $n | $((r[0] / 1024)) | ${r[1]} |"
done; done
