#!/usr/bin/env bash
# timfusion setup: install what is missing (Debian 12, apt), build, and run
# the main job: the timfusion GStreamer element fuses the real IR + visible
# streams of ../shared/data/msrs_sample with the default model.
#
#   scripts/setup.sh            install + build + gst-launch fusion of msrs_sample -> out/fused
#   scripts/setup.sh --no-run   install + build only
#
# Idempotent and quiet when everything is already there; works as root or
# through sudo. BUILD_DIR (default: build), MESON_ARGS and TIMFUSION_DATA_DIR
# (the shared data; default ../shared/data, see meson.build) are honoured.
set -euo pipefail
cd "$(dirname "$0")/.."

run_main=1
[ "${1:-}" = "--no-run" ] && run_main=0

PACKAGES=(
  meson ninja-build pkg-config g++ ccache git
  libtorch-dev libopencv-dev nlohmann-json3-dev libgtest-dev
  libcli11-dev   # every tool's command line (header-only)
  libglib2.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  gstreamer1.0-plugins-bad   # h264parse, fpsdisplaysink: the camera and demo pipelines
  python3 python3-torch python3-numpy python3-opencv
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD_DIR=${BUILD_DIR:-build}
# Two cores and ~1 GB per LibTorch translation unit: -j2 is the sweet spot.
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$JOBS" -gt 2 ] || JOBS=2
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" --buildtype=release ${TIMFUSION_DATA_DIR:+-Ddata_dir="$TIMFUSION_DATA_DIR"} \
    ${MESON_ARGS:-} >/dev/null
fi
ninja -C "$BUILD_DIR" -j"$JOBS" >/dev/null || ninja -C "$BUILD_DIR" -j1

[ $run_main -eq 1 ] || exit 0

DATA=$(cat "$BUILD_DIR/data_dir.txt")  # meson.build finds it (../shared/data, or beside the origin clone)
OUT=${OUT:-out/fused}
echo "setup: gst-launch-1.0 ... timfusion ...: fusing $DATA/msrs_sample (IR + visible, 640x480) with the default model"
TIMFUSION_BUILD="$BUILD_DIR" pipelines/fuse-folders.sh -v "$DATA/msrs_sample/ir" "$DATA/msrs_sample/vis" "$OUT"
echo "setup: done. Fused images are in $OUT/ (timfusion-fuse gives the same images: build/core/timfusion-fuse --help)"
