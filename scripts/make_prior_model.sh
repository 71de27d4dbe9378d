#!/usr/bin/env bash
# Fidelity with contrast, by a different head (issue 26, point 3; 2026-12-08):
# the detail head with the salient prior, max-abs detail selection and no
# residual (arch.h: salient_prior, detail_select, residual).
#
# Why: eight rounds of fine-tuning the shipped head (scripts/make_fidelity_model.sh)
# left Qabf at 0.41-0.43 on TNO42 whatever the loss. That head's residual r
# and its learned base weight draw gradients that neither input has (without r
# the shipped default's Qabf falls further, 0.37: the rest of the head leans on
# it), and it adds both inputs' details where both have texture (the sum has the
# orientation of neither). The new head's function space holds the classical
# fusion "salient base + the stronger detail at a gain" exactly, and the
# network learns corrections to it: each candidate starts from the shipped
# default's features with a zeroed last convolution (scripts/prior_init.py),
# i.e. from exactly that fusion, and is fine-tuned with the edge loss at its
# gain. noise_coring 1.5 instead of 3 (detail_coring 0): the prior's gain is
# at most what the edge loss asks, not 2, and 3 noise floors cored away the
# real fine texture of grainy frames; the noise table checks the camera's
# noise at sigma 6.
#
# Candidates: the two starting points themselves (no training; gains 1.2 and
# 1.4) and their fine-tunes (prior12, prior14). Round 2 starts from round 1's
# pick, prior12: prior12b trains it 1,500 more steps (its losses were still
# falling), prior12s8 does so with the prior's softness and the intensity
# target's at 8 grey levels instead of 4 (a softer switch between the
# sources: on the validation subset the prior alone then keeps more edge
# structure, Qabf, and less of a single source, MI). The validation subset of the
# training pool picks among them and the current default (rule fidelity, as
# make_fidelity_model.sh); no test set is read.
#
#   scripts/make_prior_model.sh [RUNS_DIR]      (default: runs/prior)
#
# Resumable: rerun after an interruption; finished runs are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DATA=${TIMFUSION_DATA_DIR:-$(cat "$BUILD_DIR/data_dir.txt")}
T="$BUILD_DIR/training/timfusion-train"
RUNS=${1:-runs/prior}
mkdir -p "$RUNS"

# The shipped default of d3ed233 (the noise-aware one, unchanged since).
SRC="$RUNS/ivif-rt-d3ed233.safetensors"
[ -f "$SRC" ] || git show d3ed233:core/models/ivif-rt.safetensors > "$SRC"
FIELDS=(salient_prior=4 detail_select=true residual=false detail_coring=0 noise_coring=1.5)
A="$RUNS/arch.json"
for g in 12 14; do
  [ -f "$RUNS/init$g.safetensors" ] ||
    scripts/prior_init.py "$SRC" "$RUNS/init$g.safetensors" --gain "${g:0:1}.${g:1}" --arch-out "$A" "${FIELDS[@]}"
done

IVIF=(--data "$DATA/roadscene" --exclude subsets/cddfuse_test50.txt --data "$DATA/msrs_seg"
      --data "$DATA/llvip_sample" --data "$DATA/m3fd_sample")
TRAIN=(--steps 1500 --batch 2 --crop 256 --lr 1e-3 --set warmup=50 --threads 1
       --checkpoint-every 100 --preview-every 1500
       --set loss.intensity=8 --set loss.intensity_target=salient --set loss.salient_softness=4
       --set loss.contrast=10 --set loss.gradient=0 --set loss.edge=10
       --set noise=6 --set noise_model=lowlight --set noise_ir=3 --seed 1)

run() {  # name gain init [arch [--set KEY=VALUE ...]]: run once, resume if interrupted
  local dir="$RUNS/$1" gain=$2 init=$3 arch=${4:-$A}
  shift $(($# < 4 ? $# : 4))
  if [ -f "$dir/model.safetensors" ]; then echo "make_prior_model: $dir done"; return; fi
  if [ -f "$dir/checkpoint.safetensors" ]; then "$T" train --resume "$dir"; return; fi
  "$T" train --arch "$arch" --init "$init" "${IVIF[@]}" "${TRAIN[@]}" --set loss.gradient_gain="$gain" "$@" --out "$dir"
}
A8="$RUNS/arch-s8.json"
sed 's/"salient_prior":4/"salient_prior":8/' "$A" > "$A8"
grep -q '"salient_prior":8' "$A8"

if [ "${PARALLEL:-0}" = 1 ]; then  # one core each
  run prior12 1.2 "$RUNS/init12.safetensors" & a=$!
  run prior14 1.4 "$RUNS/init14.safetensors" & b=$!
  wait $a && wait $b
  run prior12b 1.2 "$RUNS/prior12/model.safetensors" & a=$!
  run prior12s8 1.2 "$RUNS/prior12/model.safetensors" "$A8" --set loss.salient_softness=8 & b=$!
  wait $a && wait $b
else
  run prior12 1.2 "$RUNS/init12.safetensors"
  run prior14 1.4 "$RUNS/init14.safetensors"
  run prior12b 1.2 "$RUNS/prior12/model.safetensors"
  run prior12s8 1.2 "$RUNS/prior12/model.safetensors" "$A8" --set loss.salient_softness=8
fi

scripts/pick_by_validation.py --build "$BUILD_DIR" --data "$DATA" --out "$RUNS/pick" --rule fidelity \
  current="$SRC" init12="$RUNS/init12.safetensors" init14="$RUNS/init14.safetensors" \
  prior12="$RUNS/prior12/model.safetensors" prior14="$RUNS/prior14/model.safetensors" \
  prior12b="$RUNS/prior12b/model.safetensors" prior12s8="$RUNS/prior12s8/model.safetensors" | tee "$RUNS/pick.md"
best=$(tail -n 1 "$RUNS/pick.md")
if [ "$best" = current ]; then echo "make_prior_model: the current default stays"; exit 0; fi
src="$RUNS/$best/model.safetensors"
[ -f "$src" ] || src="$RUNS/$best.safetensors"
scripts/portable_provenance.py --data "$DATA" "$src" "$RUNS/ivif-rt.safetensors"
echo "make_prior_model: $RUNS/ivif-rt.safetensors ($best)"
