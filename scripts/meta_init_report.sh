#!/usr/bin/env bash
# Reproduces docs/meta-init-mri-pet.md: pretext meta-initialisation vs random
# init vs the IVIF model (and the joint-training ablation), adapted to the
# held-out MRI-PET task. Every run is `timfusion-train` with the options below.
#
#   scripts/meta_init_report.sh [OUT_DIR]     (default out/meta-init; JOBS=2 runs at once)
#
# About 2 h of CPU, one thread per run (75 min on 2 idle cores): 3 starts of
# 3,000 gradient steps (21-26 min each) and 32 adaptations of 300 steps (2 min
# each). Writes OUT_DIR/<run>/ (config.json, log.csv, eval.csv,
# model.safetensors), OUT_DIR/meta-init-mri-pet.png (all four starts),
# OUT_DIR/meta-init-mri-pet-pretrained.png (the three pretrained starts, close
# up) and OUT_DIR/table.md. Re-running skips the runs that have finished
# (their model.safetensors exists). EVAL="" evaluates with the running BN
# averages instead of precise BN.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DATA=${TIMFUSION_DATA_DIR:-$(cat "$BUILD_DIR/data_dir.txt")}  # as meson.build found it
OUT=${1:-out/meta-init}
JOBS=${JOBS:-2}
T="$BUILD_DIR/training/timfusion-train"
H="$DATA/harvard_medical"
mkdir -p "$OUT"

run() {  # NAME ARGS...: one timfusion-train run into $OUT/NAME, skipped when done
  local name=$1; shift
  [ -f "$OUT/$name/model.safetensors" ] && return 0
  "$T" "$@" --threads 1 --quiet --out "$OUT/$name" > "$OUT/$name.log" 2>&1 || { echo "failed: $name (see $OUT/$name.log)" >&2; return 1; }
  echo "done: $name"
}

# Runs are argument arrays started in the background, JOBS at once: no
# command strings, so folder names with spaces, quotes or $(...) stay data.
failed=0
spawn() {  # COMMAND ARGS...: run it in the background once fewer than JOBS run
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || failed=1; done
  "$@" &
}
wait_all() {  # waits for every run; exits 1 when one failed
  while [ -n "$(jobs -rp)" ]; do wait -n || failed=1; done
  [ "$failed" -eq 0 ] || { echo "meta_init_report: some runs failed" >&2; exit 1; }
}
json_str() {  # VALUE: a JSON string literal
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# Common to every start: ivif-light at 16 channels, batch 4 of 96 px crops.
NET=(--arch ivif-light --channels 16 --crop 96 --batch 4)
# The joint-training ablation sees the meta-training tasks' pairs as one dataset.
mkdir -p "$OUT/splits"
for t in mri_ct mri_spect; do awk '$2 != "train" {print $1}' "$H/$t/split.txt" > "$OUT/splits/$t-not-train.txt"; done
X=$(realpath "$OUT/splits")
JOINT='[{"dir":'$(json_str "$DATA/roadscene")',"exclude":'$(json_str "$DATA/roadscene/subsets/cddfuse_test50.txt")'},'\
$(json_str "$DATA/tno42")','\
'{"ir":'$(json_str "$H/mri_ct/mri")',"vis":'$(json_str "$H/mri_ct/ct")',"exclude":'$(json_str "$X/mri_ct-not-train.txt")'},'\
'{"ir":'$(json_str "$H/mri_spect/mri")',"vis":'$(json_str "$H/mri_spect/spect")',"exclude":'$(json_str "$X/mri_spect-not-train.txt")'}]'
# Held-out evaluation with precise BN: the BatchNorm statistics are re-estimated
# over 20 training batches before each evaluation, so that the curves show the
# weights, not the statistics of the last few crops (they made the loss jump by 0.2).
# EVAL holds options: split into words on purpose.
read -ra EVAL_ARGS <<< "${EVAL-"--bn-recalibrate 20"}"
TRAIN=(--steps 3000 --lr 1e-3 --set lr_schedule=constant --seed 1 --preview-every 0)

adapt() {  # START LR SEED: one adaptation to MRI-PET (train half; its 24 test pairs evaluated along the way)
  local init=(--init "$OUT/$1/model.safetensors")
  [ "$1" = random ] && init=(--arch ivif-light --channels 16)
  spawn run "adapt-$1-lr$2-s$3" adapt "${init[@]}" --split-dir "$H/mri_pet" --steps 300 --crop 96 --batch 4 \
    --lr "$2" --seed "$3" "${EVAL_ARGS[@]}"
}

# 1. The three starts, 3,000 gradient steps each; the random-init adaptations
#    need no start and fill the second core meanwhile.
# (a) Reptile: 120 outer steps x 25 inner Adam steps (lr 3e-4) over IVIF, MRI-CT, MRI-SPECT (meta's default tasks).
spawn run meta meta "${NET[@]}" --steps 120 --inner-steps 25 --lr 3e-4 --seed 1
# (c) the IVIF model: RoadScene (minus test50) + TNO.
spawn run ivif train "${NET[@]}" --data "$DATA/roadscene" --exclude subsets/cddfuse_test50.txt --data "$DATA/tno42" "${TRAIN[@]}"
# (d) ablation: plain training on the union of the meta-training tasks' pairs.
spawn run joint train "${NET[@]}" --set "data=$JOINT" "${TRAIN[@]}"
for lr in 3e-4 1e-3; do for s in 1 2 3 4; do adapt random $lr $s; done; done
wait_all

# 2. Adaptation of every start, 4 seeds, at lr 3e-4 and 1e-3.
for lr in 3e-4 1e-3; do for s in 1 2 3 4; do for start in meta ivif joint; do adapt $start $lr $s; done; done; done
wait_all

# 3. Figure and tables: every start at both learning rates.
args=()
for start in meta ivif joint random; do
  for lr in 3e-4 1e-3; do
    for s in 1 2 3 4; do args+=(--compare "$OUT/adapt-$start-lr$lr-s$s=$start@$lr#$s"); done
  done
done
"$T" adapt "${args[@]}" --table "$OUT/table.md" > /dev/null
args=(); pretrained=()  # each start at its better lr; pretrained: without random init
for g in meta@3e-4 ivif@1e-3 joint@1e-3 random@1e-3; do
  for s in 1 2 3 4; do
    args+=(--compare "$OUT/adapt-${g%@*}-lr${g#*@}-s$s=$g#$s")
    [ "${g%@*}" = random ] || pretrained+=("${args[@]: -2}")
  done
done
"$T" adapt "${args[@]}" --plot "$OUT/meta-init-mri-pet.png" > /dev/null
"$T" adapt "${pretrained[@]}" --plot "$OUT/meta-init-mri-pet-pretrained.png" > /dev/null
echo "wrote $OUT/table.md, $OUT/meta-init-mri-pet.png and $OUT/meta-init-mri-pet-pretrained.png"
