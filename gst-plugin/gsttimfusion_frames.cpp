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

GstFlowReturn gst_timfusion_aggregate_frames(GstVideoAggregator* vagg, GstBuffer* outbuf) {
  GstTimFusion* self = GST_TIMFUSION(vagg);
  tfgst::State* st = self->st;
  const auto t0 = Clock::now();

  GstVideoFrame* vis = gst_video_aggregator_pad_get_prepared_frame(self->vis_pad);
  GstVideoFrame* ir = gst_video_aggregator_pad_get_prepared_frame(self->ir_pad);
  if (!vis) return gst_timfusion_fusion_failed(self, "the visible frame could not be mapped");
  auto engine = st->current_engine();
  if (!engine) return gst_timfusion_fusion_failed(self, "no model is loaded");
  timfusion::Homography h;
  uint64_t reg_generation;
  {
    std::lock_guard<std::mutex> lock(st->reg_mu);
    h = st->homography;
    reg_generation = st->reg_generation;
  }

  GstVideoFrame out;
  if (!gst_video_frame_map(&out, &vagg->info, outbuf, GST_MAP_WRITE))
    return gst_timfusion_fusion_failed(self, "the output buffer could not be mapped");

  // Same inputs as the last output (a repeated frame): reuse it.
  tfgst::State::Key key{vis->buffer,      GST_BUFFER_PTS(vis->buffer), ir ? ir->buffer : nullptr,
                        ir ? GST_BUFFER_PTS(ir->buffer) : GST_CLOCK_TIME_NONE, engine->generation(), reg_generation};
  if (gst_timfusion_in_flight_key(self, key)) {  // a repeat of a frame still on a worker
    const GstFlowReturn flow = gst_timfusion_complete_in_flight(self);
    if (flow != GST_FLOW_OK) {
      gst_video_frame_unmap(&out);
      return flow;
    }
  }
  if (st->cache && key == st->cache_key) {
    GstVideoFrame cached;
    if (gst_video_frame_map(&cached, &vagg->info, st->cache, GST_MAP_READ)) {
      gst_video_frame_copy(&out, &cached);
      gst_video_frame_unmap(&cached);
      gst_video_frame_unmap(&out);
      GST_LOG_OBJECT(self, "same input pair as the previous output: repeated it");
      return GST_FLOW_OK;
    }
  }

  const tfgst::PlaneView view = tfgst::plane_view(GST_VIDEO_FRAME_FORMAT(vis));
  cv::Mat vis_m = tfgst::wrap_plane0(vis, view);
  // Downstream may have fixed another size: fuse at the visible size, then scale.
  const bool scaled = GST_VIDEO_FRAME_WIDTH(&out) != GST_VIDEO_FRAME_WIDTH(vis) ||
                      GST_VIDEO_FRAME_HEIGHT(&out) != GST_VIDEO_FRAME_HEIGHT(vis);
  const bool tmp_fits = st->scale_tmp.size() == vis_m.size() && st->scale_tmp.type() == vis_m.type();
  cv::Mat out_m = !scaled ? tfgst::wrap_plane0(&out, view) : tmp_fits ? st->scale_tmp : cv::Mat();
  // Non-live: the frame goes to a frame worker and this thread goes on to the
  // next pair (gsttimfusion_inflight.cpp). Frames still in flight are
  // completed before a frame is fused here, so the repeat cache stays in order.
  bool on_worker = false;
  try {
    on_worker = gst_timfusion_use_frame_workers(self, *engine, vis_m.size(), scaled);
  } catch (const std::exception& e) {
    gst_video_frame_unmap(&out);
    return gst_timfusion_fusion_failed(self, e.what());
  }
  engine->note_frame_path(on_worker);
  if (!on_worker && !st->inflight.frames.empty()) {
    const GstFlowReturn flow = gst_timfusion_complete_in_flight(self);
    if (flow != GST_FLOW_OK) {
      gst_video_frame_unmap(&out);
      return flow;
    }
  }
  double infer_ms = 0;
  try {
    cv::Mat ir_m;
    if (ir) {
      const tfgst::PlaneView irv = tfgst::plane_view(GST_VIDEO_FRAME_FORMAT(ir));
      ir_m = tfgst::wrap_plane0(ir, irv);
      // Luma with the IR frame's own channel order (it may differ from vis).
      if (ir_m.channels() > 1) {
        timfusion::luma_of(ir_m, irv.order, st->ir_luma);
        ir_m = st->ir_luma;
      }
      gst_timfusion_autocal_offer(self, ir_m, vis_m, view.order, GST_BUFFER_PTS(vis->buffer));
      ir_m = timfusion::warp_ir(gst_timfusion_apply_ir_range(self, ir_m), h, vis_m.size());
    } else {
      if (st->black_ir.size() != vis_m.size()) st->black_ir = cv::Mat::zeros(vis_m.size(), CV_8UC1);
      ir_m = st->black_ir;
      if (!st->said_black_ir) {
        GST_INFO_OBJECT(self, "no IR frame for this output time: fusing with a black IR frame");
        st->said_black_ir = true;
      }
    }
    const bool discont = GST_BUFFER_FLAG_IS_SET(vis->buffer, GST_BUFFER_FLAG_DISCONT) ||
                         (ir && GST_BUFFER_FLAG_IS_SET(ir->buffer, GST_BUFFER_FLAG_DISCONT));
    if (on_worker) {
      if (view.yuv) tfgst::copy_chroma(vis, &out);  // the worker writes plane 0 only
      return gst_timfusion_start_in_flight(self, engine, outbuf, &out, out_m, ir_m, vis_m, view.order, key, discont,
                                           t0);
    }
    const auto t1 = Clock::now();
    // On the shared CPU, frames of all elements are taken earliest deadline first: this
    // frame is due one frame duration after it arrived.
    engine->fuse(ir_m, vis_m, out_m, view.order, t0 + std::chrono::nanoseconds(st->frame_duration));
    infer_ms = ms_since(t1);
    gst_timfusion_temporal_apply(self, ir_m, vis_m, view.order, out_m, engine->generation(), discont);
    if (scaled) {
      st->scale_tmp = out_m;  // reused next frame
      tfgst::scale_plane(out_m, tfgst::wrap_plane0(&out, view));
    }
  } catch (const std::exception& e) {
    gst_video_frame_unmap(&out);
    return gst_timfusion_fusion_failed(self, e.what());
  }
  if (view.yuv) scaled ? tfgst::scale_chroma(vis, &out) : tfgst::copy_chroma(vis, &out);
  gst_timfusion_frame_done(self, &out, key, infer_ms, ms_since(t0));
  gst_video_frame_unmap(&out);
  return GST_FLOW_OK;
}
