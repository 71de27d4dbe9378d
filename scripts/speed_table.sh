#!/usr/bin/env bash
# Speed table, one run, 640x480: for ivif-light, the Python/PyTorch reference
# implementation (Debian python3-torch, same weights) vs timfusion core vs the
# timfusion element in a real pipeline (appsrc ! timfusion ! fakesink); then,
# for the real-time model ivif-rt (the Python reference has no downscale/blend
# head), core, element and a plain gst-launch-1.0 pipeline as users run it.
# Columns: ms/frame, fps, ratio to Python, GFLOP/s, efficiency (GFLOP/s over
# that of one large 3x3 convolution timed by timfusion-bench in the same run,
# same thread count), page faults per frame in steady state, peak RSS of the
# row's own process; 1 and 2 threads each.
# Usage: scripts/speed_table.sh [FRAMES] (default 3 for ivif-light; ivif-rt
# runs 30x as many in core and element, 100x in gst-launch-1.0).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
FRAMES=${1:-3}
LIGHT=core/models/ivif-light.safetensors
RT=core/models/ivif-rt.safetensors
RT_FRAMES=$((FRAMES * 30))
LAUNCH_FRAMES=${LAUNCH_FRAMES:-$((FRAMES * 300))}  # README's frames-in-flight A/B: LAUNCH_ROUNDS=5 LAUNCH_FRAMES=1000
LAUNCH_ROUNDS=${LAUNCH_ROUNDS:-3}  # gst-launch-1.0 rows: rounds of the three variants, interleaved; the median is shown
LAUNCH_STARTUP=20  # frames of the short run whose time and faults are subtracted
echo "timfusion $("$BUILD_DIR/core/timfusion-bench" --version | cut -d' ' -f2); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
echo

declare -A gflop conv  # per "model threads": GFLOP per frame, 3x3 conv GFLOP/s (from timfusion-bench)

row() {  # label threads ms rss python_ms faults gflop conv_gflops
  awk -v l="$1" -v t="$2" -v ms="$3" -v rss="$4" -v py="$5" -v f="$6" -v g="$7" -v c="$8" 'BEGIN{
    vs = (py == "") ? "-" : sprintf("%.2fx", py / ms);
    gs = (g == "") ? "-" : sprintf("%.1f", g / (ms / 1000));
    ef = (g == "" || c == "") ? "-" : sprintf("%.0f%%", 100 * g / (ms / 1000) / c);
    fs = (f == "") ? "-" : sprintf("%.0f", f);
    printf "| %s | %d | %.1f | %.2f | %s | %s | %s | %s | %.0f |\n", l, t, ms, 1000 / ms, vs, gs, ef, fs, rss }'
}
declare -A out  # per "row-key threads": "ms rss faults"
core_measure() {  # key model frames [precision]: both thread counts (one timfusion-bench run, a process per row)
  local t ms rss faults g c p=${4:-fp32} gkey="$2${4:+ $4}"
  while read -r t ms rss faults g c; do
    out["$1 $t"]="$ms $rss $faults"
    gflop["$gkey $t"]=$g
    conv["$gkey $t"]=$c
  done < <("$BUILD_DIR/core/timfusion-bench" --small --model "$2" --frames "$3" --precision "$p" | grep '| 640x480 |' |
    awk -F'|' '{for (i = 2; i <= NF; i++) gsub(/ /, "", $i); print $4, $6, $10, $11, $12, $13}')
}
element_row() {  # model threads frames -> "ms rss faults"
  "$BUILD_DIR/gst-plugin/timfusion-gst-bench" --element-only --model "$1" --threads "$2" --frames "$3" 2>/dev/null |
    awk '/^ELEMENT/ { print $3, $4, $5 }'
}
# Plain gst-launch-1.0 (videotestsrc RGB + GRAY8 -> timfusion -> fakesink), as a
# user runs it: no environment tuning. Two runs, LAUNCH_STARTUP and
# LAUNCH_STARTUP + frames buffers; the difference of their times removes
# start-up (plugin and model loading, warm-up). Page faults are not taken from
# that difference: start-up faults vary by more than 10,000 between runs
# (it gave -60 faults/frame), so the long run's own minor-fault counter is
# sampled (/proc/PID/stat) and its rate over the last 40 % of the run (steady
# state, well after start-up) is converted to faults per frame.
# Prints "seconds peak_rss_mb steady_faults_per_second".
launch_once() {  # model threads buffers [element properties]
  local desc="videotestsrc num-buffers=$3 ! video/x-raw,format=RGB,width=640,height=480,framerate=30/1 ! f.vis
    videotestsrc num-buffers=$3 pattern=ball ! video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1 ! f.ir
    timfusion name=f threads=$2 model=$1 ${4:-} ! fakesink"
  GST_PLUGIN_PATH="$BUILD_DIR/gst-plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" /usr/bin/python3 -c '
import resource, subprocess, sys, time
t = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
samples = []  # (seconds since start, minor faults so far)
while p.poll() is None:
    try:
        with open(f"/proc/{p.pid}/stat") as f:
            minflt = int(f.read().rsplit(")", 1)[1].split()[7])
        samples.append((time.monotonic() - t, minflt))
    except (OSError, IndexError, ValueError):
        pass
    time.sleep(0.02)
if p.wait() != 0:
    sys.exit("gst-launch-1.0 failed")
wall = time.monotonic() - t
steady = [s for s in samples if s[0] >= 0.6 * wall]
rate = (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0]) if len(steady) > 1 and steady[-1][0] > steady[0][0] else float("nan")
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rate)' gst-launch-1.0 -q $desc
}
launch_row() {  # model threads frames [element properties] -> "ms rss faults"
  read -r t0 _ _ < <(launch_once "$1" "$2" "$LAUNCH_STARTUP" "${4:-}")
  read -r t1 rss rate < <(launch_once "$1" "$2" $((LAUNCH_STARTUP + $3)) "${4:-}")
  awk -v t0="$t0" -v t1="$t1" -v n="$3" -v rss="$rss" -v rate="$rate" \
    'BEGIN { ms = 1000 * (t1 - t0) / n; printf "%.2f %.0f %.1f\n", ms, rss, rate * ms / 1000 }'
}

printf '| implementation | threads | ms/frame | fps | speed-up vs Python | GFLOP/s | efficiency | page faults/frame | peak RSS MB |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
# Core rows first: they measure each model's GFLOP and the 3x3 convolution reference.
core_measure "light core" "$LIGHT" "$FRAMES"
declare -A py
for t in 1 2; do
  line=$(/usr/bin/python3 scripts/tim_reference.py bench --arch ivif-light --weights "$LIGHT" \
         --width 640 --height 480 --threads "$t" --frames "$FRAMES")
  ms=$(sed -n 's/.*ms_per_frame=\([0-9.]*\).*/\1/p' <<<"$line"); rss=$(sed -n 's/.*peak_rss_mb=\([0-9.]*\).*/\1/p' <<<"$line")
  py[$t]=$ms
  row "ivif-light: Python reference (PyTorch eager)" "$t" "$ms" "$rss" "$ms" "" "${gflop["$LIGHT $t"]}" "${conv["$LIGHT $t"]}"
done
rows() {  # label key model frames measure-function [vs-python]: one row per thread count
  for t in 1 2; do
    local r=${out["$2 $t"]:-}
    [ -n "$r" ] || r=$("$5" "$3" "$t" "$4")
    [ -n "$r" ] || { echo "speed_table: no result for $1, $t threads" >&2; exit 1; }
    read -r ms rss faults <<<"$r"
    # Efficiency against the reference conv at the same thread count; GFLOP from the model's core row.
    local g=${gflop["$3 $t"]:-} c=${conv["$3 $t"]:-}
    row "$1" "$t" "$ms" "$rss" "${6:+${py[$t]}}" "$faults" "$g" "$c"
  done
}
rows "ivif-light: timfusion core (LibTorch, BN folded, NHWC)" "light core" "$LIGHT" "$FRAMES" - vs-python
# bf16 (opt-in: precision=bf16) where the CPU computes it natively; GFLOP/s and
# efficiency of these rows are against a bf16 3x3 convolution.
BF16=$(grep -qw avx512_bf16 /proc/cpuinfo && echo yes || true)
if [ -n "$BF16" ]; then
  core_measure "light core bf16" "$LIGHT" "$FRAMES" bf16
  rows "ivif-light: timfusion core, precision=bf16" "light core bf16" "$LIGHT bf16" "$FRAMES" - vs-python
fi
rows "ivif-light: timfusion element in a pipeline" "light element" "$LIGHT" "$FRAMES" element_row vs-python
if [ -f "$RT" ]; then
  core_measure "rt core" "$RT" "$RT_FRAMES"
  rows "ivif-rt: timfusion core" "rt core" "$RT" "$RT_FRAMES" -
  if [ -n "$BF16" ]; then
    core_measure "rt core bf16" "$RT" "$RT_FRAMES" bf16
    rows "ivif-rt: timfusion core, precision=bf16" "rt core bf16" "$RT bf16" "$RT_FRAMES" -
  fi
  rows "ivif-rt: timfusion element in a pipeline" "rt element" "$RT" "$RT_FRAMES" element_row
  # Plain gst-launch-1.0: 1 thread, 2 threads, and 2 threads with each frame split over them (what
  # live pipelines do, and what non-live ones did before frames in flight). A single run of a
  # few seconds moved by +-20 % on a shared VM, so the variants alternate for LAUNCH_ROUNDS rounds
  # and each row is the run with the median time (its RSS and faults with it).
  declare -A runs
  for ((r = 0; r < LAUNCH_ROUNDS; r++)); do
    for v in "1" "2" "2 parallel-frames=false"; do
      read -r t p <<<"$v"
      runs["$v"]+="$(launch_row "$RT" "$t" "$LAUNCH_FRAMES" "${p:-}")"$'\n'
    done
  done
  median_run() { sort -n <<<"${runs["$1"]}" | sed '/^$/d' | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }
  out["rt launch 1"]=$(median_run "1")
  out["rt launch 2"]=$(median_run "2")
  rows "ivif-rt: plain gst-launch-1.0 videotestsrc ! timfusion ! fakesink" "rt launch" "$RT" "$LAUNCH_FRAMES" -
  read -r ms rss faults <<<"$(median_run "2 parallel-frames=false")"
  row "ivif-rt: the same, parallel-frames=false (each frame split over the threads)" 2 "$ms" "$rss" "" "$faults" \
    "${gflop["$RT 2"]:-}" "${conv["$RT 2"]:-}"
  echo
  echo "gst-launch-1.0 runs, ms/frame per round (1 thread | 2 threads | 2 threads, parallel-frames=false):"
  for ((r = 1; r <= LAUNCH_ROUNDS; r++)); do
    printf '  round %d: %s | %s | %s\n' "$r" "$(sed -n "${r}p" <<<"${runs["1"]}" | cut -d' ' -f1)" \
      "$(sed -n "${r}p" <<<"${runs["2"]}" | cut -d' ' -f1)" "$(sed -n "${r}p" <<<"${runs["2 parallel-frames=false"]}" | cut -d' ' -f1)"
  done
fi
echo
echo "Frames: $FRAMES (ivif-light), $RT_FRAMES (ivif-rt core and element), $LAUNCH_FRAMES (gst-launch-1.0, median of $LAUNCH_ROUNDS interleaved rounds) after an"
echo "untimed warm-up. Core rows: timfusion-bench (mean of the Fuser's CPU frame path, BN folded, NHWC; bf16 rows"
echo "only on CPUs with AVX512-BF16, their efficiency against a bf16 convolution); element rows:"
echo "timfusion-gst-bench --element-only (whole frame path, first output untimed); gst-launch-1.0 rows: the"
echo "difference of a $LAUNCH_STARTUP-frame and a $((LAUNCH_STARTUP + LAUNCH_FRAMES))-frame run (start-up removed; page faults: the long run's rate over its last 40 %); the"
echo "sources are not live, so threads=2 fuses two whole frames at once (frames in flight) unless parallel-frames=false; no"
echo "environment tuning (malloc or otherwise). Each row in its own process(es), so the peak RSS is that"
echo "row's own. GFLOP/s counts the model's convolution FLOPs (timfusion-bench); efficiency is that over the"
echo "GFLOP/s of one large 3x3 convolution timed by timfusion-bench at the same thread count."
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
