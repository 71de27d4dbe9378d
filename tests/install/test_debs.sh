#!/usr/bin/env bash
# timfusion's Debian packages, used unpacked: scripts/make_debs.sh builds them
# (dpkg-buildpackage -b in a clean copy of the tracked files; lintian errors
# fail it), then each .deb is unpacked with dpkg-deb -x into one temporary root
# and, in a clean environment (no build tree, no TIMFUSION_* variables):
#   - every package is there, with substituted dependencies (shlibs, misc);
#   - gst-inspect-1.0 finds the element of gstreamer1.0-timfusion;
#   - a gst-launch-1.0 pipeline fuses a shared pair with the default model of
#     timfusion-models, found from the unpacked library;
#   - timfusion-fuse (timfusion-tools) fuses a pair;
#   - the library example builds with pkg-config against libtimfusion-dev;
#   - timfusion-export (timfusion-tools) writes an ONNX file;
#   - no file of any package names the source tree or the package build tree.
# An unpacked root is not scanned by GStreamer nor the dynamic linker:
# GST_PLUGIN_PATH and LD_LIBRARY_PATH point into it (installed, neither is needed).
#
# Usage: test_debs.sh SOURCE_ROOT DATA_DIR VERSION
set -euo pipefail
src=$1 data=$2 version=$3
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

tmp=$(mktemp -d /tmp/timfusion-debs-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$src/scripts/make_debs.sh" "$tmp/debs" | tee "$tmp/make_debs.log" || fail "scripts/make_debs.sh"
root=$tmp/root
mkdir -p "$root"
for p in gstreamer1.0-timfusion libtimfusion0 libtimfusion-dev timfusion-tools timfusion-models; do
  deb=$(ls "$tmp/debs/${p}_"*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || fail "package $p was not built"
  dpkg-deb -x "$deb" "$root"
  depends=$(dpkg-deb -f "$deb" Depends)
  case $depends in *'${'*) fail "$p: unsubstituted Depends: $depends" ;; esac
  echo "$p: Depends: $depends"
done
for p in gstreamer1.0-timfusion libtimfusion0 timfusion-tools; do
  dpkg-deb -f "$tmp/debs/${p}_"*.deb Depends | grep -q 'libc6' || fail "$p: no shlibs dependencies"
done
dpkg-deb -f "$tmp/debs/libtimfusion-dev_"*.deb Depends | grep -q "libtimfusion0 (= $version)" ||
  fail "libtimfusion-dev does not depend on this libtimfusion0"
libdir=$root/usr/lib/$multiarch
[ -f "$libdir/gstreamer-1.0/libgsttimfusion.so" ] || fail "plugin not in GStreamer's plugin folder"
[ -f "$root/usr/share/timfusion/models/ivif-rt.safetensors" ] || fail "no default model"
[ -f "$root/usr/share/doc/timfusion-models/LICENSE-models" ] || fail "timfusion-models lacks LICENSE-models"
grep -q '^License: timfusion-models' "$root/usr/share/doc/timfusion-models/copyright" || fail "models' licence not in copyright"

clean() {
  env -i PATH=/usr/bin:/bin HOME="$tmp/home" GST_REGISTRY="$tmp/registry.bin" \
    GST_PLUGIN_PATH="$libdir/gstreamer-1.0" LD_LIBRARY_PATH="$libdir" "$@"
}
mkdir -p "$tmp/home" "$tmp/out"
ir=$data/msrs_sample/ir/00032N.png vis=$data/msrs_sample/vis/00032N.png

clean gst-inspect-1.0 timfusion >"$tmp/inspect.txt" 2>&1 || { cat "$tmp/inspect.txt" >&2; fail "gst-inspect-1.0 timfusion"; }
grep -q "Version *$version" "$tmp/inspect.txt" || fail "gst-inspect does not show version $version"
grep -q "Filename *$libdir/gstreamer-1.0/libgsttimfusion.so" "$tmp/inspect.txt" || fail "gst-inspect found another plugin"

clean gst-launch-1.0 -q timfusion name=f ! videoconvert ! pngenc ! filesink location="$tmp/out/launch.png" \
  multifilesrc location="$ir" index=0 stop-index=0 caps=image/png,framerate=1/1 ! pngdec ! videoconvert ! f.ir \
  multifilesrc location="$vis" index=0 stop-index=0 caps=image/png,framerate=1/1 ! pngdec ! videoconvert ! f.vis \
  >"$tmp/launch.log" 2>&1 || { cat "$tmp/launch.log" >&2; fail "gst-launch-1.0 pipeline"; }
[ -s "$tmp/out/launch.png" ] || fail "the pipeline wrote no image"

clean "$root/usr/bin/timfusion-fuse" --ir "$ir" --vis "$vis" --output "$tmp/out/fuse.png" >"$tmp/fuse.log" 2>&1 ||
  { cat "$tmp/fuse.log" >&2; fail "unpacked timfusion-fuse"; }
grep -q "$root/usr/share/timfusion/models/ivif-rt.safetensors" "$tmp/fuse.log" ||
  { cat "$tmp/fuse.log" >&2; fail "timfusion-fuse did not use the packaged default model"; }

clean PKG_CONFIG_PATH="$libdir/pkgconfig" \
  sh -c "c++ -std=c++17 '$src/examples/fuse_pair.cpp' \$(pkg-config --cflags --libs timfusion) -o '$tmp/fuse_pair'" \
  >"$tmp/example-build.log" 2>&1 || { cat "$tmp/example-build.log" >&2; fail "building the library example"; }
clean "$tmp/fuse_pair" "$ir" "$vis" "$tmp/out/example.png" >"$tmp/example.log" 2>&1 ||
  { cat "$tmp/example.log" >&2; fail "running the library example"; }
grep -q "timfusion $version: .*ivif-rt.safetensors" "$tmp/example.log" || { cat "$tmp/example.log" >&2; fail "example output"; }
cmp -s "$tmp/out/example.png" "$tmp/out/fuse.png" || fail "the library example and timfusion-fuse disagree"

clean PYTHONDONTWRITEBYTECODE=1 "$root/usr/bin/timfusion-export" ivif-rt -o "$tmp/out/ivif-rt.onnx" >"$tmp/export.log" 2>&1 ||
  { cat "$tmp/export.log" >&2; fail "unpacked timfusion-export"; }
[ -s "$tmp/out/ivif-rt.onnx" ] || fail "timfusion-export wrote no file"

# No path of the source tree or of make_debs.sh's build copy in any packaged file.
if grep -rlaF -e "$src" -e "/timfusion-debs." "$root" >"$tmp/paths.txt"; then
  fail "build paths in: $(tr '\n' ' ' <"$tmp/paths.txt")"
fi
echo "packages OK: $(grep -o 'dpkg-buildpackage took .*' "$tmp/make_debs.log"); unpacked: gst-inspect, gst-launch, timfusion-fuse, pkg-config example, timfusion-export, no build paths"
