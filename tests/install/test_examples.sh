#!/usr/bin/env bash
# The README's examples are the files in examples/ (verbatim), and the Python
# (PyGObject) one works: it fuses a shared pair with the uninstalled plugin and
# the default model, and reports the model it loaded.
# Usage: test_examples.sh SOURCE_ROOT PLUGIN_BUILD_DIR DATA_DIR
set -euo pipefail
src=$1 plugins=$2 data=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
py=/usr/bin/python3  # Debian's, with python3-gi (a pyenv python3 has no gi)

for f in examples/fuse_pair.cpp examples/fuse_pipeline.py; do
  "$py" - "$src/README.md" "$src/$f" <<'PY' || fail "README.md does not show $f verbatim"
import sys
readme, example = (open(p, encoding="utf-8").read() for p in sys.argv[1:3])
sys.exit(0 if example.strip() in readme else 1)
PY
done

tmp=$(mktemp -d /tmp/timfusion-examples.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset TIMFUSION_MODEL  # the element's default model, as a user gets it
GST_PLUGIN_PATH=$plugins GST_REGISTRY=$tmp/registry.bin \
  "$py" "$src/examples/fuse_pipeline.py" "$data/msrs_sample/ir/00032N.png" "$data/msrs_sample/vis/00032N.png" \
  "$tmp/fused.png" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; fail "examples/fuse_pipeline.py"; }
cat "$tmp/log"
grep -q "^model .*/ivif-rt.safetensors loaded on cpu" "$tmp/log" || fail "no timfusion-model-loaded message seen"
grep -q "^fused $tmp/fused.png with /.*/ivif-rt.safetensors" "$tmp/log" || fail "actual-model is not the file path"
"$py" -c "import cv2, sys; im = cv2.imread(sys.argv[1]); sys.exit(0 if im is not None and im.shape[:2] == (480, 640) else 1)" \
  "$tmp/fused.png" || fail "the fused image is not a 640x480 image"
echo "examples OK"
