#!/usr/bin/env bash
# The evaluation protocol: every shipped model (and any extra models given) vs
# the published methods' outputs in the shared data, on test sets that no
# shipped model is trained on, scored by timfusion-eval in VIFB's per-channel
# convention.
#
#   scripts/quality_table.sh [NAME=WEIGHTS.safetensors ...]
#
# Test sets: tno42 (DenseFuse, IFCNN, U2Fusion, PIAFusion, SeAFusion),
# msrs_sample (SeAFusion's 24 and PIAFusion's 5 published pairs, one table each,
# over the pairs each covers), roadscene test50 (subsets/cddfuse_test50.txt; no
# published outputs for those pairs). Metrics: EN SD SF AG MI Qabf SSIM EI (the
# 8 counted) plus VIF and Nabf. For each of our models and each published method
# it prints how many of the 8 metrics our model wins (higher is better for all 8).
# Extra NAME=FILE models become extra rows (ablations, candidates).
# Writes out/quality/<set>/{<model>/,scores.csv,table.md} and prints Markdown.
# SETS="tno42 msrs_sample roadscene-test50" (the default) limits the test sets.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DATA=${TIMFUSION_DATA_DIR:-$(cat "$BUILD_DIR/data_dir.txt")}  # as meson.build found it
OUT=${OUT:-out/quality}
METRICS=en,sd,sf,ag,mi,qabf,ssim,ei,vif,nabf
FUSE="$BUILD_DIR/core/timfusion-fuse"
EVAL="$BUILD_DIR/core/timfusion-eval"
SETS=${SETS:-tno42 msrs_sample roadscene-test50}
mkdir -p "$OUT"
wanted() { [[ " $SETS " == *" $1 "* ]]; }

# Our models: NAME -> weight file. Shipped ones first, then the arguments.
names=() files=()
for f in core/models/*.safetensors; do names+=("$(basename "${f%.safetensors}")"); files+=("$f"); done
for arg in "$@"; do
  [[ "$arg" == *=* ]] || { echo "quality_table.sh: expected NAME=WEIGHTS, got '$arg'" >&2; exit 2; }
  names+=("${arg%%=*}"); files+=("${arg#*=}")
done

links() {  # src-set-dir list-of-names dest: folders of symlinks for a subset
  local src=$1 list=$2 dest=$3 n
  rm -rf "$dest"; mkdir -p "$dest/ir" "$dest/vis"
  while read -r n; do
    [ -n "$n" ] || continue
    ln -s "$(realpath "$src/ir/$n.png")" "$dest/ir/$n.png"
    ln -s "$(realpath "$src/vis/$n.png")" "$dest/vis/$n.png"
  done < "$list"
}

score() {  # set ir vis [published-dir...]
  local set=$1 ir=$2 vis=$3; shift 3
  local dir="$OUT/$set" compare=() i
  mkdir -p "$dir"
  for i in "${!names[@]}"; do
    "$FUSE" --quiet --model "${files[$i]}" --ir "$ir" --vis "$vis" --output "$dir/${names[$i]}"
    [ "$i" -eq 0 ] || compare+=(--compare "${names[$i]}=$dir/${names[$i]}")
  done
  local pub
  for pub in "$@"; do compare+=(--compare "$(basename "$pub")=$pub"); done
  "$EVAL" --no-progress --metrics "$METRICS" --format csv --ir "$ir" --vis "$vis" \
    --fused "$dir/${names[0]}" "${compare[@]}" > "$dir/scores.csv" 2>/dev/null
  python3 scripts/quality_summary.py --set "$set" --pairs "$(ls "$ir" | wc -l)" \
    --ours "$(IFS=,; echo "${names[*]}")" "$dir/scores.csv" | tee "$dir/table.md"
  echo
}

# tno42: all 42 pairs, five published methods.
wanted tno42 && score tno42 "$DATA/tno42/ir" "$DATA/tno42/vis" "$DATA/tno42/fused"/*/

# msrs_sample: each published method covers some pairs; score over those.
wanted msrs_sample && for pub in "$DATA/msrs_sample/fused"/*/; do
  pub=${pub%/}; m=$(basename "$pub")
  ls "$pub" | sed 's/\.png$//' > "$OUT/.list-$m"
  links "$DATA/msrs_sample" "$OUT/.list-$m" "$OUT/.pairs-msrs-$m"
  score "msrs_sample-$m" "$OUT/.pairs-msrs-$m/ir" "$OUT/.pairs-msrs-$m/vis" "$pub"
done

# roadscene test50: the common test split (no published outputs for it here).
wanted roadscene-test50 || exit 0
links "$DATA/roadscene" "$DATA/roadscene/subsets/cddfuse_test50.txt" "$OUT/.pairs-test50"
score roadscene-test50 "$OUT/.pairs-test50/ir" "$OUT/.pairs-test50/vis"
