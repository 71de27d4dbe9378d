// timfusion GStreamer element: one output frame. Maps the prepared IR and
// visible frames, warps the IR onto the visible grid (black IR when there is
// none), runs the model (here, or on a frame worker when not live), filters
// it over time (gsttimfusion_temporal.cpp), copies the visible chroma, keeps the result for repeats of the same input pair,
// and measures the time for the latency.
#include <chrono>
#include <exception>

#include "gsttimfusion_private.h"
#include "timfusion/color.h"
#include "timfusion_enums.h"
#include "timfusion_formats.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

void gst_timfusion_report_latency(GstTimFusion* self) {
  GstClockTime processing;
  if (!self->st->processing.take_report(&processing)) return;
  const GstClockTime total = self->st->frame_duration + processing;
  GST_DEBUG_OBJECT(self, "reporting latency %" GST_TIME_FORMAT " (one frame + processing %" GST_TIME_FORMAT ")",
                   GST_TIME_ARGS(total), GST_TIME_ARGS(processing));
  gst_aggregator_set_latency(GST_AGGREGATOR(self), total, total);
}

cv::Mat gst_timfusion_apply_ir_range(GstTimFusion* self, const cv::Mat& ir) {
  tfgst::State* st = self->st;
  if (ir.type() != CV_16UC1) return ir;
  int mode, lo, hi;
  {
    std::lock_guard<std::mutex> lock(st->props_mu);
    mode = st->ir_range_mode;
    lo = st->ir_range_min;
    hi = st->ir_range_max;
  }
  if (mode == GST_TIMFUSION_IR_RANGE_FULL) return ir;
  // The maths is the core's (timfusion/ir_range.h); here only which range.
  timfusion::IrRange r{static_cast<double>(lo), static_cast<double>(hi)};
  if (mode == GST_TIMFUSION_IR_RANGE_AUTO) r = st->ir_auto.update(timfusion::robust_ir_range(ir));
  timfusion::stretch_ir(ir, r, st->ir_stretched);
  return st->ir_stretched;
}

GstFlowReturn gst_timfusion_fusion_failed(GstTimFusion* self, const char* what) {
  GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Fusion failed: %s", what), (nullptr));
  return GST_FLOW_ERROR;
}

void gst_timfusion_frame_done(GstTimFusion* self, const GstVideoFrame* out, const tfgst::FrameKey& key,
                              double infer_ms, double processing_ms) {
  tfgst::State* st = self->st;
  // Keep a copy for repeats of the same pair.
  if (!st->cache) st->cache = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&out->info), nullptr);
  GstVideoFrame cached;
  if (st->cache && gst_video_frame_map(&cached, &out->info, st->cache, GST_MAP_WRITE)) {
    gst_video_frame_copy(&cached, out);
    gst_video_frame_unmap(&cached);
    st->cache_key = key;
  }
  ++st->processed;
  st->inference.add(infer_ms);
  st->processing.add(processing_ms);
  gst_timfusion_report_latency(self);
}

namespace {

// What one output frame is made of: the prepared input frames, the model and
// the homography in use, and the key that recognises a repeat of the pair.
struct FrameInputs {
  GstVideoFrame* vis = nullptr;
  GstVideoFrame* ir = nullptr;  // none: no IR frame for this output time (black IR)
  std::shared_ptr<tfgst::Engine> engine;
  timfusion::Homography h;
  tfgst::FrameKey key;
};

// Where the fused plane 0 goes: the output frame's own plane, or (output
// scaled) a frame at the visible size that is scaled into it afterwards.
struct FrameTarget {
  tfgst::PlaneView view;  // the visible (and output) format's plane 0
  cv::Mat vis_m;          // the visible frame's plane 0
  bool scaled = false;    // the output has another size than the visible frame
  cv::Mat out_m;          // where the network writes (allocated by it when empty)
};

// The prepared frames, the engine and the active homography; an element error
// when the visible frame or the model is missing.
GstFlowReturn get_inputs(GstTimFusion* self, FrameInputs* in) {
  tfgst::State* st = self->st;
  in->vis = gst_video_aggregator_pad_get_prepared_frame(self->vis_pad);
  in->ir = gst_video_aggregator_pad_get_prepared_frame(self->ir_pad);
  if (!in->vis) return gst_timfusion_fusion_failed(self, "the visible frame could not be mapped");
  in->engine = st->current_engine();
  if (!in->engine) return gst_timfusion_fusion_failed(self, "no model is loaded");
  uint64_t reg_generation;
  {
    std::lock_guard<std::mutex> lock(st->reg_mu);
    in->h = st->homography;
    reg_generation = st->reg_generation;
  }
  const GstVideoFrame* vis = in->vis;
  const GstVideoFrame* ir = in->ir;
  in->key = tfgst::FrameKey{vis->buffer,      GST_BUFFER_PTS(vis->buffer), ir ? ir->buffer : nullptr,
                            ir ? GST_BUFFER_PTS(ir->buffer) : GST_CLOCK_TIME_NONE, in->engine->generation(),
                            reg_generation};
  return GST_FLOW_OK;
}

// Same inputs as the last output (a repeated frame): reuse it. TRUE when out
// is done: copied from the repeat cache (*flow OK), or *flow is the error of
// completing the frame in flight it repeats.
bool repeat_last_output(GstTimFusion* self, const GstVideoInfo* info, const tfgst::FrameKey& key,
                        GstVideoFrame* out, GstFlowReturn* flow) {
  tfgst::State* st = self->st;
  if (gst_timfusion_in_flight_key(self, key)) {  // a repeat of a frame still on a worker
    *flow = gst_timfusion_complete_in_flight(self);
    if (*flow != GST_FLOW_OK) return true;
  }
  if (!st->cache || !(key == st->cache_key)) return false;
  GstVideoFrame cached;
  if (!gst_video_frame_map(&cached, info, st->cache, GST_MAP_READ)) return false;
  gst_video_frame_copy(out, &cached);
  gst_video_frame_unmap(&cached);
  GST_LOG_OBJECT(self, "same input pair as the previous output: repeated it");
  *flow = GST_FLOW_OK;
  return true;
}

FrameTarget frame_target(tfgst::State* st, GstVideoFrame* vis, GstVideoFrame* out) {
  FrameTarget t;
  t.view = tfgst::plane_view(GST_VIDEO_FRAME_FORMAT(vis));
  t.vis_m = tfgst::wrap_plane0(vis, t.view);
  // Downstream may have fixed another size: fuse at the visible size, then scale.
  t.scaled = GST_VIDEO_FRAME_WIDTH(out) != GST_VIDEO_FRAME_WIDTH(vis) ||
             GST_VIDEO_FRAME_HEIGHT(out) != GST_VIDEO_FRAME_HEIGHT(vis);
  const bool tmp_fits = st->scale_tmp.size() == t.vis_m.size() && st->scale_tmp.type() == t.vis_m.type();
  t.out_m = !t.scaled ? tfgst::wrap_plane0(out, t.view) : tmp_fits ? st->scale_tmp : cv::Mat();
  return t;
}

// Non-live: the frame goes to a frame worker (*on_worker) and this thread goes
// on to the next pair (gsttimfusion_inflight.cpp). Frames still in flight are
// completed before a frame is fused here, so the repeat cache stays in order.
GstFlowReturn choose_path(GstTimFusion* self, tfgst::Engine& engine, const FrameTarget& t, bool* on_worker) {
  try {
    *on_worker = gst_timfusion_use_frame_workers(self, engine, t.vis_m.size(), t.scaled);
  } catch (const std::exception& e) {
    return gst_timfusion_fusion_failed(self, e.what());
  }
  engine.note_frame_path(*on_worker);
  if (!*on_worker && !self->st->inflight.frames.empty()) return gst_timfusion_complete_in_flight(self);
  return GST_FLOW_OK;
}

// The IR as the network takes it: luma (with the IR frame's own channel
// order, which may differ from vis), offered to auto-calibrate, through
// ir-range, warped onto the visible grid. Without an IR frame: black IR.
// Throws timfusion::Error / cv::Exception.
cv::Mat prepare_ir(GstTimFusion* self, const FrameInputs& in, const FrameTarget& t) {
  tfgst::State* st = self->st;
  if (!in.ir) {
    if (st->black_ir.size() != t.vis_m.size()) st->black_ir = cv::Mat::zeros(t.vis_m.size(), CV_8UC1);
    if (!st->said_black_ir) {
      GST_INFO_OBJECT(self, "no IR frame for this output time: fusing with a black IR frame");
      st->said_black_ir = true;
    }
    return st->black_ir;
  }
  const tfgst::PlaneView irv = tfgst::plane_view(GST_VIDEO_FRAME_FORMAT(in.ir));
  cv::Mat ir_m = tfgst::wrap_plane0(in.ir, irv);
  if (ir_m.channels() > 1) {
    timfusion::luma_of(ir_m, irv.order, st->ir_luma);
    ir_m = st->ir_luma;
  }
  gst_timfusion_autocal_offer(self, ir_m, t.vis_m, t.view.order, GST_BUFFER_PTS(in.vis->buffer));
  return timfusion::warp_ir(gst_timfusion_apply_ir_range(self, ir_m), in.h, t.vis_m.size());
}

// Fuses here: the network (on the shared CPU, frames of all elements are taken
// earliest deadline first: this frame is due one frame duration after it
// arrived), the temporal filter, then the scaling to the output size.
// Returns the network's time in ms. Throws timfusion::Error / cv::Exception.
double fuse_here(GstTimFusion* self, tfgst::Engine& engine, const cv::Mat& ir_m, FrameTarget& t,
                 GstVideoFrame* out, bool discont, Clock::time_point t0) {
  tfgst::State* st = self->st;
  const auto t1 = Clock::now();
  engine.fuse(ir_m, t.vis_m, t.out_m, t.view.order, t0 + std::chrono::nanoseconds(st->frame_duration));
  const double infer_ms = ms_since(t1);
  gst_timfusion_temporal_apply(self, ir_m, t.vis_m, t.view.order, t.out_m, engine.generation(), discont);
  if (t.scaled) {
    st->scale_tmp = t.out_m;  // reused next frame
    tfgst::scale_plane(t.out_m, tfgst::wrap_plane0(out, t.view));
  }
  return infer_ms;
}

}  // namespace

GstFlowReturn gst_timfusion_aggregate_frames(GstVideoAggregator* vagg, GstBuffer* outbuf) {
  GstTimFusion* self = GST_TIMFUSION(vagg);
  const auto t0 = Clock::now();
  FrameInputs in;
  GstFlowReturn flow = get_inputs(self, &in);
  if (flow != GST_FLOW_OK) return flow;

  GstVideoFrame out;
  if (!gst_video_frame_map(&out, &vagg->info, outbuf, GST_MAP_WRITE))
    return gst_timfusion_fusion_failed(self, "the output buffer could not be mapped");
  if (repeat_last_output(self, &vagg->info, in.key, &out, &flow)) {
    gst_video_frame_unmap(&out);
    return flow;
  }
  FrameTarget t = frame_target(self->st, in.vis, &out);
  bool on_worker = false;
  flow = choose_path(self, *in.engine, t, &on_worker);
  if (flow != GST_FLOW_OK) {
    gst_video_frame_unmap(&out);
    return flow;
  }
  double infer_ms = 0;
  try {
    const cv::Mat ir_m = prepare_ir(self, in, t);
    const bool discont = GST_BUFFER_FLAG_IS_SET(in.vis->buffer, GST_BUFFER_FLAG_DISCONT) ||
                         (in.ir && GST_BUFFER_FLAG_IS_SET(in.ir->buffer, GST_BUFFER_FLAG_DISCONT));
    if (on_worker) {
      if (t.view.yuv) tfgst::copy_chroma(in.vis, &out);  // the worker writes plane 0 only
      return gst_timfusion_start_in_flight(self, in.engine, outbuf, &out, t.out_m, ir_m, t.vis_m, t.view.order,
                                           in.key, discont, t0);
    }
    infer_ms = fuse_here(self, *in.engine, ir_m, t, &out, discont, t0);
  } catch (const std::exception& e) {
    gst_video_frame_unmap(&out);
    return gst_timfusion_fusion_failed(self, e.what());
  }
  if (t.view.yuv) t.scaled ? tfgst::scale_chroma(in.vis, &out) : tfgst::copy_chroma(in.vis, &out);
  gst_timfusion_frame_done(self, &out, in.key, infer_ms, ms_since(t0));
  gst_video_frame_unmap(&out);
  return GST_FLOW_OK;
}
