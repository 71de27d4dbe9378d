#!/usr/bin/env bash
# Peak memory of timfusion-fuse on a folder of 640x480 pairs (msrs_sample, 28
# pairs), per model and --threads: the memory rule (FuserPool::frames_fit)
# keeps ivif-light (about 1 GB of tensors a frame) to one frame at a time over
# the threads, while ivif-rt's small frames go side by side. Prints Markdown rows:
#   | model | threads | pairs | peak RSS MB | seconds |
#   MODELS="ivif-rt ivif-light" THREADS="1 2" scripts/fuse_memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DATA=${TIMFUSION_DATA_DIR:-$(cat "$BUILD_DIR/data_dir.txt")}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=$(ls "$DATA/msrs_sample/ir" | wc -l)
echo "| model | threads | pairs | peak RSS MB | seconds |"
echo "|---|---:|---:|---:|---:|"
for m in ${MODELS:-ivif-rt ivif-light}; do for t in ${THREADS:-1 2}; do
  rm -rf "${out:?}"/*
  r=($(/usr/bin/time -f "%M %e" "$BUILD_DIR/core/timfusion-fuse" --quiet --model "$m" --threads "$t" \
       --ir "$DATA/msrs_sample/ir" --vis "$DATA/msrs_sample/vis" --output "$out" 2>&1 | tail -1))
  echo "| $m | $t | $n | $((r[0] / 1024)) | ${r[1]} |"
done; done
