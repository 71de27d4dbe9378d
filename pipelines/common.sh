# Shared helpers for the timfusion pipeline scripts (sourced, not run):
# finding the plugin, checking elements and cameras, the options every script
# takes (parsing and help lines), the camera branches, gst-launch.
#
# Finds the uninstalled plugin: $TIMFUSION_BUILD/gst-plugin when
# TIMFUSION_BUILD is set, else ./build/gst-plugin (run from the source root),
# else <this repository>/build/gst-plugin. An installed plugin (in the system
# GStreamer plugin dir) is found by GStreamer itself.

TF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

tf_setup_plugin_path() {
  local build
  if [ -n "${TIMFUSION_BUILD:-}" ]; then
    build="$TIMFUSION_BUILD"
  elif [ -d build/gst-plugin ]; then
    build="$(pwd)/build"
  else
    build="$TF_ROOT/build"
  fi
  if [ -d "$build/gst-plugin" ]; then
    export GST_PLUGIN_PATH="$build/gst-plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  fi
}

tf_die() {
  echo "error: $*" >&2
  exit 1
}

# Camera devices of the cameras-to-*.sh scripts (-i, -V).
IR_DEV=/dev/video2
VIS_DEV=/dev/video0

# tf_parse_options OPTSTRING [LETTER=VARIABLE...] -- "$@": getopts over the
# script's arguments. Handles the options shared by the scripts (those of
# them in OPTSTRING):
#   -i DEV, -V DEV  cameras (IR_DEV, VIS_DEV)      -t SEC  TF_SECONDS
#   -m -a -d -H -c  the element's properties (see tf_fusion)
#   -v              TF_VERBOSE       -h  usage, exit 0
# and stores the argument of each script option LETTER in VARIABLE. A bad
# option prints the usage to stderr and exits 2. Afterwards the script does
# shift $((OPTIND - 1)).
tf_parse_options() {
  local optstring="$1" opt
  local -A own=()
  shift
  while [ "$1" != -- ]; do
    own[${1%%=*}]="${1#*=}"
    shift
  done
  shift
  while getopts "$optstring" opt; do
    case "$opt" in
      i) IR_DEV="$OPTARG" ;;
      V) VIS_DEV="$OPTARG" ;;
      t) TF_SECONDS="$OPTARG" ;;
      m) TF_MODEL="$OPTARG" ;;
      a) TF_ARCH="$OPTARG" ;;
      d) TF_DEVICE="$OPTARG" ;;
      H) TF_HOMOGRAPHY="$OPTARG" ;;
      c) TF_CALIBRATION="$OPTARG" ;;
      v) TF_VERBOSE=1 ;;
      h) usage; exit 0 ;;
      \?) usage >&2; exit 2 ;;
      *) printf -v "${own[$opt]}" '%s' "$OPTARG" ;;
    esac
  done
}

# Help lines of the shared options, for the scripts' usage texts.
tf_usage_cameras() {
  echo "  -i DEV    thermal (IR) camera device (default $IR_DEV)"
  echo "  -V DEV    visible camera device (default $VIS_DEV)"
}
tf_usage_model() {
  echo "  -m FILE   weight file; -a ARCH architecture for files without metadata"
  echo "  -d DEV    device: auto, cpu or cuda (default auto)"
}
tf_usage_end() {
  echo "  -v        print the gst-launch-1.0 command"
  echo "  -h        this help"
}

# tf_need_elements NAME...: every element must exist (with a hint for ours).
tf_need_elements() {
  command -v gst-launch-1.0 >/dev/null || tf_die "gst-launch-1.0 not found: install gstreamer1.0-tools"
  command -v gst-inspect-1.0 >/dev/null || tf_die "gst-inspect-1.0 not found: install gstreamer1.0-tools"
  local missing=()
  # --atleast-version: without it, --exists also demands that the plugin's
  # version be at least GStreamer's own (timfusion's is the project's).
  for e in "$@"; do
    gst-inspect-1.0 --exists --atleast-version=0.0.0 "$e" || missing+=("$e")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    for e in "${missing[@]}"; do
      case "$e" in
        timfusion) echo "error: element 'timfusion' not found. Build it (ninja -C build) and run from the source" \
                        "root, set TIMFUSION_BUILD=<build dir>, or install it (scripts/setup.sh --install)." >&2 ;;
        x264enc) echo "error: element 'x264enc' not found (package gstreamer1.0-plugins-ugly)" >&2 ;;
        avdec_h264) echo "error: element 'avdec_h264' not found (package gstreamer1.0-libav)" >&2 ;;
        v4l2src) echo "error: element 'v4l2src' not found (package gstreamer1.0-plugins-good)" >&2 ;;
        h264parse|fpsdisplaysink) echo "error: element '$e' not found (package gstreamer1.0-plugins-bad)" >&2 ;;
        *) echo "error: GStreamer element '$e' not found" >&2 ;;
      esac
    done
    exit 1
  fi
}

# tf_need_camera DEVICE ROLE: the V4L2 device node must exist.
tf_need_camera() {
  local dev="$1" role="$2"
  if [ ! -e "$dev" ]; then
    echo "error: $role camera $dev not found." >&2
    local found
    found="$(ls /dev/video* 2>/dev/null | tr '\n' ' ' || true)"
    if [ -n "$found" ]; then
      echo "       video devices here: $found(choose with the options, see -h)" >&2
    else
      echo "       no /dev/video* device on this machine: try pipelines/synthetic-demo.sh" >&2
    fi
    exit 1
  fi
  [ -r "$dev" ] || tf_die "$role camera $dev is not readable (add yourself to the 'video' group)"
}

# tf_check_cameras ELEMENT...: for the camera scripts: the plugin path, the
# elements of the camera branches and timfusion (ELEMENT...: the script's
# output side), and both camera devices (IR_DEV, VIS_DEV).
tf_check_cameras() {
  tf_setup_plugin_path
  tf_need_elements v4l2src videoconvert queue "$@" timfusion
  tf_need_camera "$IR_DEV" "thermal (IR)"
  tf_need_camera "$VIS_DEV" "visible"
}

# tf_launch_cameras ! OUTPUT...: runs both cameras through leaky one-frame
# queues (stale frames are dropped when inference is slower than the
# cameras) into timfusion, followed by the script's output side.
tf_launch_cameras() {
  local leaky=(queue max-size-buffers=1 max-size-bytes=0 max-size-time=0 leaky=downstream)
  tf_fusion
  tf_launch \
    v4l2src device="$IR_DEV" ! videoconvert ! "video/x-raw,format={GRAY16_LE,GRAY8}" ! "${leaky[@]}" ! f.ir \
    v4l2src device="$VIS_DEV" ! videoconvert ! video/x-raw,format=I420 ! "${leaky[@]}" ! f.vis \
    "${FUSION[@]}" "$@"
}

# tf_fusion: sets the array FUSION to "timfusion name=f <properties>" from
# the common options (TF_MODEL, TF_ARCH, TF_DEVICE, TF_HOMOGRAPHY,
# TF_CALIBRATION). Each word is one gst-launch argument, so paths with
# spaces need no extra quoting.
tf_fusion() {
  FUSION=(timfusion name=f)
  [ -n "${TF_MODEL:-}" ] && FUSION+=("model=$TF_MODEL")
  [ -n "${TF_ARCH:-}" ] && FUSION+=("arch=$TF_ARCH")
  [ -n "${TF_DEVICE:-}" ] && FUSION+=("device=$TF_DEVICE")
  [ -n "${TF_HOMOGRAPHY:-}" ] && FUSION+=("ir-homography=$TF_HOMOGRAPHY")
  [ -n "${TF_CALIBRATION:-}" ] && FUSION+=("calibration-file=$TF_CALIBRATION")
  return 0
}

# tf_gst_args ARG...: the arguments for gst-launch-1.0 in the array GST_ARGS,
# with every property value quoted. gst-launch-1.0 joins its arguments into
# one pipeline description and parses that again, so a value holding a space,
# '!' or ',' would otherwise start new elements or properties (a file name
# like 'x" ! filesink location=F' would write F). Every NAME=VALUE argument
# becomes NAME="VALUE", which the parser takes literally; values with a '"',
# a backslash or a control character cannot be quoted reliably and are
# refused with an error.
tf_gst_args() {
  local a name value
  GST_ARGS=()
  for a in "$@"; do
    if [[ "$a" =~ ^([A-Za-z][A-Za-z0-9_-]*)=(.*)$ ]]; then
      name="${BASH_REMATCH[1]}"; value="${BASH_REMATCH[2]}"
      case "$value" in
        *[\"\\]*) tf_die "$name: the value '$value' contains a double quote or a backslash, which gst-launch-1.0 cannot take safely (rename the file or folder)" ;;
      esac
      [[ "$value" =~ [[:cntrl:]] ]] && tf_die "$name: the value contains a control character (newline, tab, ...)"
      GST_ARGS+=("$name=\"$value\"")
    else
      GST_ARGS+=("$a")
    fi
  done
}

# tf_launch ARG...: gst-launch-1.0 -e (Ctrl-C sends EOS, so files are
# finalised) with the arguments of tf_gst_args. With TF_SECONDS set, stops
# the same way after that many seconds.
tf_launch() {
  tf_gst_args "$@"
  if [ -n "${TF_VERBOSE:-}" ]; then
    printf 'gst-launch-1.0 -e' >&2
    printf " '%s'" "${GST_ARGS[@]}" >&2
    echo >&2
  fi
  if [ -n "${TF_SECONDS:-}" ] && [ "${TF_SECONDS}" != 0 ]; then
    local rc=0
    timeout -s INT "$TF_SECONDS" gst-launch-1.0 -e "${GST_ARGS[@]}" || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 124 ] || return $rc
  else
    gst-launch-1.0 -e "${GST_ARGS[@]}"
  fi
}
