// timfusion: the "timfusion" GStreamer element.
//
// A GstVideoAggregator with two ALWAYS sink pads, "ir" (thermal) and "vis"
// (visible), and one src pad. Each output frame is the TIM network's fusion
// of the IR frame and the visible frame selected for that output time; the
// output has the visible pad's format, size and framerate. The aggregator
// base class does the time alignment (live sync on the output framerate,
// last-frame repeat, QoS, timeouts); this element maps the frames, hands
// them to the core (timfusion::Fuser), and reports its latency.
#pragma once

#include <gst/gst.h>
#include <gst/video/gstvideoaggregator.h>

G_BEGIN_DECLS

#define GST_TYPE_TIMFUSION (gst_timfusion_get_type())
G_DECLARE_FINAL_TYPE(GstTimFusion, gst_timfusion, GST, TIMFUSION, GstVideoAggregator)

GST_ELEMENT_REGISTER_DECLARE(timfusion);

G_END_DECLS
