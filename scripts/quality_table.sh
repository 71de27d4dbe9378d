#!/usr/bin/env bash
# Quality table: the default model vs published methods' fused outputs in the
# shared data (tno42/fused/*, msrs_sample/fused/*), VIFB metric conventions.
#
#   scripts/quality_table.sh [MODEL]     (default: the shipped ivif-light)
# Writes out/quality/<set>/{timfusion,*.md,*.png} and prints Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DATA=${TIMFUSION_DATA_DIR:-../shared/data}
MODEL=${1:-ivif-light}
OUT=out/quality
METRICS=en,sd,sf,ag,mi,scd,vif,qabf,nabf,ssim

table() {  # set ir vis published-dir
  local set=$1 ir=$2 vis=$3 pub=$4
  mkdir -p "$OUT/$set"
  "$BUILD_DIR/core/timfusion-fuse" --quiet --model "$MODEL" --ir "$ir" --vis "$vis" --output "$OUT/$set/timfusion"
  local compare=()
  for d in "$pub"/*/; do compare+=(--compare "$(basename "$d")=$d"); done
  echo "### $set ($(ls "$ir" | wc -l) pairs; colour: luma)"
  echo
  "$BUILD_DIR/core/timfusion-eval" --no-progress --color luma --metrics "$METRICS" --format md \
    --ir "$ir" --vis "$vis" --fused "$OUT/$set/timfusion" "${compare[@]}" --plot "$OUT/$set/compare.png" \
    | tee "$OUT/$set/compare.md"
  echo
}

table tno42 "$DATA/tno42/ir" "$DATA/tno42/vis" "$DATA/tno42/fused"
table msrs_sample "$DATA/msrs_sample/ir" "$DATA/msrs_sample/vis" "$DATA/msrs_sample/fused"
