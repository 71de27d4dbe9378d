#!/usr/bin/env bash
# Runs one libFuzzer target for SECONDS over the seed corpus; exit 0 when it
# found nothing. New interesting inputs go to WORK_DIR (never the sources);
# a finding is written to WORK_DIR/crash-* (reproduce: TARGET FILE).
#
#   tests/fuzz/run_fuzzer.sh TARGET SECONDS SEED_DIR WORK_DIR [libFuzzer options]
#
# CI runs each target 30 s (meson test --suite fuzz). A longer run, e.g. an
# hour on every core:
#   tests/fuzz/run_fuzzer.sh build/tests/fuzz/fuzz-weight-file 3600 \
#     tests/fuzz/corpus/weights /tmp/fuzz-weights -fork=$(nproc)
set -euo pipefail
target=$(realpath "$1") seconds=$2 seeds=$(realpath "$3") work=$4
shift 4
mkdir -p "$work"
cd "$work"  # crash-*/leak-*/timeout-* files land here
exec "$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
  -print_final_stats=1 "$@" "$work" "$seeds"
