#!/usr/bin/env bash
# Live demo without cameras: two live videotestsrc stand in for the cameras.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OUTPUT=screen
SIZE=640x480
FPS=30
IR_SIZE=160x120
IR_FPS=9
FRAMES=0
usage() {
  cat <<USAGE
Usage: $(basename "$0") [options]

A live fusion demo for machines without cameras: videotestsrc is-live=true
plays the visible camera (SMPTE bars, $SIZE at $FPS fps) and the thermal one
(a moving ball, gray, $IR_SIZE at $IR_FPS fps: another size and rate, which the
element handles). The output has the visible size and rate.

Options:
  -o OUT    screen (default) | stats (no display, prints the measured fps) |
            FILE.mp4 (H.264) | udp://HOST:PORT (RTP/H.264, see cameras-to-udp.sh -h)
  -s WxH    visible size (default $SIZE); -r FPS visible rate (default $FPS)
  -S WxH    IR size (default $IR_SIZE);     -R FPS IR rate (default $IR_FPS)
  -n N      stop after N visible frames (default: run until Ctrl-C)
  -t SEC    stop after SEC seconds
$(tf_usage_model)
$(tf_usage_end)
Example: $(basename "$0") -o stats -s 320x240 -n 150
USAGE
}

tf_parse_options "o:s:r:S:R:n:t:m:a:d:vh" o=OUTPUT s=SIZE r=FPS S=IR_SIZE R=IR_FPS n=FRAMES -- "$@"
W="${SIZE%x*}"; H="${SIZE#*x}"; IW="${IR_SIZE%x*}"; IH="${IR_SIZE#*x}"
[[ "$W$H$IW$IH$FPS$IR_FPS$FRAMES" =~ ^[0-9]+$ ]] || tf_die "sizes, rates and -n must be numbers (WxH)"

tf_setup_plugin_path
case "$OUTPUT" in
  screen) SINK=(videoconvert ! autovideosink sync=false); need=(autovideosink) ;;
  stats) SINK=(fpsdisplaysink video-sink=fakesink text-overlay=false sync=false); need=(fpsdisplaysink fakesink) ;;
  udp://*)
    hp="${OUTPUT#udp://}"
    SINK=(videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast ! rtph264pay config-interval=1 pt=96
          ! udpsink host="${hp%:*}" port="${hp##*:}" sync=false)
    need=(x264enc rtph264pay udpsink) ;;
  *.mp4) SINK=(videoconvert ! x264enc tune=zerolatency speed-preset=veryfast ! h264parse ! mp4mux
               ! filesink location="$OUTPUT"); need=(x264enc h264parse mp4mux filesink) ;;
  *) tf_die "unknown output '$OUTPUT' (screen, stats, FILE.mp4 or udp://HOST:PORT)" ;;
esac
tf_need_elements videotestsrc videoconvert timfusion "${need[@]}"

VIS_N=(); IR_N=()
if [ "$FRAMES" -gt 0 ]; then
  VIS_N=(num-buffers="$FRAMES")
  IR_N=(num-buffers=$(( (FRAMES * IR_FPS + FPS - 1) / FPS )))
fi
tf_fusion
tf_launch $([ "$OUTPUT" = stats ] && echo -v) \
  videotestsrc is-live=true pattern=smpte "${VIS_N[@]}" ! "video/x-raw,format=I420,width=$W,height=$H,framerate=$FPS/1" ! f.vis \
  videotestsrc is-live=true pattern=ball "${IR_N[@]}" ! "video/x-raw,format=GRAY8,width=$IW,height=$IH,framerate=$IR_FPS/1" ! f.ir \
  "${FUSION[@]}" ! "${SINK[@]}"
