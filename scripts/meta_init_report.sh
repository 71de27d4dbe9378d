#!/usr/bin/env bash
# Reproduces docs/meta-init-mri-pet.md: pretext meta-initialisation vs random
# init vs the IVIF model (and the joint-training ablation), adapted to the
# held-out MRI-PET task. Every run is `timfusion-train` with the options below.
#
#   scripts/meta_init_report.sh [OUT_DIR]     (default out/meta-init; JOBS=2 runs at once)
#
# About 2.5 h of CPU on one thread per run: 3 starts of 3,000 gradient steps
# (17-25 min each) and 48 adaptations of 300 steps (2 min each).
# Writes OUT_DIR/<run>/ (config.json, log.csv, eval.csv, model.safetensors),
# OUT_DIR/meta-init-mri-pet.png and OUT_DIR/table.md. Re-running skips the
# runs that have finished (their model.safetensors exists).
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
export -f run
export T OUT

parallel() { xargs -d '\n' -P "$JOBS" -I{} bash -c '{}'; }  # one command per input line

# Common to every start: ivif-light at 16 channels, batch 4 of 96 px crops.
NET="--arch ivif-light --channels 16 --crop 96 --batch 4"
# The joint-training ablation sees the meta-training tasks' pairs as one dataset.
mkdir -p "$OUT/splits"
for t in mri_ct mri_spect; do awk '$2 != "train" {print $1}' "$H/$t/split.txt" > "$OUT/splits/$t-not-train.txt"; done
X=$(realpath "$OUT/splits")
JOINT='[{"dir":"'$DATA'/roadscene","exclude":"'$DATA'/roadscene/subsets/cddfuse_test50.txt"},"'$DATA'/tno42",'\
'{"ir":"'$H'/mri_ct/mri","vis":"'$H'/mri_ct/ct","exclude":"'$X'/mri_ct-not-train.txt"},'\
'{"ir":"'$H'/mri_spect/mri","vis":"'$H'/mri_spect/spect","exclude":"'$X'/mri_spect-not-train.txt"}]'
TRAIN="--steps 3000 --lr 1e-3 --set lr_schedule=constant --seed 1 --preview-every 0"

# 1. The three starts, 3,000 gradient steps each.
{
  # (a) Reptile: 120 outer steps x 25 inner Adam steps (lr 3e-4) over IVIF, MRI-CT, MRI-SPECT (meta's default tasks).
  echo "run meta meta $NET --steps 120 --inner-steps 25 --lr 3e-4 --seed 1"
  # (c) the IVIF model: RoadScene (minus test50) + TNO.
  echo "run ivif train $NET --data $DATA/roadscene --exclude subsets/cddfuse_test50.txt --data $DATA/tno42 $TRAIN"
  # (d) ablation: plain training on the union of the meta-training tasks' pairs.
  echo "run joint train $NET --set 'data=$JOINT' $TRAIN"
} | parallel

# 2. Adaptation to MRI-PET (train half; 24 held-out test pairs evaluated along
#    the way), 4 seeds, at lr 3e-4 and 1e-3 for every start.
{
  for lr in 3e-4 1e-3; do
    for s in 1 2 3 4; do
      for start in meta ivif joint; do
        echo run "adapt-$start-lr$lr-s$s" adapt --init "$OUT/$start/model.safetensors" --split-dir "$H/mri_pet" \
          --steps 300 --crop 96 --batch 4 --lr $lr --seed $s
      done
      echo run "adapt-random-lr$lr-s$s" adapt --arch ivif-light --channels 16 --split-dir "$H/mri_pet" \
        --steps 300 --crop 96 --batch 4 --lr $lr --seed $s
    done
  done
} | parallel

# 3. Figure and tables: every start at both learning rates.
args=()
for start in meta ivif joint random; do
  for lr in 3e-4 1e-3; do
    for s in 1 2 3 4; do args+=(--compare "$OUT/adapt-$start-lr$lr-s$s=$start@$lr#$s"); done
  done
done
"$T" adapt "${args[@]}" --table "$OUT/table.md" > /dev/null
args=()
for g in meta@3e-4 ivif@1e-3 joint@1e-3 random@1e-3; do
  for s in 1 2 3 4; do args+=(--compare "$OUT/adapt-${g%@*}-lr${g#*@}-s$s=$g#$s"); done
done
"$T" adapt "${args[@]}" --plot "$OUT/meta-init-mri-pet.png" > /dev/null
echo "wrote $OUT/table.md and $OUT/meta-init-mri-pet.png"
