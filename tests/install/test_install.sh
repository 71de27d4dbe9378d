#!/usr/bin/env bash
# timfusion installed, used from the installed tree only: meson install into a
# DESTDIR, then, in a clean environment (no build tree, no TIMFUSION_* variables):
#   - gst-inspect-1.0 finds the element and shows this version;
#   - a gst-launch-1.0 pipeline fuses a shared pair with the default model;
#   - timfusion-fuse fuses a pair with the default model, found in the install;
#   - the README's library example builds with pkg-config against the install
#     and fuses a pair;
#   - no installed binary contains a path of the source or build tree.
# A DESTDIR is not scanned by GStreamer nor the dynamic linker: GST_PLUGIN_PATH
# and LD_LIBRARY_PATH point into it (a real install to /usr needs neither).
#
# Usage: test_install.sh BUILD_DIR SOURCE_ROOT PREFIX LIBDIR PLUGINDIR DATA_DIR VERSION
set -euo pipefail
build=$1 src=$2 prefix=$3 libdir=$4 plugindir=$5 data=$6 version=$7
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac

dest=$(mktemp -d /tmp/timfusion-install-test.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR=$dest meson install -C "$build" --no-rebuild --quiet >"$dest/install.log" 2>&1 ||
  { cat "$dest/install.log" >&2; fail "meson install into a DESTDIR"; }
root=$dest$prefix
[ -f "$dest$plugindir/libgsttimfusion.so" ] || fail "plugin not installed in $plugindir"
[ -f "$root/share/timfusion/models/ivif-rt.safetensors" ] || fail "default model not in share/timfusion/models"
for h in fuser.h fuser_pool.h calibration.h version.h error.h; do [ -f "$root/include/timfusion/$h" ] || fail "header timfusion/$h not installed"; done
soname=$(objdump -p "$dest$libdir/libtimfusion.so" | awk '/SONAME/ {print $2}')
[ "$soname" = "libtimfusion.so.${version%%.*}" ] || fail "soname is '$soname'"

# Clean environment: only the DESTDIR paths, a private registry, a scratch HOME.
clean() {
  env -i PATH=/usr/bin:/bin HOME="$dest/home" GST_REGISTRY="$dest/registry.bin" \
    GST_PLUGIN_PATH="$dest$plugindir" LD_LIBRARY_PATH="$dest$libdir" "$@"
}
mkdir -p "$dest/home" "$dest/out"

# 1. gst-inspect-1.0
clean gst-inspect-1.0 timfusion >"$dest/inspect.txt" 2>&1 || { cat "$dest/inspect.txt" >&2; fail "gst-inspect-1.0 timfusion"; }
grep -q "Version *$version" "$dest/inspect.txt" || fail "gst-inspect does not show version $version"
grep -q "License *LGPL" "$dest/inspect.txt" || fail "gst-inspect does not show the licence"
grep -q "repeat-after-eos" "$dest/inspect.txt" || fail "gst-inspect does not show the pad properties"

# 2. a pipeline with the default model (the installed ivif-rt)
ir=$data/msrs_sample/ir/00032N.png vis=$data/msrs_sample/vis/00032N.png
clean gst-launch-1.0 -q timfusion name=f ! videoconvert ! pngenc ! filesink location="$dest/out/launch.png" \
  multifilesrc location="$ir" index=0 stop-index=0 caps=image/png,framerate=1/1 ! pngdec ! videoconvert ! f.ir \
  multifilesrc location="$vis" index=0 stop-index=0 caps=image/png,framerate=1/1 ! pngdec ! videoconvert ! f.vis \
  >"$dest/launch.log" 2>&1 || { cat "$dest/launch.log" >&2; fail "gst-launch-1.0 pipeline"; }
[ -s "$dest/out/launch.png" ] || fail "the pipeline wrote no image"

# 3. timfusion-fuse, default model from the install
clean "$root/bin/timfusion-fuse" --ir "$ir" --vis "$vis" --output "$dest/out/fuse.png" >"$dest/fuse.log" 2>&1 ||
  { cat "$dest/fuse.log" >&2; fail "installed timfusion-fuse"; }
grep -q "$dest$prefix/share/timfusion/models/ivif-rt.safetensors" "$dest/fuse.log" ||
  { cat "$dest/fuse.log" >&2; fail "timfusion-fuse did not use the installed default model"; }
cmp -s "$dest/out/fuse.png" "$dest/out/launch.png" || true  # PNG encoders differ; pixels are compared by the gst tests
clean "$root/bin/timfusion-fuse" --version | grep -qx "timfusion-fuse $version" || fail "timfusion-fuse --version"

# 4. the library example, built with pkg-config against the install
example=$src/examples/fuse_pair.cpp
# timfusion.pc is relocatable (prefix=${pcfiledir}/../..): it points into the DESTDIR by itself.
clean PKG_CONFIG_PATH="$dest$libdir/pkgconfig" \
  sh -c "c++ -std=c++17 '$example' \$(pkg-config --cflags --libs timfusion) -o '$dest/fuse_pair'" \
  >"$dest/example-build.log" 2>&1 || { cat "$dest/example-build.log" >&2; fail "building the library example"; }
clean "$dest/fuse_pair" "$ir" "$vis" "$dest/out/example.png" >"$dest/example.log" 2>&1 ||
  { cat "$dest/example.log" >&2; fail "running the library example"; }
grep -q "timfusion $version: .*ivif-rt.safetensors" "$dest/example.log" || { cat "$dest/example.log" >&2; fail "example output"; }
[ -s "$dest/out/example.png" ] || fail "the example wrote no image"

# 5. no build-tree path in any installed binary
for f in $(find "$dest" -path "$dest/out" -prune -o -type f \( -perm -u+x -o -name '*.so*' \) -print); do
  [ "$(head -c 4 "$f" | tail -c 3)" = ELF ] || continue
  case $f in "$dest/fuse_pair") continue ;; esac
  if strings -a "$f" | grep -qF -e "$src" -e "$(cd "$build" && pwd)"; then
    fail "$f contains a build-tree path: $(strings -a "$f" | grep -F -e "$src" | head -3 | tr '\n' ' ')"
  fi
done
echo "installed tree OK: gst-inspect, gst-launch, timfusion-fuse, pkg-config example, no build-tree paths"
