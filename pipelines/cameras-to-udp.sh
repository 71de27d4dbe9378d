#!/usr/bin/env bash
# Two V4L2 cameras (thermal + visible) -> fused H.264 over RTP/UDP.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

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
$(tf_usage_cameras)
  -o HOST   receiver address (default $HOST; a multicast address works too)
  -p PORT   UDP port (default $PORT)
  -b KBPS   H.264 bitrate in kbit/s (default $BITRATE)
  -S FILE   also write an SDP file describing the stream
  -t SEC    stop after SEC seconds
$(tf_usage_model)
  -H NINE   IR->visible homography "a,b,...,i"; -c FILE calibration file
$(tf_usage_end)
USAGE
}

tf_parse_options "i:V:o:p:b:S:t:m:a:d:H:c:vh" o=HOST p=PORT b=BITRATE S=SDP -- "$@"

tf_check_cameras x264enc rtph264pay udpsink

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

tf_launch_cameras ! videoconvert \
  ! x264enc tune=zerolatency speed-preset=ultrafast bitrate="$BITRATE" key-int-max=30 \
  ! rtph264pay config-interval=1 pt=96 ! udpsink host="$HOST" port="$PORT" sync=false
