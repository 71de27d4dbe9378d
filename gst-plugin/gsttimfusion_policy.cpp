// timfusion GStreamer element: what is output when.
//
//  - EOS: both sink pads repeat their last frame after EOS, so the base class
//    never ends by itself; the element goes EOS once both pads are EOS and
//    the output has covered the last frame of each.
//  - No visible frame for an output time: nothing is output for that slot.
//  - Live and late: an output slot whose deadline (running time + latency +
//    one frame) has passed is skipped without inference, with a QoS message;
//    queued input frames too old for any slot give way to newer ones
//    (gsttimfusion_queue.cpp), so the newest pair is fused next however fast
//    the sources are.
// (A stalled live pad needs nothing here: the aggregator's timeout produces
// the output with the stalled pad's last frame.)
#include "gsttimfusion_private.h"

static GstClockTime output_start_time(GstAggregator* agg) {
  GstSegment* seg = &GST_AGGREGATOR_PAD(agg->srcpad)->segment;
  GstClockTime t = seg->position;
  if (seg->rate >= 0) {
    if (!GST_CLOCK_TIME_IS_VALID(t) || t < seg->start) t = seg->start;
  } else {
    if (!GST_CLOCK_TIME_IS_VALID(t) || t > seg->stop) t = seg->stop;
  }
  return t;
}

static bool is_gap(GstBuffer* buf) {
  return gst_buffer_get_size(buf) == 0 && GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_GAP);
}

/* ------------------------------------------------------------------------ */
/* EOS                                                                      */

static void track_input_end(GstTimFusion* self, GstVideoAggregatorPad* pad) {
  GstBuffer* buf = gst_video_aggregator_pad_get_current_buffer(pad);
  if (!buf || !GST_BUFFER_PTS_IS_VALID(buf)) return;
  GstClockTime end = GST_BUFFER_PTS(buf) + (GST_BUFFER_DURATION_IS_VALID(buf) ? GST_BUFFER_DURATION(buf) : 0);
  GstAggregatorPad* apad = GST_AGGREGATOR_PAD(pad);
  GST_OBJECT_LOCK(apad);
  GstClockTime rt = gst_segment_to_running_time(&apad->segment, GST_FORMAT_TIME, end);
  GST_OBJECT_UNLOCK(apad);
  GstClockTime& cur = self->st->inputs_end;
  if (GST_CLOCK_TIME_IS_VALID(rt) && (!GST_CLOCK_TIME_IS_VALID(cur) || rt > cur)) cur = rt;
}

// Both pads ended and the output has covered their last frames.
static bool all_inputs_done(GstTimFusion* self) {
  if (!gst_aggregator_pad_is_eos(GST_AGGREGATOR_PAD(self->vis_pad)) ||
      !gst_aggregator_pad_is_eos(GST_AGGREGATOR_PAD(self->ir_pad)))
    return false;
  GstAggregator* agg = GST_AGGREGATOR(self);
  GstSegment* seg = &GST_AGGREGATOR_PAD(agg->srcpad)->segment;
  if (!GST_CLOCK_TIME_IS_VALID(seg->position) || seg->rate < 0) return true;
  const GstClockTime rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, seg->position);
  const GstClockTime end = self->st->inputs_end;
  return !GST_CLOCK_TIME_IS_VALID(rt) || !GST_CLOCK_TIME_IS_VALID(end) || rt >= end;
}

GstFlowReturn gst_timfusion_aggregate(GstAggregator* agg, gboolean timeout) {
  GstTimFusion* self = GST_TIMFUSION(agg);
  if (all_inputs_done(self)) {
    GST_DEBUG_OBJECT(self, "both inputs ended and their last frames are out: EOS");
    const GstFlowReturn flow = gst_timfusion_drain_in_flight(self);  // the frames still on workers go first
    return flow != GST_FLOW_OK ? flow : GST_FLOW_EOS;
  }
  const GstFlowReturn flow = gst_timfusion_parent_agg_class()->aggregate(agg, timeout);
  // Frames left on the workers are pushed by the next output's finish_buffer. When this call made
  // no output (a dropped late frame, a slot without a visible frame) and no next pair is queued,
  // none may come soon: push them now rather than hold them back.
  if (!self->st->inflight.frames.empty() &&
      (flow == GST_FLOW_EOS || ((flow == GST_FLOW_OK || flow == GST_AGGREGATOR_FLOW_NEED_DATA) &&
                                !gst_timfusion_next_inputs_queued(self)))) {
    const GstFlowReturn drained = gst_timfusion_drain_in_flight(self);
    if (drained != GST_FLOW_OK) return drained;
  }
  return flow;
}

// Flushing seek: the output timeline restarts.
GstFlowReturn gst_timfusion_flush(GstAggregator* agg) {
  GstTimFusion* self = GST_TIMFUSION(agg);
  self->st->inputs_end = GST_CLOCK_TIME_NONE;
  gst_timfusion_discard_in_flight(self);  // frames of the old timeline are not pushed
  self->st->forget_past();
  return gst_timfusion_parent_agg_class()->flush(agg);
}

/* ------------------------------------------------------------------------ */
/* Late output slots (live)                                                 */

// Live only: the pipeline's running time now, or GST_CLOCK_TIME_NONE.
static GstClockTime running_time_now(GstTimFusion* self) {
  GstClock* clock = gst_element_get_clock(GST_ELEMENT(self));
  if (!clock) return GST_CLOCK_TIME_NONE;
  const GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  const GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
  return now < base ? GST_CLOCK_TIME_NONE : now - base;
}

// Live only: has this output slot's deadline passed already?
static bool output_too_late(GstTimFusion* self, GstClockTime start, GstClockTime* jitter) {
  GstAggregator* agg = GST_AGGREGATOR(self);
  const GstClockTime latency = gst_aggregator_get_latency(agg);
  if (!GST_CLOCK_TIME_IS_VALID(latency) || !GST_CLOCK_TIME_IS_VALID(start)) return false;
  const GstClockTime now_rt = running_time_now(self);
  if (!GST_CLOCK_TIME_IS_VALID(now_rt)) return false;
  GstSegment* seg = &GST_AGGREGATOR_PAD(agg->srcpad)->segment;
  const GstClockTime start_rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, start);
  if (!GST_CLOCK_TIME_IS_VALID(start_rt)) return false;
  const GstClockTime deadline = start_rt + latency + self->st->frame_duration;
  if (now_rt <= deadline) return false;
  *jitter = now_rt - deadline;
  return true;
}

// Same deadline as output_too_late, for the last slot a frame could be in.
GstClockTime gst_timfusion_stale_before(GstTimFusion* self) {
  const GstClockTime latency = gst_aggregator_get_latency(GST_AGGREGATOR(self));
  if (!GST_CLOCK_TIME_IS_VALID(latency)) return GST_CLOCK_TIME_NONE;  // not live
  const GstClockTime now_rt = running_time_now(self);
  const GstClockTime margin = latency + self->st->frame_duration;
  if (!GST_CLOCK_TIME_IS_VALID(now_rt) || now_rt <= margin) return GST_CLOCK_TIME_NONE;
  return now_rt - margin;
}

// The skipped slot, as a QoS message (processed/dropped stats included).
static void post_skipped_qos(GstTimFusion* self, GstClockTime start, GstClockTime jitter) {
  tfgst::State* st = self->st;
  GstSegment* seg = &GST_AGGREGATOR_PAD(GST_AGGREGATOR(self)->srcpad)->segment;
  GstMessage* msg =
      gst_message_new_qos(GST_OBJECT(self), TRUE, gst_segment_to_running_time(seg, GST_FORMAT_TIME, start),
                          gst_segment_to_stream_time(seg, GST_FORMAT_TIME, start), start, st->frame_duration);
  gst_message_set_qos_values(msg, static_cast<gint64>(jitter), 1.0, 1000000);
  gst_message_set_qos_stats(msg, GST_FORMAT_BUFFERS, st->processed, st->dropped);
  gst_element_post_message(GST_ELEMENT(self), msg);
}

/* ------------------------------------------------------------------------ */
/* Whether this output slot gets a frame                                    */

GstFlowReturn gst_timfusion_create_output_buffer(GstVideoAggregator* vagg, GstBuffer** outbuf) {
  GstTimFusion* self = GST_TIMFUSION(vagg);
  tfgst::State* st = self->st;
  GstAggregator* agg = GST_AGGREGATOR(vagg);
  *outbuf = nullptr;
  track_input_end(self, self->vis_pad);
  track_input_end(self, self->ir_pad);

  GstBuffer* vis = gst_video_aggregator_pad_get_current_buffer(self->vis_pad);
  if (!vis || is_gap(vis)) {
    GST_LOG_OBJECT(self, "no visible frame for this output time: nothing to output");
    return GST_FLOW_OK;
  }
  const GstClockTime start = output_start_time(agg);
  GstClockTime jitter = 0;
  if (output_too_late(self, start, &jitter)) {
    ++st->dropped;
    GST_DEBUG_OBJECT(self, "output at %" GST_TIME_FORMAT " is %" GST_TIME_FORMAT " late: skipped", GST_TIME_ARGS(start),
                     GST_TIME_ARGS(jitter));
    post_skipped_qos(self, start, jitter);
    return GST_FLOW_OK;
  }
  return gst_timfusion_parent_vagg_class()->create_output_buffer(vagg, outbuf);
}
