#!/usr/bin/env bash
# TIM's whole recipe for the shipped default model `ivif-rt`, as one command
# sequence: implicit architecture search with a latency budget (I) ->
# pretext meta-initialisation (M) -> training on IVIF data (T), plus the
# ablation runs the quality table compares (from scratch; + meta-init;
# + task guidance). TNO42 is a test set: no step here reads it.
#
#   scripts/make_default_model.sh [RUNS_DIR]      (default: runs/default-model)
#
# Each step is resumable: rerun the script after an interruption and finished
# steps are skipped, unfinished ones continue with --resume. The latency table
# of the search should be measured on an idle machine (it is cached in the
# search folder; STEPS below are the ones the shipped model was made with).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DATA=${TIMFUSION_DATA_DIR:-$(cat "$BUILD_DIR/data_dir.txt")}
T="$BUILD_DIR/training/timfusion-train"
RUNS=${1:-runs/default-model}
mkdir -p "$RUNS"

# The IVIF training data: RoadScene minus its common test split, MSRS (msrs_seg,
# disjoint from msrs_sample), LLVIP and M3FD samples.
IVIF=(--data "$DATA/roadscene" --exclude subsets/cddfuse_test50.txt --data "$DATA/msrs_seg"
      --data "$DATA/llvip_sample" --data "$DATA/m3fd_sample")
# The salient intensity target (each region follows the source that deviates more from its own
# image's mean), texture gain 1.6 (with coring 4 below: docs/quality.md, "Detail gain against
# coring"), sensor-noise augmentation; 256 px crops so that a crop holds enough of its scene;
# the contrast floor (loss.contrast 10: the fused crop's standard deviation may not fall below
# the intensity target's; without it the batch order alone moved TNO42's SD between 43 and 52,
# docs/quality.md, "Contrast floor").
TRAIN=(--steps 3000 --batch 2 --crop 256 --lr 2e-3 --set warmup=50 --threads 1
       --checkpoint-every 200 --preview-every 1000
       --set loss.intensity=8 --set loss.intensity_target=salient --set loss.gradient_gain=1.6 --set noise=4
       --set loss.contrast=10)

step() {  # name command...: run once, resume if interrupted
  local dir="$RUNS/$1"; shift
  if [ -f "$dir/model.safetensors" ] || [ -f "$dir/genotype.json" ]; then
    echo "make_default_model: $dir done"; return
  fi
  if [ -f "$dir/checkpoint.safetensors" ]; then
    "$T" "$1" --resume "$dir"
  else
    "$T" "$@" --out "$dir"
  fi
}

# I: search 16 channels on a 4x4 space-to-depth grid with the detail head; a
# latency budget of 25 ms per 640x480 frame on one thread (the latency table's
# E[latency], fixed part included); lambda 0.01 per ms over it.
step search search "${IVIF[@]}" --channels 16 --downscale 4 --head detail --crop 64 --batch 4 \
  --steps 800 --threads 1 --set search.alpha_start=100 --set search.alpha_lr=0.03 \
  --set search.latency_reps=20 --latency-weight 0.01 --latency-budget 25 --name ivif-rt
G="$RUNS/search/genotype.json"

# M: Reptile over the pretext tasks (IVIF as above, MRI-CT, MRI-SPECT train splits).
step meta meta --arch "$G" --channels 16 --threads 1

# The trained network: the searched genotype plus two fields the search does not choose
# (core/include/timfusion/arch.h): image_means (the stem also sees each input's whole-image mean,
# which the salient target depends on; the meta-initialised weights are widened with zeros for
# it) and detail_coring 4 (detail under 4 grey levels, mostly sensor noise, is not amplified:
# the default must not turn noise into flicker; with the texture gain 1.6, 3 was not enough).
A="$RUNS/ivif-rt.json"
[ -f "$A" ] || python3 -c 'import json, sys; g = json.load(open(sys.argv[1])); g.update(image_means=True, detail_coring=4); json.dump(g, open(sys.argv[2], "w"), indent=1)' "$G" "$A"

# T: train on IVIF from the meta-initialisation, seeds 1-3 (with --init the seed is the batch
# order), and the ablations (seed 1).
for seed in 1 2 3; do
  step "train-meta-s$seed" train --arch "$A" --init "$RUNS/meta/model.safetensors" "${IVIF[@]}" "${TRAIN[@]}" --seed "$seed"
done
step train-scratch train --arch "$A" "${IVIF[@]}" "${TRAIN[@]}" --seed 1
step train-meta-task train --arch "$A" --init "$RUNS/meta/model.safetensors" "${IVIF[@]}" "${TRAIN[@]}" --seed 1 --task

# The default: the seed that the validation subset of the training pool prefers (never a test set;
# rule in scripts/pick_by_validation.py).
python3 scripts/pick_by_validation.py --build "$BUILD_DIR" --data "$DATA" --out "$RUNS/pick" \
  $(for seed in 1 2 3; do echo "s$seed=$RUNS/train-meta-s$seed/model.safetensors"; done) | tee "$RUNS/pick.md"
best=$(tail -n 1 "$RUNS/pick.md")
cp "$RUNS/train-meta-$best/model.safetensors" "$RUNS/ivif-rt.safetensors"

echo "make_default_model: $RUNS/ivif-rt.safetensors (seed ${best#s}); score it and the ablations with"
echo "  scripts/quality_table.sh new=$RUNS/ivif-rt.safetensors scratch=$RUNS/train-scratch/model.safetensors meta+task=$RUNS/train-meta-task/model.safetensors"
