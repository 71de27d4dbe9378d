#!/usr/bin/env bash
# Runs every timfusion test (GoogleTest unit tests, GstHarness element tests,
# pipeline tests) and ends with a plain "N passed, M failed" line.
# Installs/builds first when needed (scripts/setup.sh --no-run).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

scripts/setup.sh --no-run || { echo "0 passed, 1 failed"; exit 1; }
rm -f "$BUILD_DIR/meson-logs/testlog.junit.xml" "$BUILD_DIR/meson-logs/testlog.json"
meson test -C "$BUILD_DIR" --print-errorlogs --num-processes "${TEST_JOBS:-1}" "$@"
status=$?
python3 scripts/test_summary.py "$BUILD_DIR/meson-logs" || status=1
exit $status
