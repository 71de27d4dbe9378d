#!/usr/bin/python3
"""Many rigs in one process (issue 28): N live 640x480 camera pairs at 15 fps,
each with its own timfusion element (default properties: threads=0, the
process's shared CPU), all in ONE gst-launch-1.0, for SECONDS seconds.

    scripts/rigs_table.py [--rigs 1,2,4,8,12] [--seconds 20] [--model ivif-rt] [--threads T]

Per N, one Markdown row: delivered fps per rig (min and mean), dropped frames
per rig (max; expected 15 x seconds, after a 3 s warm-up), latency p50/p99
over all rigs (GStreamer's latency tracer: from the visible source's push to
the sink, i.e. waiting + fusion), peak RSS of the process and its CPU use
(100 % = one core). Sources: videotestsrc is-live=true (a moving ball on
both cameras), sinks fakesink sync=false. --threads gives every element that
threads value instead (the behaviour before the shared CPU: each element
with its own intra-op threads).
"""
import argparse
import os
import pathlib
import re
import signal
import statistics
import subprocess
import time

from fusion_tools import ROOT, default_build

FPS = 15
WARMUP_S = 3.0
LAT = re.compile(r"latency, src-element-id=\(string\)\S+, src-element=\(string\)(\w+), src=.*?"
                 r"sink-element=\(string\)(\w+), sink=.*?time=\(guint64\)(\d+), ts=\(guint64\)(\d+)")


def pipeline(n, model, threads):
    parts = []
    for i in range(n):
        prop = f" threads={threads}" if threads is not None else ""
        parts += [f"videotestsrc is-live=true pattern=smpte horizontal-speed={i + 1} name=vis{i}",
                  "!", f"video/x-raw,format=RGB,width=640,height=480,framerate={FPS}/1", "!", f"f{i}.vis",
                  f"videotestsrc is-live=true pattern=ball name=ir{i}",
                  "!", f"video/x-raw,format=GRAY8,width=640,height=480,framerate={FPS}/1", "!", f"f{i}.ir",
                  f"timfusion name=f{i} model={model}{prop}", "!", f"fakesink name=sink{i} sync=false"]
    return " ".join(parts).split()


def proc_cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(n, seconds, model, threads, build):
    env = dict(os.environ, GST_PLUGIN_PATH=str(pathlib.Path(build) / "gst-plugin"),
               GST_TRACERS="latency(flags=pipeline)", GST_DEBUG="GST_TRACER:7", GST_DEBUG_NO_COLOR="1")
    log = pathlib.Path(build) / f"rigs-{n}.log"
    with open(log, "w") as err:
        p = subprocess.Popen(["gst-launch-1.0", "-e", "-q"] + pipeline(n, model, threads), env=env,
                             stdout=subprocess.DEVNULL, stderr=err)
        time.sleep(WARMUP_S)
        cpu0, t0 = proc_cpu_s(p.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = proc_cpu_s(p.pid), time.monotonic()
        rss = peak_rss_mb(p.pid)
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    # The tracer's ts is the pipeline's clock time since start (ns): count
    # what arrived in the measured window, from the visible sources.
    lo, hi = WARMUP_S * 1e9, (WARMUP_S + (t1 - t0)) * 1e9
    frames, lat = [0] * n, []
    for line in open(log, errors="replace"):
        m = LAT.search(line)
        if not m or not m.group(1).startswith("vis"):
            continue
        ts = int(m.group(4))
        if lo <= ts < hi:
            frames[int(m.group(1)[3:])] += 1
            lat.append(int(m.group(3)) / 1e6)
    window = t1 - t0
    fps = [f / window for f in frames]
    drops = [max(0, round(FPS * window) - f) for f in frames]
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [float("nan")] * 99
    return (f"| {n} | {min(fps):.1f} | {statistics.mean(fps):.1f} | {max(drops)} | {q[49]:.1f} | {q[98]:.1f} | "
            f"{rss:.0f} | {100 * (cpu1 - cpu0) / window:.0f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rigs", default="1,2,4,8,12")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--model", default="ivif-rt")
    ap.add_argument("--threads", type=int, default=None, help="set on every element (default: the element's, 0)")
    ap.add_argument("--build", default=default_build())
    a = ap.parse_args()
    print(f"threads={'default (0: shared CPU)' if a.threads is None else a.threads}, model {a.model}, "
          f"{os.cpu_count()} cores, {a.seconds:g} s after {WARMUP_S:g} s warm-up, {FPS} fps per camera")
    print()
    print("| rigs | fps per rig, min | fps per rig, mean | drops per rig, max | latency p50 ms | latency p99 ms | "
          "peak RSS MB | CPU % |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in [int(x) for x in a.rigs.split(",")]:
        print(run(n, a.seconds, a.model, a.threads, a.build), flush=True)


if __name__ == "__main__":
    main()
