#!/usr/bin/python3
"""Many rigs in one process (issue 28): N live 640x480 camera pairs at 15 fps,
each with its own timfusion element (default properties: threads=0, the
process's shared CPU), all in ONE pipeline in one process, for SECONDS seconds.

    scripts/rigs_table.py [--rigs 1,2,4,8,12] [--seconds 20] [--model ivif-rt] [--threads T]

Each N runs in a fresh process that does what gst-launch-1.0 does with the
same description (Gst.parse_launch, PLAYING, a main loop), plus a probe on
every sink pad. Per N, one Markdown row: delivered fps per rig (min and
mean), dropped frames per rig (max; 15 x seconds expected, after a 3 s
warm-up), latency p50/p99 over all rigs (the pipeline clock's running time
when a fused frame reaches its sink minus its timestamp, which a live source
sets at capture: capture to output), peak RSS of the process and its CPU
use over the window (100 % = one core), and that CPU time per delivered
frame (ms; whole process: sources, aggregators and sinks included, so that a
run that falls behind shows whether each frame cost more or fewer frames
were fused). Sources: videotestsrc is-live=true
(colour bars on the visible camera, a moving ball on the thermal one); sinks
fakesink sync=false. --threads gives every element that threads value (each
element with its own intra-op threads, the behaviour before the shared CPU).
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

from fusion_tools import default_build

FPS = 15
WARMUP_S = 3.0


def description(n, model, threads):
    prop = f" threads={threads}" if threads is not None else ""
    parts = []
    for i in range(n):
        parts.append(f"videotestsrc is-live=true pattern=smpte horizontal-speed={i + 1} ! "
                     f"video/x-raw,format=RGB,width=640,height=480,framerate={FPS}/1 ! f{i}.vis "
                     f"videotestsrc is-live=true pattern=ball ! "
                     f"video/x-raw,format=GRAY8,width=640,height=480,framerate={FPS}/1 ! f{i}.ir "
                     f"timfusion name=f{i} model={model}{prop} ! fakesink name=sink{i} sync=false")
    return " ".join(parts)


def cpu_s():
    t = os.times()
    return t.user + t.system


def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one(n, seconds, model, threads):
    """Runs in the child process: prints one JSON line."""
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst
    Gst.init(None)
    pipe = Gst.parse_launch(description(n, model, threads))
    frames = [0] * n
    lat = []
    window = {"on": False}

    def probe(pad, info, i):
        if window["on"]:
            buf = info.get_buffer()
            clock = pipe.get_clock()
            if clock is not None and buf.pts != Gst.CLOCK_TIME_NONE:
                running = clock.get_time() - pipe.get_base_time()
                lat.append((running - buf.pts) / 1e6)
            frames[i] += 1
        return Gst.PadProbeReturn.OK

    for i in range(n):
        pipe.get_by_name(f"sink{i}").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe, i)
    loop = GLib.MainLoop()
    bus = pipe.get_bus()
    bus.add_signal_watch()
    errors = []
    bus.connect("message::error", lambda b, m: (errors.append(m.parse_error()[0].message), loop.quit()))
    marks = {}

    def start():
        marks["cpu0"], marks["t0"] = cpu_s(), time.monotonic()
        window["on"] = True
        return False

    def stop():
        window["on"] = False
        marks["cpu1"], marks["t1"] = cpu_s(), time.monotonic()
        loop.quit()
        return False

    pipe.set_state(Gst.State.PLAYING)
    GLib.timeout_add(int(WARMUP_S * 1000), start)
    GLib.timeout_add(int((WARMUP_S + seconds) * 1000), stop)
    loop.run()
    rss = peak_rss_mb()
    pipe.set_state(Gst.State.NULL)
    if errors or "t1" not in marks:
        print(json.dumps({"error": "; ".join(errors) or "no measurement"}))
        return
    span = marks["t1"] - marks["t0"]
    print(json.dumps({"frames": frames, "latency_ms": lat, "span": span, "rss": rss,
                      "cpu": (marks["cpu1"] - marks["cpu0"]) / span}))


def row(n, r):
    if "error" in r:
        return f"| {n} | error: {r['error']} |"
    fps = [f / r["span"] for f in r["frames"]]
    drops = [max(0, round(FPS * r["span"]) - f) for f in r["frames"]]
    q = statistics.quantiles(r["latency_ms"], n=100) if len(r["latency_ms"]) > 1 else [float("nan")] * 99
    total_fps = sum(fps)
    cpu_ms = 1000 * r["cpu"] / total_fps if total_fps > 0 else float("nan")
    return (f"| {n} | {min(fps):.1f} | {statistics.mean(fps):.1f} | {max(drops)} | {q[49]:.0f} | {q[98]:.0f} | "
            f"{r['rss']:.0f} | {100 * r['cpu']:.0f} | {cpu_ms:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rigs", default="1,2,4,8,12")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--model", default="ivif-rt")
    ap.add_argument("--threads", type=int, default=None, help="set on every element (default: the element's, 0)")
    ap.add_argument("--build", default=default_build())
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # the child process
    a = ap.parse_args()
    if a.one is not None:
        one(a.one, a.seconds, a.model, a.threads)
        return
    env = dict(os.environ, GST_PLUGIN_PATH=str(pathlib.Path(a.build).resolve() / "gst-plugin"))
    print(f"threads={'0 (default: the shared CPU)' if a.threads is None else a.threads}, model {a.model}, "
          f"{os.cpu_count()} cores, {a.seconds:g} s after {WARMUP_S:g} s warm-up, {FPS} fps per camera, 640x480")
    print()
    print("| rigs | fps per rig, min | fps per rig, mean | drops per rig, max | latency p50 ms | latency p99 ms | "
          "peak RSS MB | CPU % | CPU ms per frame |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in [int(x) for x in a.rigs.split(",")]:
        cmd = [sys.executable, __file__, "--one", str(n), "--seconds", str(a.seconds), "--model", a.model]
        if a.threads is not None:
            cmd += ["--threads", str(a.threads)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=a.seconds + 120)
        lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
        r = json.loads(lines[-1]) if lines else {"error": out.stderr.strip().splitlines()[-1:] or "no output"}
        print(row(n, r), flush=True)


if __name__ == "__main__":
    main()
