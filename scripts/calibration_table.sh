#!/usr/bin/env bash
# Accuracy of timfusion-calibrate on the shared data with known synthetic
# misalignments (build/core/timfusion-calibrate-bench): per data set, CASES
# registered pairs (spread over the set) get a random IR-to-visible homography
# (scale 0.5-2 relative to the resolution guess, centre shift up to 10 % of
# the frame, rotation up to 5 degrees, mild perspective) and an IR resolution
# of 0.5, 0.75 or 1 x the visible one; the estimate is compared with the truth
# (mean distance in visible pixels over a 5x5 lattice of the visible frame
# where the IR frame covers it), and against the truth corrected by the
# untouched pair's own structure optimum (how far the data set's registration
# is from what the structure says; "own"). Each case runs with K = 1 pair and
# with K pairs (PAIRS, default "1 3"): the same homography applied to the
# case's pair and the next K-1 in the sorted list, calibrated together as a
# rig's frames are; "own" is then the per-point median of the K pairs'
# corrected truths. Rows marked "re-registered" (K in REREG, default "3")
# first move each pair's IR onto its own structure optimum, so that the drawn
# homography is every frame's exact map (--reregister: a rig whose frames
# agree, as a real rig's do; error and own error then coincide). Prints a
# Markdown table; the per-case lines go to $LOG (default
# build/calibration_table.log).
#
#   scripts/calibration_table.sh [CASES]      (default 15; runs at nice 10)
#   PAIRS="1 3 5" REREG="" scripts/calibration_table.sh 9
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
CASES=${1:-15}
PAIRS=${PAIRS:-1 3}
REREG=${REREG-3}
BUILD_DIR=${BUILD_DIR:-build}
BENCH="$BUILD_DIR/core/timfusion-calibrate-bench"
[ -x "$BENCH" ] || { echo "calibration_table.sh: $BENCH not built (scripts/setup.sh --no-run)" >&2; exit 1; }
DATA=${TIMFUSION_DATA_DIR:-$(cat "$BUILD_DIR/data_dir.txt")}
LOG=${LOG:-$BUILD_DIR/calibration_table.log}
: > "$LOG"
echo "| data set | frames | pairs per case | cases | refused | wrong (> 10 px, accepted) | median error (px) | 90th pct. (px) | own: median (px) | own: 90th pct. (px) | refused: median error (px) | data set's own offset (median px) | s per case |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
sets=(roadscene tno42 msrs_sample llvip_sample)
# All runs go side by side (one process each, nice 10); the table keeps the
# order data set, then K.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for set in "${sets[@]}"; do
  for k in $PAIRS; do
    nice -n 10 "$BENCH" "$DATA/$set" --cases "$CASES" --pairs-per-case "$k" > "$tmp/$set.$k.out" 2>&1 &
  done
  for k in $REREG; do
    nice -n 10 "$BENCH" "$DATA/$set" --cases "$CASES" --pairs-per-case "$k" --reregister > "$tmp/$set.r$k.out" 2>&1 &
  done
done
wait
for set in "${sets[@]}"; do
  for run in $PAIRS $(for k in $REREG; do echo "r$k"; done); do
    cat "$tmp/$set.$run.out" >> "$LOG"
    awk -v frames="$([ "${run#r}" != "$run" ] && echo re-registered || echo "as in the data set")" '$1 == "SUMMARY" {
      printf "| %s | %s | %d | %d | %d (%.0f %%) | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f |\n", $2, frames, $13, $3, $4, 100 * $4 / $3, $5, $6, $7, $11, $12, $10, $9, $8 }' \
      "$tmp/$set.$run.out"
  done
done
