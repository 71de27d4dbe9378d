#!/usr/bin/env bash
# Quality table: the shipped models (ivif-light, ivif-rt) vs published methods'
# fused outputs in the shared data (tno42/fused/*, msrs_sample/fused/*), VIFB
# metric conventions.
#
#   scripts/quality_table.sh [MODEL [SECOND_MODEL]]   (default: ivif-light ivif-rt;
#                                                      SECOND_MODEL "" leaves it out)
# Writes out/quality/<set>/{<model>,*.md,*.png} and prints Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DATA=${TIMFUSION_DATA_DIR:-$(cat "$BUILD_DIR/data_dir.txt")}  # as meson.build found it
MODEL=${1:-ivif-light}
SECOND=${2-ivif-rt}
label() { basename "${1%.safetensors}"; }
OUT=out/quality
METRICS=en,sd,sf,ag,mi,scd,vif,qabf,nabf,ssim

table() {  # set ir vis published-dir
  local set=$1 ir=$2 vis=$3 pub=$4
  mkdir -p "$OUT/$set"
  local first="$OUT/$set/$(label "$MODEL")" compare=()
  "$BUILD_DIR/core/timfusion-fuse" --quiet --model "$MODEL" --ir "$ir" --vis "$vis" --output "$first"
  if [ -n "$SECOND" ]; then
    local second="$OUT/$set/$(label "$SECOND")"
    "$BUILD_DIR/core/timfusion-fuse" --quiet --model "$SECOND" --ir "$ir" --vis "$vis" --output "$second"
    compare+=(--compare "$(label "$SECOND")=$second")
  fi
  for d in "$pub"/*/; do compare+=(--compare "$(basename "$d")=$d"); done
  echo "### $set ($(ls "$ir" | wc -l) pairs; colour: luma)"
  echo
  "$BUILD_DIR/core/timfusion-eval" --no-progress --color luma --metrics "$METRICS" --format md \
    --ir "$ir" --vis "$vis" --fused "$first" "${compare[@]}" --plot "$OUT/$set/compare.png" \
    | tee "$OUT/$set/compare.md"
  echo
}

# The published msrs_sample outputs cover only some pairs (PIAFusion 5, SeAFusion 24):
# one table per method, over the pairs it covers (folders of links).
subset_table() {  # set ir vis method-dir
  local set=$1 ir=$2 vis=$3 pub=$4 name
  name=$(basename "$pub")
  local sub="$OUT/$set-$name"
  rm -rf "$sub"; mkdir -p "$sub/ir" "$sub/vis" "$sub/pub/$name"
  for f in "$pub"/*; do
    local b; b=$(basename "$f")
    ln -s "$(realpath "$ir/$b")" "$sub/ir/$b"; ln -s "$(realpath "$vis/$b")" "$sub/vis/$b"
    ln -s "$(realpath "$f")" "$sub/pub/$name/$b"
  done
  table "$set-$name" "$sub/ir" "$sub/vis" "$sub/pub"
}

table tno42 "$DATA/tno42/ir" "$DATA/tno42/vis" "$DATA/tno42/fused"
for d in "$DATA/msrs_sample/fused"/*/; do
  subset_table msrs_sample "$DATA/msrs_sample/ir" "$DATA/msrs_sample/vis" "${d%/}"
done
