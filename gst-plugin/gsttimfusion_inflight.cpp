// timfusion GStreamer element: frames in parallel (non-live pipelines).
//
// With threads > 1 on the CPU, a non-live pipeline fuses whole frames on
// separate workers (timfusion::FuserPool, see fuser_pool.h for why this beats
// splitting one frame over the cores), and a live one keeps fusing one frame
// at a time over the intra-op threads: frames in flight would add up to a
// frame of latency, and a live camera never queues frames ahead anyway.
//
// aggregate_frames starts a frame on a worker and returns; the base class then
// hands its buffer to finish_buffer (below), which pushes the frames that are
// done, in order, and returns while a worker is free and the next input pair
// is already queued, so the streaming thread can start that one. When the next
// inputs are not there yet (an application that waits for each output before
// it pushes the next input), it waits for the frame instead: no frame is ever
// held back waiting for input that will not come.
//
// Everything runs on the streaming thread, except discard (flush, state
// changes), which runs while the streaming task is stopped.
#include <chrono>
#include <memory>

#include "gsttimfusion_private.h"
#include "timfusion_formats.h"

namespace {

using Clock = std::chrono::steady_clock;

// How long finish_buffer sleeps between looks at the sink pads while it waits
// for a frame (the base class has no signal for "a buffer arrived" that a
// subclass can wait on).
constexpr auto kInputPoll = std::chrono::microseconds(250);

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Unmaps and drops a frame that will not be pushed.
void drop(tfgst::State* st, std::unique_ptr<tfgst::InFlightFrame> f) {
  if (!f->completed) gst_video_frame_unmap(&f->out);
  if (f->adopted) gst_buffer_unref(f->outbuf);
  st->inflight.retire(std::move(f));
}

// Waits for f's worker, then unmaps f and keeps a copy for repeats. f is the
// oldest frame not completed yet (workers retire frames in start order). On
// failure f is dropped and an element error posted.
GstFlowReturn complete(GstTimFusion* self, tfgst::InFlightFrame* f) {
  tfgst::State* st = self->st;
  if (f->completed) return GST_FLOW_OK;
  double infer_ms = 0;
  try {
    infer_ms = f->engine->frame_workers()->finish_oldest();
    // In output order, as in place (gsttimfusion_frames.cpp).
    cv::Mat fused = tfgst::wrap_plane0(&f->out, tfgst::plane_view(GST_VIDEO_FRAME_FORMAT(&f->out)));
    gst_timfusion_temporal_apply(self, f->ir, f->vis, f->order, fused, f->key.engine, f->discont);
  } catch (const std::exception& e) {
    drop(st, st->inflight.take(f));
    return gst_timfusion_fusion_failed(self, e.what());
  }
  gst_timfusion_frame_done(self, &f->out, f->key, infer_ms, ms_since(f->started));
  gst_video_frame_unmap(&f->out);
  f->completed = true;
  return GST_FLOW_OK;
}

// Pushes the oldest frame (completed, adopted) through the base class.
GstFlowReturn push_oldest(GstTimFusion* self) {
  tfgst::State* st = self->st;
  std::unique_ptr<tfgst::InFlightFrame> f = st->inflight.pop_oldest();
  GstBuffer* buf = f->outbuf;
  st->inflight.retire(std::move(f));
  return gst_timfusion_parent_agg_class()->finish_buffer(GST_AGGREGATOR(self), buf);
}

}  // namespace

bool gst_timfusion_next_inputs_queued(GstTimFusion* self) {
  for (GstVideoAggregatorPad* pad : {self->vis_pad, self->ir_pad}) {
    GstAggregatorPad* apad = GST_AGGREGATOR_PAD(pad);
    if (!gst_aggregator_pad_has_buffer(apad) && !gst_aggregator_pad_is_eos(apad)) return false;
  }
  return true;
}

bool gst_timfusion_use_frame_workers(GstTimFusion* self, tfgst::Engine& engine, cv::Size size, bool scaled) {
  if (!engine.frame_workers() || scaled || !self->st->parallel_frames) return false;
  // Live: one frame at a time, over the intra-op threads (lowest latency).
  if (GST_CLOCK_TIME_IS_VALID(gst_aggregator_get_latency(GST_AGGREGATOR(self)))) return false;
  return engine.frame_workers_for(size) != nullptr;
}

GstFlowReturn gst_timfusion_start_in_flight(GstTimFusion* self, std::shared_ptr<tfgst::Engine> engine,
                                            GstBuffer* outbuf, GstVideoFrame* out, const cv::Mat& out_plane,
                                            const cv::Mat& ir, const cv::Mat& vis, timfusion::ChannelOrder order,
                                            const tfgst::FrameKey& key, bool discont, Clock::time_point started) {
  tfgst::State* st = self->st;
  // Frames of a replaced model finish first: the new engine has its own workers.
  if (!st->inflight.frames.empty() && st->inflight.frames.back()->engine != engine) {
    const GstFlowReturn flow = gst_timfusion_complete_in_flight(self);
    if (flow != GST_FLOW_OK) return flow;
  }
  std::unique_ptr<tfgst::InFlightFrame> f = st->inflight.take_spare();
  // Copies into memory kept from earlier frames: the inputs are unmapped when
  // aggregate_frames returns.
  ir.copyTo(f->ir);
  vis.copyTo(f->vis);
  f->outbuf = outbuf;
  f->out = *out;  // the mapping moves here; unmapped when completed
  f->key = key;
  f->order = order;
  f->discont = discont;
  f->engine = engine;
  f->started = started;
  try {
    engine->frame_workers()->start(f->ir, f->vis, out_plane, order);
  } catch (const std::exception& e) {
    gst_video_frame_unmap(&f->out);
    st->inflight.retire(std::move(f));
    return gst_timfusion_fusion_failed(self, e.what());
  }
  st->inflight.frames.push_back(std::move(f));
  return GST_FLOW_OK;
}

bool gst_timfusion_in_flight_key(GstTimFusion* self, const tfgst::FrameKey& key) {
  const auto& frames = self->st->inflight.frames;
  return !frames.empty() && frames.back()->key == key;
}

GstFlowReturn gst_timfusion_complete_in_flight(GstTimFusion* self) {
  for (const auto& f : self->st->inflight.frames) {
    const GstFlowReturn flow = complete(self, f.get());
    if (flow != GST_FLOW_OK) return flow;  // f is gone from frames: stop iterating at once
  }
  return GST_FLOW_OK;
}

GstFlowReturn gst_timfusion_drain_in_flight(GstTimFusion* self) {
  auto& frames = self->st->inflight.frames;
  while (!frames.empty()) {
    GstFlowReturn flow = complete(self, frames.front().get());
    if (flow != GST_FLOW_OK) return flow;
    flow = push_oldest(self);
    if (flow != GST_FLOW_OK) return flow;
  }
  return GST_FLOW_OK;
}

void gst_timfusion_discard_in_flight(GstTimFusion* self) {
  tfgst::State* st = self->st;
  auto& frames = st->inflight.frames;
  while (!frames.empty()) {
    std::unique_ptr<tfgst::InFlightFrame> f = st->inflight.pop_oldest();
    if (!f->completed) {
      try {  // the worker may still be writing into the buffer
        f->engine->frame_workers()->finish_oldest();
      } catch (const std::exception&) {
        // dropped anyway
      }
    }
    drop(st, std::move(f));
  }
}

GstFlowReturn gst_timfusion_finish_buffer(GstAggregator* agg, GstBuffer* buffer) {
  GstTimFusion* self = GST_TIMFUSION(agg);
  auto& frames = self->st->inflight.frames;
  const bool in_flight = !frames.empty() && frames.back()->outbuf == buffer && !frames.back()->adopted;
  if (!in_flight) {
    // A frame fused in place (or a repeat): the frames before it go first.
    const GstFlowReturn flow = gst_timfusion_drain_in_flight(self);
    if (flow != GST_FLOW_OK) {
      gst_buffer_unref(buffer);
      return flow;
    }
    return gst_timfusion_parent_agg_class()->finish_buffer(agg, buffer);
  }
  frames.back()->adopted = true;

  while (!frames.empty()) {
    tfgst::InFlightFrame* oldest = frames.front().get();
    timfusion::FuserPool* workers = oldest->engine->frame_workers();
    if (!oldest->completed) {
      // Leave it running if the next frame can start now: a worker is free
      // for it and its inputs are queued. Otherwise wait for this one, and
      // keep looking at the inputs while waiting.
      const bool worker_free = workers->in_flight() < workers->capacity();
      while (!workers->oldest_done()) {
        if (worker_free && gst_timfusion_next_inputs_queued(self)) return GST_FLOW_OK;
        workers->wait_oldest(kInputPoll);
      }
      const GstFlowReturn flow = complete(self, oldest);
      if (flow != GST_FLOW_OK) return flow;
    }
    const GstFlowReturn flow = push_oldest(self);
    if (flow != GST_FLOW_OK) return flow;
  }
  return GST_FLOW_OK;
}
