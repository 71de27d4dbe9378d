#!/usr/bin/env bash
# timfusion setup: install what is missing (Debian 12, apt), build, and run
# the main job: the timfusion GStreamer element fuses the real IR + visible
# streams of ../shared/data/msrs_sample with the default model.
#
#   scripts/setup.sh            install + build + gst-launch fusion of msrs_sample -> out/fused
#   scripts/setup.sh --no-run   install + build only
#   scripts/setup.sh --install  install + build, then install timfusion into PREFIX (default /usr):
#                               the plugin lands in GStreamer's own plugin folder
#                               ($(pkg-config --variable=pluginsdir gstreamer-1.0)), so
#                               gst-inspect-1.0 timfusion works with no GST_PLUGIN_PATH; the
#                               tools in PREFIX/bin, libtimfusion + timfusion.pc + headers,
#                               the models in PREFIX/share/timfusion/models
#
# Idempotent and quiet when everything is already there; works as root or
# through sudo. BUILD_DIR (default: build), MESON_ARGS and TIMFUSION_DATA_DIR
# (the shared data; default ../shared/data, see meson.build) are honoured.
set -euo pipefail
cd "$(dirname "$0")/.."

run_main=1 install=0
case "${1:-}" in
  --no-run) run_main=0 ;;
  --install) run_main=0 install=1 ;;
  "") ;;
  *) echo "setup: unknown option \"$1\" (use --no-run or --install)" >&2; exit 2 ;;
esac

PACKAGES=(
  meson ninja-build pkg-config g++ ccache git
  libtorch-dev libopencv-dev nlohmann-json3-dev libgtest-dev
  libcli11-dev   # every tool's command line (header-only)
  libgloo-dev   # Gloo headers: timfusion-train's data-parallel training (c10d ProcessGroupGloo)
  libglib2.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  gstreamer1.0-plugins-bad   # h264parse, fpsdisplaysink: the camera and demo pipelines
  python3 python3-torch python3-numpy python3-opencv
  python3-gi gir1.2-gstreamer-1.0   # the README's Python example (examples/fuse_pipeline.py, tested)
  python3-onnx nodejs   # timfusion-export (ONNX graph checks) and its test under ONNX Runtime (onnxruntime-node)
  dpkg-dev debhelper fakeroot lintian   # scripts/make_debs.sh and its test (debs)
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null && SUDO="sudo"
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD_DIR=${BUILD_DIR:-build}
# ONNX Runtime for the onnx-export test: the npm registry's onnxruntime-node
# (its CPU library is in the package; ONNXRUNTIME_NODE_INSTALL=skip keeps its
# install script from fetching GPU libraries elsewhere), pinned, into the
# git-ignored .deps/onnxruntime. Debian 12 packages no ONNX Runtime.
ORT_VERSION=1.31.1
ORT_DIR=.deps/onnxruntime
if [ ! -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] ||
   ! grep -q "\"version\": \"$ORT_VERSION\"" "$ORT_DIR/node_modules/onnxruntime-node/package.json"; then
  command -v npm >/dev/null || $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null || true
  echo "setup: installing onnxruntime-node $ORT_VERSION into $ORT_DIR (npm)"
  mkdir -p "$ORT_DIR"
  # Not fatal: without it only the onnx-export test fails (saying so), not the build.
  ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$ORT_DIR" --no-audit --no-fund --no-save --loglevel=error \
    "onnxruntime-node@$ORT_VERSION" >/dev/null ||
    echo "setup: warning: npm could not install onnxruntime-node: the onnx-export test will fail" >&2
fi

# One job per core (at least 2); each LibTorch translation unit needs ~1 GB.
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$JOBS" -gt 2 ] || JOBS=2
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" --buildtype=release ${TIMFUSION_DATA_DIR:+-Ddata_dir="$TIMFUSION_DATA_DIR"} \
    ${MESON_ARGS:-} >/dev/null
fi
if [ $install -eq 1 ]; then
  PREFIX=${PREFIX:-/usr}
  meson configure "$BUILD_DIR" --prefix="$PREFIX" >/dev/null
fi
ninja -C "$BUILD_DIR" -j"$JOBS" >/dev/null || ninja -C "$BUILD_DIR" -j1

if [ $install -eq 1 ]; then
  $SUDO meson install -C "$BUILD_DIR" --no-rebuild --quiet
  $SUDO ldconfig
  plugindir=$(meson introspect "$BUILD_DIR" --installed | python3 -c \
    'import json, sys; print(next(p.rsplit("/", 1)[0] for p in json.load(sys.stdin).values() if p.endswith("libgsttimfusion.so")))')
  scanned=$(pkg-config --variable=pluginsdir gstreamer-1.0)
  echo "setup: installed timfusion into $PREFIX (plugin: $plugindir)"
  if [ "$plugindir" = "$scanned" ]; then
    env -u GST_PLUGIN_PATH gst-inspect-1.0 timfusion >/dev/null ||
      { echo "setup: gst-inspect-1.0 does not find the installed plugin" >&2; exit 1; }
    echo "setup: gst-inspect-1.0 timfusion finds it without GST_PLUGIN_PATH"
  else
    echo "setup: GStreamer scans $scanned, not $plugindir: use GST_PLUGIN_PATH=$plugindir (or PREFIX=/usr)"
  fi
  exit 0
fi

[ $run_main -eq 1 ] || exit 0

DATA=$(cat "$BUILD_DIR/data_dir.txt")  # meson.build finds it (../shared/data, or beside the origin clone)
OUT=${OUT:-out/fused}
echo "setup: gst-launch-1.0 ... timfusion ...: fusing $DATA/msrs_sample (IR + visible, 640x480) with the default model"
TIMFUSION_BUILD="$BUILD_DIR" pipelines/fuse-folders.sh -v "$DATA/msrs_sample/ir" "$DATA/msrs_sample/vis" "$OUT"
echo "setup: done. Fused images are in $OUT/ (timfusion-fuse gives the same images: build/core/timfusion-fuse --help)"
