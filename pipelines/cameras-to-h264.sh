#!/usr/bin/env bash
# Two V4L2 cameras (thermal + visible) -> fused H.264 MP4 file.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BITRATE=4000
usage() {
  cat <<USAGE
Usage: $(basename "$0") [options] OUTPUT.mp4

Records the fusion of a thermal and a visible camera to an H.264 MP4 file:

  v4l2src (IR), v4l2src (VIS) ! timfusion ! videoconvert ! x264enc ! h264parse ! mp4mux ! filesink

Stop with Ctrl-C (the file is finalised cleanly) or give a duration with -t.

Options:
$(tf_usage_cameras)
  -t SEC    record SEC seconds, then stop
  -b KBPS   H.264 bitrate in kbit/s (default $BITRATE)
$(tf_usage_model)
  -H NINE   IR->visible homography "a,b,...,i"; -c FILE calibration file
$(tf_usage_end)
USAGE
}

tf_parse_options "i:V:t:b:m:a:d:H:c:vh" b=BITRATE -- "$@"
shift $((OPTIND - 1))
[ $# -eq 1 ] || { usage >&2; exit 2; }
OUT="$1"

tf_check_cameras x264enc h264parse mp4mux filesink
tf_launch_cameras ! videoconvert \
  ! x264enc tune=zerolatency speed-preset=veryfast bitrate="$BITRATE" ! h264parse ! mp4mux ! filesink location="$OUT"
echo "wrote $OUT" >&2
