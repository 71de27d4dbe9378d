#!/usr/bin/env bash
# Two V4L2 cameras (thermal + visible) -> fused H.264 MP4 file.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

IR_DEV=/dev/video2
VIS_DEV=/dev/video0
BITRATE=4000
usage() {
  cat <<USAGE
Usage: $(basename "$0") [options] OUTPUT.mp4

Records the fusion of a thermal and a visible camera to an H.264 MP4 file:

  v4l2src (IR), v4l2src (VIS) ! timfusion ! videoconvert ! x264enc ! h264parse ! mp4mux ! filesink

Stop with Ctrl-C (the file is finalised cleanly) or give a duration with -t.

Options:
  -i DEV    thermal (IR) camera device (default $IR_DEV)
  -V DEV    visible camera device (default $VIS_DEV)
  -t SEC    record SEC seconds, then stop
  -b KBPS   H.264 bitrate in kbit/s (default $BITRATE)
  -m FILE   weight file; -a ARCH architecture for files without metadata
  -d DEV    device: auto, cpu or cuda (default auto)
  -H NINE   IR->visible homography "a,b,...,i"; -c FILE calibration file
  -v        print the gst-launch-1.0 command
  -h        this help
USAGE
}

while getopts "i:V:t:b:m:a:d:H:c:vh" opt; do
  case "$opt" in
    i) IR_DEV="$OPTARG" ;;
    V) VIS_DEV="$OPTARG" ;;
    t) TF_SECONDS="$OPTARG" ;;
    b) BITRATE="$OPTARG" ;;
    m) TF_MODEL="$OPTARG" ;;
    a) TF_ARCH="$OPTARG" ;;
    d) TF_DEVICE="$OPTARG" ;;
    H) TF_HOMOGRAPHY="$OPTARG" ;;
    c) TF_CALIBRATION="$OPTARG" ;;
    v) TF_VERBOSE=1 ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { usage >&2; exit 2; }
OUT="$1"

tf_setup_plugin_path
tf_need_elements v4l2src videoconvert queue x264enc h264parse mp4mux filesink timfusion
tf_need_camera "$IR_DEV" "thermal (IR)"
tf_need_camera "$VIS_DEV" "visible"

LEAKY=(queue max-size-buffers=1 max-size-bytes=0 max-size-time=0 leaky=downstream)
tf_fusion
tf_launch \
  v4l2src device="$IR_DEV" ! videoconvert ! "video/x-raw,format={GRAY16_LE,GRAY8}" ! "${LEAKY[@]}" ! f.ir \
  v4l2src device="$VIS_DEV" ! videoconvert ! video/x-raw,format=I420 ! "${LEAKY[@]}" ! f.vis \
  "${FUSION[@]}" ! videoconvert \
  ! x264enc tune=zerolatency speed-preset=veryfast bitrate="$BITRATE" ! h264parse ! mp4mux ! filesink location="$OUT"
echo "wrote $OUT" >&2
