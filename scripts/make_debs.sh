#!/usr/bin/env bash
# Builds timfusion's Debian packages from this source tree:
#   gstreamer1.0-timfusion libtimfusion0 libtimfusion-dev timfusion-tools timfusion-models
#   scripts/make_debs.sh [OUT_DIR]     (default: out/debs)
# The tracked files (plus uncommitted changes to them) are copied into a clean
# temporary tree and built there with dpkg-buildpackage -b -us -uc, so nothing
# of this checkout's build/ or out/ can leak into the packages; then lintian
# checks the .changes. Installs the build tools with apt when missing (as
# scripts/setup.sh does for the build dependencies).
# The compile commands equal the normal build's (debian/rules), so ccache
# reuses its objects: run scripts/setup.sh first for a fast package build.
# Environment: JOBS (parallel jobs, default: cores), TIMFUSION_DEB_HARDENING=1
# (Debian's hardening flags; no ccache reuse), LINTIAN=0 (skip lintian).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=${1:-out/debs}
mkdir -p "$out"
out=$(cd "$out" && pwd)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=()
for p in dpkg-dev debhelper fakeroot lintian; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "make_debs: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# debhelper (compat 13) points HOME at a folder of its own while it builds;
# ccache must still find the cache (and its base_dir) the normal build filled.
if command -v ccache >/dev/null; then
  export CCACHE_DIR=${CCACHE_DIR:-$(ccache -k cache_dir)}
  base=$(ccache -k base_dir)
  [ -z "$base" ] || export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$base}
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/timfusion-debs.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/timfusion-$(sed -n '1s/.*(\(.*\)).*/\1/p' debian/changelog)"
mkdir -p "$tree"
# Tracked files as they are in this checkout (a clean checkout's content).
git ls-files -z | xargs -0 cp --parents -a -t "$tree" --

jobs=${JOBS:-$(nproc)}
start=$(date +%s)
(cd "$tree" && DEB_BUILD_OPTIONS="parallel=$jobs nocheck" dpkg-buildpackage -b -us -uc) > "$work/build.log" 2>&1 || {
  tail -40 "$work/build.log" >&2
  echo "make_debs: dpkg-buildpackage failed (log above)" >&2
  exit 1
}
echo "make_debs: dpkg-buildpackage took $(( $(date +%s) - start )) s with $jobs job(s)"
cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
if [ "${LINTIAN:-1}" = 1 ]; then
  # Errors fail; warnings and the rest are shown.
  lintian --fail-on error --suppress-tags-from-file /dev/null "$work"/*.changes || {
    echo "make_debs: lintian reports errors" >&2; exit 1; }
fi
ls -1 "$out"/*.deb
