#!/usr/bin/env bash
# Fuses two folders of registered images (same file names) into fused PNGs.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
Usage: $(basename "$0") [options] IR_DIR VIS_DIR OUT_DIR

Fuses every pair IR_DIR/NAME.png + VIS_DIR/NAME.png (same base name) with the
timfusion GStreamer element and writes OUT_DIR/NAME.png. Colour visible
images give colour output (visible chroma kept), gray gives gray; 16-bit
gray IR PNGs are read as GRAY16. The pipeline is

  multifilesrc ! pngdec ! videoconvert ! timfusion.vis
  multifilesrc ! pngdec ! videoconvert ! timfusion.ir
  timfusion ! videoconvert ! pngenc ! multifilesink

Options:
  -m FILE   weight file (.safetensors); default: the element's default model
  -a ARCH   architecture for weight files without metadata (e.g. ivif-light)
  -d DEV    device: auto, cpu or cuda (default auto)
  -H NINE   IR->visible homography "a,b,c,d,e,f,g,h,i" (default identity)
  -c FILE   calibration file with the homography (JSON or key file)
  -n N      fuse only the first N pairs (sorted by name)
$(tf_usage_end)

Environment: TIMFUSION_BUILD=<meson build dir> to use an uninstalled plugin
(default: ./build when run from the source root).
Example: $(basename "$0") -n 4 ../shared/data/msrs_sample/ir ../shared/data/msrs_sample/vis /tmp/fused
USAGE
}

LIMIT=0
tf_parse_options "m:a:d:H:c:n:vh" n=LIMIT -- "$@"
shift $((OPTIND - 1))
[ $# -eq 3 ] || { usage >&2; exit 2; }
IR_DIR="$1"; VIS_DIR="$2"; OUT_DIR="$3"
[ -d "$IR_DIR" ] || tf_die "IR folder $IR_DIR not found"
[ -d "$VIS_DIR" ] || tf_die "visible folder $VIS_DIR not found"

tf_setup_plugin_path
tf_need_elements multifilesrc pngdec pngenc videoconvert multifilesink timfusion

# Pairs = names present in both folders.
names=()
while IFS= read -r -d '' f; do
  name="$(basename "$f")"
  [ -f "$IR_DIR/$name" ] && names+=("$name")
done < <(find "$VIS_DIR" -maxdepth 1 -name '*.png' -print0 | sort -z)
[ ${#names[@]} -gt 0 ] || tf_die "no PNG file name is present in both $IR_DIR and $VIS_DIR"
if [ "$LIMIT" -gt 0 ] && [ "$LIMIT" -lt ${#names[@]} ]; then names=("${names[@]:0:$LIMIT}"); fi
n=${#names[@]}

# multifilesrc reads numbered files: link the pairs as 000000.png, ...
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/ir" "$tmp/vis" "$tmp/out" "$OUT_DIR"
for i in "${!names[@]}"; do
  num="$(printf '%06d' "$i")"
  ln -s "$(realpath "$IR_DIR/${names[$i]}")" "$tmp/ir/$num.png"
  ln -s "$(realpath "$VIS_DIR/${names[$i]}")" "$tmp/vis/$num.png"
done

echo "fusing $n pairs into $OUT_DIR" >&2
tf_fusion
FUSION+=(temporal=false)  # a folder of still pairs is not video: each pair is fused on its own
tf_launch -q \
  multifilesrc location="$tmp/vis/%06d.png" index=0 stop-index=$((n - 1)) caps=image/png,framerate=1/1 \
    ! pngdec ! videoconvert ! f.vis \
  multifilesrc location="$tmp/ir/%06d.png" index=0 stop-index=$((n - 1)) caps=image/png,framerate=1/1 \
    ! pngdec ! videoconvert ! f.ir \
  "${FUSION[@]}" ! videoconvert ! pngenc ! multifilesink sync=false location="$tmp/out/%06d.png"

done_count=0
for i in "${!names[@]}"; do
  out="$tmp/out/$(printf '%06d' "$i").png"
  if [ -f "$out" ]; then
    mv "$out" "$OUT_DIR/${names[$i]}"
    done_count=$((done_count + 1))
  fi
done
[ "$done_count" -eq "$n" ] || tf_die "only $done_count of $n fused images were written"
echo "wrote $done_count fused images to $OUT_DIR" >&2
