// timfusion GStreamer element: live sink pads when the sources are faster
// than the element.
//
// GstAggregator lets a live sink pad queue two frames (or as much time as its
// "latency" property plus the upstream latency) and then blocks the source;
// it takes one queued frame per pad per output slot. With sources faster
// than inference (320x240 at 1000 fps, 5 ms a frame) the queues filled during
// each inference, the sources were held back, and the fused frames fell ever
// further behind: 3 s of video played in 19-28 s (issue 27). So a frame
// arriving while the oldest queued one is already too old for any output slot
// (gst_timfusion_stale_before) replaces it instead of waiting behind it:
// the sources run on, and the next fused pair is the newest.
//
// Measured on 2 shared cores (load ~7), 3 s of 320x240 live video, ivif-rt,
// threads=1: 1000 fps 22-28 s before, 3.0 s after (compositor 3.0 s on the
// same machine at the same time); 500 fps 14-23 s before, 3.0 s after.
#include "gsttimfusion_private.h"

namespace {
GstPadChainFunction base_chain = nullptr;  // GstAggregatorPad's (the same for every sink pad)

GstClockTime end_running_time(GstAggregatorPad* pad, GstBuffer* buf) {
  if (!GST_BUFFER_PTS_IS_VALID(buf)) return GST_CLOCK_TIME_NONE;
  const GstClockTime end = GST_BUFFER_PTS(buf) + (GST_BUFFER_DURATION_IS_VALID(buf) ? GST_BUFFER_DURATION(buf) : 0);
  GST_OBJECT_LOCK(pad);
  const GstClockTime rt = gst_segment_to_running_time(&pad->segment, GST_FORMAT_TIME, end);
  GST_OBJECT_UNLOCK(pad);
  return rt;
}

// Live: a frame arriving while the queue's oldest is already too old for any
// output slot replaces it (the base class would block the source instead).
GstFlowReturn chain_dropping_stale(GstPad* pad, GstObject* parent, GstBuffer* buffer) {
  GstTimFusion* self = GST_TIMFUSION(parent);
  GstAggregatorPad* apad = GST_AGGREGATOR_PAD(pad);
  const GstClockTime limit = gst_timfusion_stale_before(self);  // (takes locks of its own: not under ours)
  if (GST_CLOCK_TIME_IS_VALID(limit)) {
    // GstVideoAggregator peeks and then drops a pad's head under the element's
    // object lock: taking it here keeps a frame from being dropped twice.
    GST_OBJECT_LOCK(self);
    while (GstBuffer* head = gst_aggregator_pad_peek_buffer(apad)) {
      const GstClockTime end = end_running_time(apad, head);
      gst_buffer_unref(head);
      if (!GST_CLOCK_TIME_IS_VALID(end) || end >= limit) break;
      gst_aggregator_pad_drop_buffer(apad);
    }
    GST_OBJECT_UNLOCK(self);
  }
  return base_chain(pad, parent, buffer);
}

}  // namespace

void gst_timfusion_wrap_chain(GstPad* pad) {
  if (!base_chain) base_chain = GST_PAD_CHAINFUNC(pad);
  gst_pad_set_chain_function(pad, chain_dropping_stale);
}
