#!/usr/bin/env bash
# GPU check: builds core, the GStreamer element and timfusion-train against the
# CUDA LibTorch inside a PyTorch install, runs the test suite with the GPU
# visible, and prints one Markdown table of GPU measurements:
#   - element fps (a real pipeline: 2x videotestsrc ! timfusion ! fakesink) at
#     640x480 and 1920x1080, each shipped model, precision fp32/fp16/bf16, on CUDA
#     (and fp32 on the CPU for comparison);
#   - CPU vs GPU output difference (timfusion-fuse, same pairs, max/mean |diff|);
#   - timfusion-train steps/s on the CPU vs the GPU (fp32 and bf16 autocast).
# Meant for a lent GPU machine, under 10 minutes (16 cores, one GPU).
#
#   scripts/gpu_check.sh                 build + tests + table
#   scripts/gpu_check.sh --no-tests      build + table
#   scripts/gpu_check.sh --fetch-debs D  (on a networked Debian 12 machine) download the
#                                        .debs this script needs into D, to carry along
#
# Environment: PYTHON (python3), BUILD_DIR (build-gpu), DEBS_DIR (.gpu-debs: .debs to
# unpack when the GStreamer/OpenCV/Gloo dev files are missing and apt cannot install
# them), TIMFUSION_DATA_DIR (the shared data; synthetic pairs are made when missing),
# FRAMES (200), OUT_DIR (gpu-check-out).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$(date +%s)
PY=${PYTHON:-python3}
BUILD_DIR=${BUILD_DIR:-build-gpu}
DEBS_DIR=${DEBS_DIR:-.gpu-debs}
FRAMES=${FRAMES:-200}
OUT_DIR=${OUT_DIR:-gpu-check-out}
RUN_TESTS=1

# Debian 12 packages with the dev files the build needs besides LibTorch (scripts/setup.sh's list).
DEB_PACKAGES=(
  libopencv-dev nlohmann-json3-dev libgtest-dev libgloo-dev libcli11-dev
  libglib2.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  meson ninja-build pkg-config
)

say() { printf '[gpu_check %4ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { say "error: $*"; exit 1; }

case "${1:-}" in
  --no-tests) RUN_TESTS=0 ;;
  --fetch-debs)
    dest=${2:?--fetch-debs needs a folder}
    mkdir -p "$dest"
    # The packages and every dependency not already part of a minimal system.
    mapfile -t deps < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances "${DEB_PACKAGES[@]}" | grep '^[a-z0-9]' | sort -u)
    (cd "$dest" && apt-get download "${deps[@]}")
    say "$(find "$dest" -name '*.deb' | wc -l) packages in $dest ($(du -sh "$dest" | cut -f1))"
    exit 0 ;;
  "") ;;
  *) die "unknown option $1 (see the header of $0)" ;;
esac

# --- LibTorch from the PyTorch install -------------------------------------
TORCH_DIR=$("$PY" -c 'import torch,os;print(os.path.dirname(torch.__file__))') ||
  die "$PY cannot import torch: install a CUDA build of PyTorch (or set PYTHON)"
read -r TORCH_VERSION CUDA_VERSION GPU_OK CXX11_ABI < <("$PY" -c '
import torch
print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), torch._C._GLIBCXX_USE_CXX11_ABI)')
[ "$CUDA_VERSION" != None ] || die "PyTorch $TORCH_VERSION at $TORCH_DIR is a CPU build"
[ "$GPU_OK" = True ] || die "PyTorch $TORCH_VERSION sees no usable GPU (driver? CUDA_VISIBLE_DEVICES?)"
# Debian's OpenCV, GStreamer and gtest use the C++11 string ABI; LibTorch must too.
[ "$CXX11_ABI" = True ] ||
  die "PyTorch $TORCH_VERSION was built with the pre-C++11 ABI (_GLIBCXX_USE_CXX11_ABI=0): it cannot link with Debian's C++ libraries; use a cxx11-ABI LibTorch"
# pip's CUDA PyTorch keeps the CUDA headers (cuda_runtime_api.h, ...) in the nvidia-* wheels:
# LibTorch's CUDA headers include them.
NV_INCLUDES=$("$PY" -c '
import glob, os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
print(":".join(sorted(glob.glob(os.path.join(site, "nvidia", "*", "include")))))')
[ -z "$NV_INCLUDES" ] || export CPATH=$NV_INCLUDES${CPATH:+:$CPATH}
[ ! -d /usr/local/cuda/include ] || export CPATH=/usr/local/cuda/include${CPATH:+:$CPATH}
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo unknown)
say "PyTorch $TORCH_VERSION, CUDA $CUDA_VERSION, GPU: $GPU_NAME; LibTorch at $TORCH_DIR"

# --- Debian dev files: installed, installable, or unpacked from .debs -------
have_dev_files() { pkg-config --exists opencv4 gstreamer-1.0 gstreamer-video-1.0 gstreamer-app-1.0 nlohmann_json gtest CLI11 2>/dev/null; }
if ! have_dev_files; then
  if [ "$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       "${DEB_PACKAGES[@]}" >/dev/null 2>&1; then
    say "installed ${DEB_PACKAGES[*]}"
  elif compgen -G "$DEBS_DIR/*.deb" >/dev/null; then
    PREFIX=$ROOT/$BUILD_DIR-sysroot
    mkdir -p "$PREFIX"
    for deb in "$DEBS_DIR"/*.deb; do dpkg-deb -x "$deb" "$PREFIX"; done
    # .pc files name prefix=/usr: point them into the unpacked tree.
    export PKG_CONFIG_SYSROOT_DIR=$PREFIX
    export PKG_CONFIG_PATH=$PREFIX/usr/lib/x86_64-linux-gnu/pkgconfig:$PREFIX/usr/share/pkgconfig
    export CPATH=$PREFIX/usr/include:$PREFIX/usr/include/opencv4${CPATH:+:$CPATH}
    export LIBRARY_PATH=$PREFIX/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}
    export LD_LIBRARY_PATH=$PREFIX/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export GST_PLUGIN_SYSTEM_PATH=$PREFIX/usr/lib/x86_64-linux-gnu/gstreamer-1.0
    export PATH=$PREFIX/usr/bin:$PATH
    export PYTHONPATH=$PREFIX/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}
    say "unpacked $(find "$DEBS_DIR" -name '*.deb' | wc -l) .debs from $DEBS_DIR into $PREFIX"
  else
    die "GStreamer/OpenCV dev files missing, apt cannot install them and $DEBS_DIR has no .debs: run '$0 --fetch-debs $DEBS_DIR' on a networked Debian 12 machine and bring the folder"
  fi
  have_dev_files || die "the dev files are still not found by pkg-config"
fi

# --- Build ------------------------------------------------------------------
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" --buildtype=release -Dlibtorch_dir="$TORCH_DIR" -Dcuda=enabled \
    ${TIMFUSION_DATA_DIR:+-Ddata_dir="$TIMFUSION_DATA_DIR"} >"$BUILD_DIR.setup.log" 2>&1 ||
    { tail -30 "$BUILD_DIR.setup.log"; die "meson setup failed (log: $BUILD_DIR.setup.log)"; }
fi
ninja -C "$BUILD_DIR" -j"$(nproc)" >"$BUILD_DIR.build.log" 2>&1 ||
  { grep -m20 -B2 -A8 'error' "$BUILD_DIR.build.log"; die "build failed (log: $BUILD_DIR.build.log)"; }
say "built in $BUILD_DIR"
export GST_PLUGIN_PATH=$ROOT/$BUILD_DIR/gst-plugin
TRAIN=$BUILD_DIR/training/timfusion-train
FUSE=$BUILD_DIR/core/timfusion-fuse

# --- Tests (the GPU visible: device auto means CUDA) --------------------------
TESTS_LINE="not run (--no-tests)"
if [ $RUN_TESTS -eq 1 ]; then
  if timeout 420 meson test -C "$BUILD_DIR" --num-processes "$(nproc)" --print-errorlogs >"$BUILD_DIR.test.log" 2>&1; then :; fi
  TESTS_LINE=$("$PY" scripts/test_summary.py "$BUILD_DIR/meson-logs" 2>/dev/null | tail -1 || echo "no summary (see $BUILD_DIR.test.log)")
  say "tests: $TESTS_LINE"
fi

# --- Data: the shared data, or synthetic pairs from videotestsrc --------------
mkdir -p "$OUT_DIR"
DATA=${TIMFUSION_DATA_DIR:-$(cat "$BUILD_DIR/data_dir.txt")}
PAIRS=$DATA/msrs_sample
if [ ! -d "$PAIRS/ir" ]; then
  PAIRS=$OUT_DIR/synthetic
  mkdir -p "$PAIRS/ir" "$PAIRS/vis"
  for i in 1 2 3 4; do
    gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=$((i + 10)) ! video/x-raw,format=GRAY8,width=640,height=480 \
      ! pngenc ! filesink location="$PAIRS/ir/p$i.png"
    gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=$((i + 2)) ! video/x-raw,format=RGB,width=640,height=480 \
      ! videoconvert ! pngenc ! filesink location="$PAIRS/vis/p$i.png"
  done
  say "no shared data at $DATA: synthetic pairs in $PAIRS"
fi

# --- Element fps: frames/s between the 20th and the FRAMES-th output ---------
pipeline_seconds() {  # model device precision width height frames
  local start end
  start=$(date +%s.%N)
  gst-launch-1.0 -q \
    videotestsrc num-buffers="$6" pattern=ball ! "video/x-raw,format=RGB,width=$4,height=$5,framerate=1000/1" ! f.vis \
    videotestsrc num-buffers="$6" pattern=snow ! "video/x-raw,format=GRAY8,width=$4,height=$5,framerate=1000/1" ! f.ir \
    timfusion name=f model="$1" device="$2" precision="$3" ! fakesink sync=false >/dev/null 2>&1 || return 1
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
}
element_fps() {  # model device precision width height -> fps, or "failed"
  local short long
  if ! short=$(pipeline_seconds "$@" 20) || ! long=$(pipeline_seconds "$@" "$FRAMES"); then
    echo failed
    return
  fi
  awk -v n="$FRAMES" -v s="$short" -v l="$long" 'BEGIN { printf "%.1f", (n - 20) / (l - s) }'
}

MODELS=()
for m in core/models/*.safetensors; do MODELS+=("$(basename "$m" .safetensors)"); done
{
  echo "## GPU check: $GPU_NAME, PyTorch $TORCH_VERSION (CUDA $CUDA_VERSION), $(nproc) CPU cores"
  echo
  echo "Tests (meson test, GPU visible): $TESTS_LINE"
  echo
  echo "| model | device | precision | 640x480 fps | 1920x1080 fps |"
  echo "|---|---|---|---|---|"
  for m in "${MODELS[@]}"; do
    echo "| $m | cpu | fp32 | $(element_fps "$m" cpu fp32 640 480) | $(FRAMES=40 element_fps "$m" cpu fp32 1920 1080) |"
    for p in fp32 fp16 bf16; do
      echo "| $m | cuda | $p | $(element_fps "$m" cuda "$p" 640 480) | $(element_fps "$m" cuda "$p" 1920 1080) |"
    done
  done
  echo
  echo "Element fps: gst-launch-1.0 videotestsrc (RGB + GRAY8) ! timfusion ! fakesink sync=false; frames/s between"
  echo "the 20th and the ${FRAMES}th output (start-up and warm-up cancel out); CPU 1920x1080 over 40 frames."
} >"$OUT_DIR/table.md"
say "element fps done"

# --- CPU vs GPU output difference (timfusion-fuse, PGM/PPM outputs) ----------
diff_stats() {  # dir_a dir_b -> "max mean" over all pixels of same-named files
  "$PY" - "$1" "$2" <<'EOF'
import os, sys
def read(path):  # binary PGM/PPM (P5/P6, maxval 255)
    data = open(path, 'rb').read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace(): pos += 1
        if data[pos:pos + 1] == b'#':
            pos = data.index(b'\n', pos)
            continue
        end = pos
        while not data[end:end + 1].isspace(): end += 1
        fields.append(data[pos:end]); pos = end
    return data[pos + 1:]
worst, total, n = 0, 0, 0
for name in sorted(os.listdir(sys.argv[1])):
    a, b = read(os.path.join(sys.argv[1], name)), read(os.path.join(sys.argv[2], name))
    d = [abs(x - y) for x, y in zip(a, b)]
    worst, total, n = max(worst, max(d)), total + sum(d), n + len(d)
print(worst, '%.4f' % (total / max(n, 1)))
EOF
}
mapfile -t DIFF_PAIRS < <(find "$PAIRS/ir" -name '*.png' | sort | head -3)
fuse_all() {  # model device precision dir: the first pairs, one timfusion-fuse per pair (PPM: easy to read)
  mkdir -p "$4"
  local ir
  for ir in "${DIFF_PAIRS[@]}"; do
    "$FUSE" --model "$1" --device "$2" --precision "$3" --ir "$ir" --vis "$PAIRS/vis/$(basename "$ir")" \
      --output "$4/$(basename "$ir" .png).ppm" --quiet >/dev/null 2>&1 || return 1
  done
}
{
  echo
  echo "| model | GPU precision | max abs diff vs CPU fp32 (0-255) | mean abs diff |"
  echo "|---|---|---|---|"
  for m in "${MODELS[@]}"; do
    fuse_all "$m" cpu fp32 "$OUT_DIR/fuse-$m-cpu" || { echo "| $m | (CPU run failed) | | |"; continue; }
    for p in fp32 fp16 bf16; do
      if fuse_all "$m" cuda "$p" "$OUT_DIR/fuse-$m-$p"; then
        read -r mx mean < <(diff_stats "$OUT_DIR/fuse-$m-cpu" "$OUT_DIR/fuse-$m-$p")
        echo "| $m | $p | $mx | $mean |"
      else
        echo "| $m | $p | failed | failed |"
      fi
    done
  done
  echo
  echo "Output difference: timfusion-fuse on ${#DIFF_PAIRS[@]} pairs of $PAIRS (PPM output), CUDA vs CPU fp32."
} >>"$OUT_DIR/table.md"
say "output differences done"

# --- Training steps/s: CPU vs GPU ---------------------------------------------
train_rate() {  # device precision -> steps/s over steps 6..STEPS (log.csv seconds)
  local run=$OUT_DIR/train-$1-$2 steps=40
  [ "$1" = cpu ] && steps=12
  rm -rf "$run"
  "$TRAIN" train --data "$PAIRS" --steps "$steps" --crop 128 --batch 8 --preview-every 0 --checkpoint-every 1000 \
    --device "$1" --precision "$2" --quiet --out "$run" >"$run.log" 2>&1 || { echo failed; return; }
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") c = i }
           NR == 6 { t0 = $c; s0 = $1 } END { printf "%.2f", ($1 - s0) / ($c - t0) }' "$run/log.csv"
}
{
  echo
  echo "| training (ivif-light, batch 8, 128 px crops) | steps/s |"
  echo "|---|---|"
  echo "| cpu, fp32, $(nproc) threads | $(train_rate cpu fp32) |"
  echo "| cuda, fp32 | $(train_rate cuda fp32) |"
  echo "| cuda, bf16 autocast | $(train_rate cuda bf16) |"
  echo
  echo "Training: timfusion-train train --steps 40 (CPU 12) on $PAIRS; steps/s after the 5th step (log.csv seconds)."
  echo "Total time of this check: $(($(date +%s) - T0)) s."
} >>"$OUT_DIR/table.md"
cat "$OUT_DIR/table.md"
