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
# is from what the structure says; "own"). Prints a Markdown table; the
# per-case lines go to $LOG (default build/calibration_table.log).
#
#   scripts/calibration_table.sh [CASES]      (default 15; runs at nice 10)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
CASES=${1:-15}
BUILD_DIR=${BUILD_DIR:-build}
BENCH="$BUILD_DIR/core/timfusion-calibrate-bench"
[ -x "$BENCH" ] || { echo "calibration_table.sh: $BENCH not built (scripts/setup.sh --no-run)" >&2; exit 1; }
DATA=${TIMFUSION_DATA_DIR:-$(cat "$BUILD_DIR/data_dir.txt")}
LOG=${LOG:-$BUILD_DIR/calibration_table.log}
: > "$LOG"
echo "| data set | cases | refused | wrong (> 10 px, accepted) | median error (px) | 90th pct. (px) | own: median (px) | own: 90th pct. (px) | refused: median error (px) | data set's own offset (median px) | s per case |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
sets=(roadscene tno42 msrs_sample llvip_sample)
# The data sets run side by side (one process each, nice 10); the table keeps their order.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for set in "${sets[@]}"; do
  nice -n 10 "$BENCH" "$DATA/$set" --cases "$CASES" > "$tmp/$set.out" 2>&1 &
done
wait
for set in "${sets[@]}"; do
  cat "$tmp/$set.out" >> "$LOG"
  awk '$1 == "SUMMARY" {
    printf "| %s | %d | %d (%.0f %%) | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f |\n", $2, $3, $4, 100 * $4 / $3, $5, $6, $7, $11, $12, $10, $9, $8 }' \
    "$tmp/$set.out"
done
