// timfusion: the element's sink pads ("ir", "vis"): GstVideoAggregatorPads
// whose repeat-after-eos defaults to TRUE (DEFAULT_PAD_REPEAT_AFTER_EOS), so
// that gst-inspect-1.0 shows the default the pads really have. Every other pad
// property (max-last-buffer-repeat, zorder, ...) is the base class's, reachable
// from gst-launch as timfusion ir::max-last-buffer-repeat=... (GstChildProxy).
#pragma once

#include <gst/video/gstvideoaggregator.h>

G_BEGIN_DECLS

// When one stream ends, its last frame keeps being fused with the other stream.
#define DEFAULT_PAD_REPEAT_AFTER_EOS TRUE

#define GST_TYPE_TIMFUSION_PAD (gst_timfusion_pad_get_type())
G_DECLARE_FINAL_TYPE(GstTimFusionPad, gst_timfusion_pad, GST, TIMFUSION_PAD, GstVideoAggregatorPad)

G_END_DECLS
