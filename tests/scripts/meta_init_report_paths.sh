#!/usr/bin/env bash
# scripts/meta_init_report.sh with hostile folder names (issue 13): it ran
# command strings through `xargs bash -c`, so a $(...) in the data or output
# folder was executed and spaces split paths. The real timfusion-train runs
# here, on a data folder without images: every run fails at once, which is
# enough to see what the script passed it.
#   meta_init_report_paths.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

hostile="$tmp/dir with spaces \$(touch $tmp/PLANTED) \`touch $tmp/PLANTED2\` 'q\""
data="$hostile/data"
out="$hostile/out"
for t in mri_ct mri_spect; do
  mkdir -p "$data/harvard_medical/$t"
  printf 'a train\nb test\n' > "$data/harvard_medical/$t/split.txt"
done

rc=0
(cd "$tmp" && BUILD_DIR="$build" TIMFUSION_DATA_DIR="$data" JOBS=2 \
  timeout 300 bash "$src/scripts/meta_init_report.sh" "$out") > "$tmp/log" 2>&1 || rc=$?
cat "$tmp/log"
[ $rc -eq 1 ] || fail "expected exit 1 (every run fails on a data folder without images), got $rc"
[ ! -e "$tmp/PLANTED" ] && [ ! -e "$tmp/PLANTED2" ] || fail "a \$(...) or \`...\` in a folder name was executed"
grep -q "some runs failed" "$tmp/log" || fail "no summary of the failed runs"
# Each run got the output folder as one argument: its log lies in it.
[ -f "$out/meta.log" ] || fail "no $out/meta.log: the output path was split"
[ -f "$out/adapt-random-lr1e-3-s4.log" ] || fail "the random-init adaptations did not run"
# The data path reached timfusion-train whole (it names it in its error).
grep -qF "$data" "$out/ivif.log" || { cat "$out/ivif.log"; fail "the data path was not passed whole"; }
echo "ok"
