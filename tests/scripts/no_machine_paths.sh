#!/usr/bin/env bash
# No tracked file (text or binary, e.g. a weight file's provenance) names a
# folder of a developer's machine: readers and users cannot have it. Paths
# relative to the repository (../shared/data, runs/, build/) or placeholders
# instead. /tmp/... in examples is a scratch folder every machine has.
# Usage: no_machine_paths.sh SOURCE_ROOT
set -euo pipefail
cd "$1"
# The patterns are split so that this file does not match itself.
w=work h=home r=root
if git grep -n -a -I -E "/($w|$h|$r)/[A-Za-z0-9_.-]" -- . ':!tests/scripts/no_machine_paths.sh' >&2 ||
   git grep -l -a -E "/($w|$h|$r)/[A-Za-z0-9_.-]" -- . ':!tests/scripts/no_machine_paths.sh' >&2; then
  echo "FAIL: tracked files name absolute folders of a machine (above)" >&2
  exit 1
fi
echo "no machine paths in $(git ls-files | wc -l) tracked files"
