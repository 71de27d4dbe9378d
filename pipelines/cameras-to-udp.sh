#!/usr/bin/env bash
# Two V4L2 cameras (thermal + visible) -> fused H.264 over RTP/UDP.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

IR_DEV=/dev/video2
VIS_DEV=/dev/video0
HOST=127.0.0.1
PORT=5000
BITRATE=2000
SDP=""
usage() {
  cat <<USAGE
Usage: $(basename "$0") [options]

Streams the fusion of a thermal and a visible camera as RTP/H.264 over UDP:

  v4l2src (IR), v4l2src (VIS) ! timfusion ! videoconvert ! x264enc tune=zerolatency
    ! rtph264pay config-interval=1 pt=96 ! udpsink host=HOST port=PORT

View it on HOST with GStreamer:
  gst-launch-1.0 udpsrc port=PORT caps="application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96" \\
    ! rtpjitterbuffer latency=100 ! rtph264depay ! avdec_h264 ! videoconvert ! autovideosink
or with VLC / ffplay through the SDP file written by -S (ffplay -protocol_whitelist file,udp,rtp FILE.sdp).
For RTSP, serve the same pipeline with gst-rtsp-server's test-launch example.

Options:
  -i DEV    thermal (IR) camera device (default $IR_DEV)
  -V DEV    visible camera device (default $VIS_DEV)
  -o HOST   receiver address (default $HOST; a multicast address works too)
  -p PORT   UDP port (default $PORT)
  -b KBPS   H.264 bitrate in kbit/s (default $BITRATE)
  -S FILE   also write an SDP file describing the stream
  -t SEC    stop after SEC seconds
  -m FILE   weight file; -a ARCH architecture for files without metadata
  -d DEV    device: auto, cpu or cuda (default auto)
  -H NINE   IR->visible homography "a,b,...,i"; -c FILE calibration file
  -v        print the gst-launch-1.0 command
  -h        this help
USAGE
}

while getopts "i:V:o:p:b:S:t:m:a:d:H:c:vh" opt; do
  case "$opt" in
    i) IR_DEV="$OPTARG" ;;
    V) VIS_DEV="$OPTARG" ;;
    o) HOST="$OPTARG" ;;
    p) PORT="$OPTARG" ;;
    b) BITRATE="$OPTARG" ;;
    S) SDP="$OPTARG" ;;
    t) TF_SECONDS="$OPTARG" ;;
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
tf_need_elements v4l2src videoconvert queue x264enc rtph264pay udpsink timfusion
tf_need_camera "$IR_DEV" "thermal (IR)"
tf_need_camera "$VIS_DEV" "visible"

if [ -n "$SDP" ]; then
  cat >"$SDP" <<SDPEOF
v=0
o=- 0 0 IN IP4 $HOST
s=timfusion
c=IN IP4 $HOST
t=0 0
m=video $PORT RTP/AVP 96
a=rtpmap:96 H264/90000
SDPEOF
  echo "wrote $SDP" >&2
fi
echo "streaming to udp://$HOST:$PORT (see -h for how to view it)" >&2

LEAKY=(queue max-size-buffers=1 max-size-bytes=0 max-size-time=0 leaky=downstream)
tf_fusion
tf_launch \
  v4l2src device="$IR_DEV" ! videoconvert ! "video/x-raw,format={GRAY16_LE,GRAY8}" ! "${LEAKY[@]}" ! f.ir \
  v4l2src device="$VIS_DEV" ! videoconvert ! video/x-raw,format=I420 ! "${LEAKY[@]}" ! f.vis \
  "${FUSION[@]}" ! videoconvert \
  ! x264enc tune=zerolatency speed-preset=ultrafast bitrate="$BITRATE" key-int-max=30 \
  ! rtph264pay config-interval=1 pt=96 ! udpsink host="$HOST" port="$PORT" sync=false
