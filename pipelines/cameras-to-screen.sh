#!/usr/bin/env bash
# Two V4L2 cameras (thermal + visible) -> fused video on the screen.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

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
$(tf_usage_cameras)
$(tf_usage_model)
  -H NINE   IR->visible homography "a,b,...,i" (maps IR pixels to visible pixels)
  -c FILE   calibration file with the homography (JSON or key file)
$(tf_usage_end)
List cameras with: v4l2-ctl --list-devices
USAGE
}

tf_parse_options "i:V:m:a:d:H:c:vh" -- "$@"

tf_check_cameras autovideosink
tf_launch_cameras ! videoconvert ! autovideosink sync=false
