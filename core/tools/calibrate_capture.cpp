// timfusion-calibrate: frame pairs from two GStreamer sources (appsink).
#include "calibrate_capture.h"

#include <chrono>
#include <cmath>
#include <deque>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <opencv2/core.hpp>

namespace timfusion {

namespace {

struct Sample {
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  cv::Mat image;  // owned copy
};

// A copy of the frame in the appsink's sample (GRAY8 or BGR, as its caps ask).
bool take(GstAppSink* sink, Sample& out, GstClockTime timeout) {
  GstSample* s = gst_app_sink_try_pull_sample(sink, timeout);
  if (!s) return false;
  GstVideoInfo info;
  GstBuffer* buf = gst_sample_get_buffer(s);
  GstVideoFrame frame;
  bool ok = false;
  if (buf && gst_video_info_from_caps(&info, gst_sample_get_caps(s)) &&
      gst_video_frame_map(&frame, &info, buf, GST_MAP_READ)) {
    const int type = GST_VIDEO_INFO_FORMAT(&info) == GST_VIDEO_FORMAT_GRAY8 ? CV_8UC1 : CV_8UC3;
    cv::Mat view(GST_VIDEO_INFO_HEIGHT(&info), GST_VIDEO_INFO_WIDTH(&info), type,
                 GST_VIDEO_FRAME_PLANE_DATA(&frame, 0), GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0));
    out.image = view.clone();
    out.pts = GST_BUFFER_PTS(buf);
    gst_video_frame_unmap(&frame);
    ok = true;
  }
  gst_sample_unref(s);
  return ok;
}

std::string bus_error(GstElement* pipeline) {
  GstBus* bus = gst_element_get_bus(pipeline);
  std::string what;
  while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError* err = nullptr;
    gchar* dbg = nullptr;
    gst_message_parse_error(m, &err, &dbg);
    if (what.empty()) what = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(m))) + ": " + (err ? err->message : "?");
    g_clear_error(&err);
    g_free(dbg);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return what;
}

}  // namespace

bool capture_available() { return true; }

std::vector<CalibrationPair> capture_pairs(const std::string& ir_src, const std::string& vis_src, int frames,
                                           double seconds) {
  gst_init(nullptr, nullptr);
  const std::string desc = ir_src + " ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=ir sync=false " +
                           "max-buffers=4 drop=true  " + vis_src +
                           " ! videoconvert ! video/x-raw,format=BGR ! appsink name=vis sync=false max-buffers=4 "
                           "drop=true";
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(desc.c_str(), &err);
  if (err) {
    const std::string msg = err->message;
    g_clear_error(&err);
    if (pipeline) gst_object_unref(pipeline);
    throw Error("capture pipeline \"" + desc + "\": " + msg);
  }
  auto* ir_sink = GST_APP_SINK(gst_bin_get_by_name(GST_BIN(pipeline), "ir"));
  auto* vis_sink = GST_APP_SINK(gst_bin_get_by_name(GST_BIN(pipeline), "vis"));
  auto cleanup = [&] {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(ir_sink);
    gst_object_unref(vis_sink);
    gst_object_unref(pipeline);
  };
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    const std::string why = bus_error(pipeline);
    cleanup();
    throw Error("the capture pipeline does not start" + (why.empty() ? std::string() : " (" + why + ")"));
  }

  // Visible frames drive: one is taken every interval, with the IR frame
  // nearest to it in time.
  const GstClockTime interval = GstClockTime(seconds / std::max(1, frames) * GST_SECOND);
  std::deque<Sample> irs;
  std::vector<CalibrationPair> pairs;
  GstClockTime next = GST_CLOCK_TIME_NONE;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds + 20);
  std::string problem;
  while (int(pairs.size()) < frames) {
    if (std::chrono::steady_clock::now() > deadline) {
      problem = "no frames within " + std::to_string(int(seconds + 20)) + " s";
      break;
    }
    Sample s;
    while (take(ir_sink, s, 0)) {
      irs.push_back(s);
      if (irs.size() > 64) irs.pop_front();
    }
    if (!take(vis_sink, s, 50 * GST_MSECOND)) {
      if (gst_app_sink_is_eos(vis_sink)) {
        problem = "the visible source ended";
        break;
      }
      const std::string why = bus_error(pipeline);
      if (!why.empty()) {
        problem = why;
        break;
      }
      continue;
    }
    if (next != GST_CLOCK_TIME_NONE && s.pts != GST_CLOCK_TIME_NONE && s.pts < next) continue;
    // Wait briefly for an IR frame when none has come yet.
    Sample ir_s;
    if (irs.empty() && take(ir_sink, ir_s, GST_SECOND)) irs.push_back(ir_s);
    if (irs.empty()) continue;
    const Sample* best = &irs.back();
    for (const auto& c : irs)
      if (c.pts != GST_CLOCK_TIME_NONE && s.pts != GST_CLOCK_TIME_NONE &&
          std::llabs(GstClockTimeDiff(c.pts - s.pts)) < std::llabs(GstClockTimeDiff(best->pts - s.pts)))
        best = &c;
    pairs.push_back({"frame-" + std::to_string(pairs.size()), best->image, s.image});
    next = (s.pts == GST_CLOCK_TIME_NONE ? 0 : s.pts) + interval;
  }
  cleanup();
  if (pairs.empty()) throw Error("no frame pairs captured: " + problem);
  return pairs;
}

}  // namespace timfusion
