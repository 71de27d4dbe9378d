#!/usr/bin/env bash
# The element in a plain gst-launch-1.0 pipeline (no environment tweaks), 640x480 RGB + GRAY8:
# ms/frame and minor page faults/frame from the difference of a 320-frame and a 20-frame run
# (startup subtracted), per model and thread count. Prints Markdown rows:
#   | model | precision | threads | ms/frame | fps | page faults/frame |
#   MODELS="ivif-rt other.safetensors" THREADS="1 2" PRECISIONS="fp32 bf16" scripts/launch_speed.sh
# (bf16: the element's precision=bf16, on CPUs with AVX512-BF16; elsewhere the element refuses it.)
set -euo pipefail
cd "$(dirname "$0")/.."
export GST_PLUGIN_PATH=$PWD/${BUILD_DIR:-build}/gst-plugin
run() { /usr/bin/time -f "%e %R" gst-launch-1.0 -q videotestsrc num-buffers=$1 ! video/x-raw,format=RGB,width=640,height=480,framerate=30/1 ! f.vis videotestsrc num-buffers=$1 pattern=ball ! video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1 ! f.ir timfusion name=f threads=$2 model=$3 precision=$4 ! fakesink 2>&1 | tail -1; }
for m in ${MODELS:-ivif-rt ivif-light}; do for p in ${PRECISIONS:-fp32}; do for t in ${THREADS:-1 2}; do
  a=($(run 20 $t $m $p)); b=($(run 320 $t $m $p))
  python3 -c "import sys; a,af,b,bf=map(float,sys.argv[1:5]); ms=(b-a)/300*1000; print(f'| {sys.argv[5]} | {sys.argv[7]} | {sys.argv[6]} | {ms:.1f} | {1000/ms:.1f} | {(bf-af)/300:.0f} |')" ${a[0]} ${a[1]} ${b[0]} ${b[1]} $(basename $m) $t $p
done; done; done
