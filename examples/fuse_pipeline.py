#!/usr/bin/python3
"""Fuses an infrared + visible image pair with the timfusion GStreamer element,
from Python (PyGObject: Debian's python3-gi and gir1.2-gstreamer-1.0).

    fuse_pipeline.py IR.png VIS.png OUT.png [MODEL]

The same pipeline works for cameras: replace each multifilesrc ! pngdec by a
camera source (see pipelines/). Exit status 0 on success, 1 on a pipeline error.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def fuse(ir_png, vis_png, out_png, model=""):
    Gst.init(None)
    pipeline = Gst.parse_launch(
        "timfusion name=f ! videoconvert ! pngenc ! filesink name=out "
        "multifilesrc name=ir index=0 stop-index=0 caps=image/png,framerate=1/1 ! pngdec ! videoconvert ! f.ir "
        "multifilesrc name=vis index=0 stop-index=0 caps=image/png,framerate=1/1 ! pngdec ! videoconvert ! f.vis")
    pipeline.get_by_name("ir").set_property("location", ir_png)
    pipeline.get_by_name("vis").set_property("location", vis_png)
    pipeline.get_by_name("out").set_property("location", out_png)
    fusion = pipeline.get_by_name("f")
    if model:
        fusion.set_property("model", model)  # a .safetensors file or a shipped model name
    # Pad properties are reachable too, e.g. how long the last IR frame may stand in:
    fusion.get_static_pad("ir").set_property("max-last-buffer-repeat", Gst.SECOND)

    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    ok = True
    while True:
        msg = bus.timed_pop_filtered(
            Gst.CLOCK_TIME_NONE, Gst.MessageType.ELEMENT | Gst.MessageType.ERROR | Gst.MessageType.EOS)
        if msg.type == Gst.MessageType.ERROR:
            err, _debug = msg.parse_error()
            print(f"error from {msg.src.get_name()}: {err.message}", file=sys.stderr)
            ok = False
            break
        if msg.type == Gst.MessageType.EOS:
            break
        s = msg.get_structure()
        if s is not None and s.get_name() == "timfusion-model-loaded":
            print(f"model {s.get_string('model')} loaded on {s.get_string('device')} "
                  f"in {s.get_double('load-ms')[1]:.0f} ms")
    if ok:
        print(f"fused {out_png} with {fusion.get_property('actual-model')} "
              f"({fusion.get_property('inference-ms'):.1f} ms per frame)")
    pipeline.set_state(Gst.State.NULL)
    return ok


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    sys.exit(0 if fuse(*sys.argv[1:]) else 1)
