#!/usr/bin/env bash
# The downstream (task) table: what each input is worth to a segmentation
# network on msrs_seg, measured by `timfusion-train downstream` (the protocol:
# training/README.md, "Downstream protocol").
#
#   scripts/task_table.sh [NAME=WEIGHTS.safetensors ...] [-- DOWNSTREAM OPTIONS ...]
#
# Rows: ir, vis (luma), mean ((ir+vis)/2), the shipped models in MODELS
# (default: ivif-rt, the shipped default; MODELS="ivif-rt ivif-light" for both),
# each NAME=WEIGHTS given (e.g. a task-guided run's model.safetensors), and every
# published method folder under <data>/msrs_seg/fused/ (none ships with the
# shared data). Models fuse the 140 msrs_seg pairs with timfusion-fuse; the
# protocol trains on 124 and tests on the 16 that `train --task` holds out.
# Options after -- go to `timfusion-train downstream` (e.g. -- --seeds 5
# --threads 2; --task-labels labels_pseudo_bdlfusion for the 82 9-class masks).
# Writes out/task/{fused/<name>/, downstream/{results.json,report.md,report.png}}
# and prints the Markdown report. Defaults: about 2 min per row on one free thread
# (8 min for 5 rows), twice that on a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DATA=${TIMFUSION_DATA_DIR:-$(cat "$BUILD_DIR/data_dir.txt")}  # as meson.build found it
OUT=${OUT:-out/task}
MODELS=${MODELS:-ivif-rt}
SET="$DATA/msrs_seg"
FUSE="$BUILD_DIR/core/timfusion-fuse"
TRAIN="$BUILD_DIR/training/timfusion-train"

names=() files=() extra=()
for m in $MODELS; do names+=("$m"); files+=("core/models/$m.safetensors"); done
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; extra=("$@"); break ;;
    *=*) names+=("${1%%=*}"); files+=("${1#*=}") ;;
    *) echo "task_table.sh: expected NAME=WEIGHTS or -- OPTIONS, got '$1'" >&2; exit 2 ;;
  esac
  shift
done

mkdir -p "$OUT/fused"
inputs=(--input ir --input vis --input mean)
for i in "${!names[@]}"; do
  [ -f "${files[$i]}" ] || { echo "task_table.sh: ${files[$i]}: no such weight file" >&2; exit 1; }
  echo "task_table.sh: fusing msrs_seg with ${names[$i]} (${files[$i]})" >&2
  rm -rf "$OUT/fused/${names[$i]}"
  "$FUSE" --quiet --model "${files[$i]}" --ir "$SET/ir" --vis "$SET/vis" --output "$OUT/fused/${names[$i]}"
  inputs+=(--input "${names[$i]}=$OUT/fused/${names[$i]}")
done
if [ -d "$SET/fused" ]; then
  shopt -s nullglob
  for pub in "$SET/fused"/*/; do inputs+=(--input "$(basename "$pub")=${pub%/}"); done
fi

rm -rf "$OUT/downstream"
"$TRAIN" downstream "${inputs[@]}" --out "$OUT/downstream" ${extra[@]+"${extra[@]}"} > /dev/null
cat "$OUT/downstream/report.md"
