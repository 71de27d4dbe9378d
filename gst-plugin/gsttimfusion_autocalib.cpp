// timfusion GStreamer element: the auto-calibrate mode. With auto-calibrate
// on, the first auto-calibrate-seconds of frame pairs after READY->PAUSED (or
// after the property is switched on while running) are handed to a
// background calibration (timfusion_autocalib.h). Its result becomes the
// active homography (the next frame uses it) and is posted as an element
// message "timfusion-calibration"; a refusal or failure is posted as a
// warning (and as the same message with success=FALSE). The streaming thread
// only copies two luma planes per sampled frame.
#include <exception>
#include <sstream>

#include "gsttimfusion_private.h"

namespace {

void post_result(GstTimFusion* self, const timfusion::Calibration* c, const std::string& error, int frames) {
  GstStructure* s;
  if (c) {
    {
      std::lock_guard<std::mutex> lock(self->st->reg_mu);
      self->st->homography = c->h;
      ++self->st->reg_generation;
    }
    std::ostringstream h;
    h.precision(10);
    for (int i = 0; i < 9; ++i) h << (i ? "," : "") << c->h.m[i];
    // One field per line: name, type, value.
    s = gst_structure_new("timfusion-calibration",
                          "success", G_TYPE_BOOLEAN, TRUE,
                          "method", G_TYPE_STRING, c->method.c_str(),
                          "ir-homography", G_TYPE_STRING, h.str().c_str(),
                          "correlation", G_TYPE_DOUBLE, c->correlation,
                          "distinctness", G_TYPE_DOUBLE, c->distinctness,
                          "residual-px", G_TYPE_DOUBLE, c->residual_px,
                          "spread-px", G_TYPE_DOUBLE, c->spread_px,
                          "confidence", G_TYPE_DOUBLE, c->confidence,
                          "frames", G_TYPE_INT, frames, nullptr);
    GST_INFO_OBJECT(self, "auto-calibration: ir-homography=%s (correlation %.3f, residual %.2f px)", h.str().c_str(),
                    c->correlation, c->residual_px);
  } else {
    s = gst_structure_new("timfusion-calibration", "success", G_TYPE_BOOLEAN, FALSE, "error", G_TYPE_STRING,
                          error.c_str(), "frames", G_TYPE_INT, frames, nullptr);
    GST_ELEMENT_WARNING(self, STREAM, FAILED, ("Auto-calibration failed: %s", error.c_str()),
                        ("keeping the current IR homography"));
  }
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

}  // namespace

void gst_timfusion_autocal_arm(GstTimFusion* self) {
  tfgst::State* st = self->st;
  bool on;
  double seconds;
  int frames;
  std::string board_text;
  {
    std::lock_guard<std::mutex> lock(st->props_mu);
    on = st->auto_calibrate;
    seconds = st->auto_calibrate_seconds;
    frames = st->auto_calibrate_frames;
    board_text = st->auto_calibrate_checkerboard;
  }
  if (!on) {
    st->autocal.stop();
    return;
  }
  cv::Size board;
  if (!board_text.empty()) {
    try {
      board = timfusion::parse_checkerboard(board_text);
    } catch (const std::exception& e) {
      st->autocal.stop();
      GST_ELEMENT_WARNING(self, LIBRARY, SETTINGS, ("auto-calibrate-checkerboard: %s", e.what()),
                          ("no auto-calibration runs; the current IR homography stays"));
      return;
    }
  }
  GST_INFO_OBJECT(self, "auto-calibration: collecting %d frame pairs over %.1f s%s", frames, seconds,
                  board.empty() ? "" : " (checkerboard)");
  // The element outlives the worker: stop() joins it at PAUSED->READY and in finalize.
  st->autocal.start(seconds, frames, board, [self](const timfusion::Calibration* c, const std::string& e, int n) {
    try {
      post_result(self, c, e, n);
    } catch (const std::exception& ex) {
      GST_WARNING_OBJECT(self, "auto-calibration: could not post the result: %s", ex.what());
    }
  });
}

void gst_timfusion_autocal_stop(GstTimFusion* self) { self->st->autocal.stop(); }

void gst_timfusion_autocal_offer(GstTimFusion* self, const cv::Mat& ir_luma, const cv::Mat& vis_plane,
                                 timfusion::ChannelOrder order, GstClockTime pts) {
  tfgst::State* st = self->st;
  if (!st->autocal.collecting() || !GST_CLOCK_TIME_IS_VALID(pts)) return;
  try {
    const cv::Mat vis = vis_plane.channels() > 1 ? timfusion::luma_of(vis_plane, order) : vis_plane;
    st->autocal.offer(ir_luma, vis, pts);
  } catch (const std::exception& e) {
    GST_WARNING_OBJECT(self, "auto-calibration: frame not taken: %s", e.what());
  }
}
