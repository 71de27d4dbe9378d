#!/usr/bin/env bash
# Two V4L2 cameras (thermal + visible) -> fused video on the screen.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

IR_DEV=/dev/video2
VIS_DEV=/dev/video0
usage() {
  cat <<USAGE
Usage: $(basename "$0") [options]

Shows the fusion of a thermal camera and a visible camera live:

  v4l2src (IR)  ! videoconvert ! GRAY16_LE/GRAY8 ! queue (leaky) ! timfusion.ir
  v4l2src (VIS) ! videoconvert ! I420            ! queue (leaky) ! timfusion.vis
  timfusion ! videoconvert ! autovideosink

The output has the visible camera's size and framerate. The leaky queues
drop stale camera frames when inference is slower than the cameras, so the
newest pair is fused and latency stays bounded.

Options:
  -i DEV    thermal (IR) camera device (default $IR_DEV)
  -V DEV    visible camera device (default $VIS_DEV)
  -m FILE   weight file; -a ARCH architecture for files without metadata
  -d DEV    device: auto, cpu or cuda (default auto)
  -H NINE   IR->visible homography "a,b,...,i" (maps IR pixels to visible pixels)
  -c FILE   calibration file with the homography (JSON or key file)
  -v        print the gst-launch-1.0 command
  -h        this help
List cameras with: v4l2-ctl --list-devices
USAGE
}

while getopts "i:V:m:a:d:H:c:vh" opt; do
  case "$opt" in
    i) IR_DEV="$OPTARG" ;;
    V) VIS_DEV="$OPTARG" ;;
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

tf_setup_plugin_path
tf_need_elements v4l2src videoconvert queue autovideosink timfusion
tf_need_camera "$IR_DEV" "thermal (IR)"
tf_need_camera "$VIS_DEV" "visible"

LEAKY=(queue max-size-buffers=1 max-size-bytes=0 max-size-time=0 leaky=downstream)
tf_fusion
tf_launch \
  v4l2src device="$IR_DEV" ! videoconvert ! "video/x-raw,format={GRAY16_LE,GRAY8}" ! "${LEAKY[@]}" ! f.ir \
  v4l2src device="$VIS_DEV" ! videoconvert ! video/x-raw,format=I420 ! "${LEAKY[@]}" ! f.vis \
  "${FUSION[@]}" ! videoconvert ! autovideosink sync=false
