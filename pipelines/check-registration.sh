#!/usr/bin/env bash
# Shows an IR->visible registration by eye: before | after, side by side.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
Usage: $(basename "$0") [options] -c FILE IR.png VIS.png [OUT.png]
       $(basename "$0") [options] -c FILE -l          (live: two V4L2 cameras to the screen)

Checks a calibration (from timfusion-calibrate, or any -c/-H homography):
left half, the IR frame only stretched onto the visible frame (no
registration) blended at 50 % over the visible image (compositor alpha);
right half, the timfusion element fusing the pair with the registration.
Doubled edges on the left that are single on the right: the calibration
holds. Images: writes OUT.png (default registration-check.png). The exact
registered-IR-over-visible blend of a still pair is timfusion-calibrate
--overlay FILE.png.

Options:
  -c FILE   calibration file (JSON or key file)
  -H NINE   or a homography "a,b,c,d,e,f,g,h,i"
  -l        live: cameras instead of image files
$(tf_usage_cameras)
$(tf_usage_model)
  -t SEC    live: stop after SEC seconds
$(tf_usage_end)

Example: build/core/timfusion-calibrate --ir ir.png --vis vis.png -o rig.json
         $(basename "$0") -c rig.json ir.png vis.png check.png
USAGE
}

# -l is a flag (tf_parse_options stores option arguments): taken out first.
LIVE=0
args=()
for a in "$@"; do
  if [ "$a" = -l ]; then LIVE=1; else args+=("$a"); fi
done
set -- "${args[@]+"${args[@]}"}"
tf_parse_options "c:H:i:V:m:a:d:t:vh" -- "$@"
shift $((OPTIND - 1))
[ -n "${TF_CALIBRATION:-}${TF_HOMOGRAPHY:-}" ] || { echo "error: give -c FILE or -H NINE" >&2; usage >&2; exit 2; }

tf_fusion
if [ $LIVE -eq 1 ]; then
  [ $# -eq 0 ] || { usage >&2; exit 2; }
  tf_check_cameras compositor tee autovideosink
  leaky=(queue max-size-buffers=1 max-size-bytes=0 max-size-time=0 leaky=downstream)
  tf_launch \
    compositor name=mix sink_1::alpha=0.5 sink_2::xpos=640 ! videoconvert ! autovideosink sync=false \
    v4l2src device="$VIS_DEV" ! videoconvert ! videoscale ! video/x-raw,format=I420,width=640,height=480 \
      ! tee name=v ! "${leaky[@]}" ! mix.sink_0 \
    v4l2src device="$IR_DEV" ! videoconvert ! video/x-raw,format=GRAY8 ! tee name=i \
      ! "${leaky[@]}" ! videoscale ! videoconvert ! video/x-raw,format=I420,width=640,height=480 ! mix.sink_1 \
    v. ! "${leaky[@]}" ! f.vis  i. ! "${leaky[@]}" ! f.ir \
    "${FUSION[@]}" ! videoconvert ! mix.sink_2
  exit 0
fi
[ $# -ge 2 ] && [ $# -le 3 ] || { usage >&2; exit 2; }
IR="$1"; VIS="$2"; OUT="${3:-registration-check.png}"
[ -f "$IR" ] || tf_die "IR image $IR not found"
[ -f "$VIS" ] || tf_die "visible image $VIS not found"
tf_setup_plugin_path
tf_need_elements filesrc pngdec imagefreeze compositor videoscale pngenc timfusion
# The visible size decides the layout: a PNG's IHDR holds it (bytes 16-23, big-endian).
png_u32() { od -An -tu1 -j"$2" -N4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }'; }
W="$(png_u32 "$VIS" 16)"; H="$(png_u32 "$VIS" 20)"
[ -n "${W:-}" ] && [ -n "${H:-}" ] || tf_die "cannot read the size of $VIS"
tf_launch \
  compositor name=mix background=black sink_1::alpha=0.5 sink_2::xpos="$W" ! videoconvert ! pngenc \
    ! filesink location="$OUT" \
  filesrc location="$VIS" ! pngdec ! videoconvert ! video/x-raw,format=BGR ! imagefreeze num-buffers=1 ! tee name=v \
    ! queue ! videoconvert ! video/x-raw,format=AYUV ! mix.sink_0 \
  filesrc location="$IR" ! pngdec ! videoconvert ! video/x-raw,format=GRAY8 ! imagefreeze num-buffers=1 ! tee name=i \
    ! queue ! videoscale ! video/x-raw,width="$W",height="$H" ! videoconvert ! video/x-raw,format=AYUV ! mix.sink_1 \
  v. ! queue ! f.vis  i. ! queue ! f.ir \
  "${FUSION[@]}" ! videoconvert ! video/x-raw,format=AYUV ! mix.sink_2
echo "wrote $OUT (left: IR stretched, not registered, 50 % over visible; right: fused with the registration)"
