// Helpers for the timfusion GStreamer element tests: GStreamer set-up,
// frames <-> cv::Mat, pipelines run to EOS, reference results from the core.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <gst/gst.h>
#include <gst/video/video.h>
#include <opencv2/core.hpp>

#include "timfusion/color.h"

namespace tfgst_test {

// Fixture weight files (tests/fixtures): a valid ivif-light file (C=48,
// with metadata), the same without metadata (needs arch=ivif-light), and a
// tiny single-stage C=8 model for full-size frames.
std::string model_light();
std::string model_light_nometa();
std::string model_tiny();
std::string model_full_c8();

// A video frame held as planes (cv::Mat per plane, tightly packed rows).
struct Frame {
  GstVideoFormat format = GST_VIDEO_FORMAT_UNKNOWN;
  std::vector<cv::Mat> planes;
  int width() const;
  int height() const;
};

// bgr: CV_8UC3 (OpenCV order). Builds a frame of `format` from it: gray =
// BT.601 luma, packed RGB/BGR(x/A) (alpha = a ramp, so it can be checked),
// I420/NV12 via OpenCV's YUV conversion.
Frame make_vis(const cv::Mat& bgr, GstVideoFormat format);
// gray: CV_8UC1. GRAY8 as is, GRAY16_LE = value * 257, RGB/BGR = a false
// colour image whose luma is not the gray input (channels differ).
Frame make_ir(const cv::Mat& gray, GstVideoFormat format);

// Copies a Frame into a new GstBuffer laid out with GStreamer's default
// strides for (format, width, height) (rows padded to 4 bytes).
GstBuffer* to_buffer(const Frame& f, GstClockTime pts, GstClockTime duration);
// Reads a mapped buffer of `info` back into tightly packed planes.
Frame from_buffer(GstBuffer* buf, const GstVideoInfo& info);
std::string caps_string(GstVideoFormat format, int width, int height, int fps_n = 30, int fps_d = 1);

// The core's result for this pair: Fuser::fuse on plane 0 (luma of a
// 3-channel IR by the IR's own order), chroma planes copied for YUV.
Frame reference_fuse(const std::string& model, const std::string& arch, const Frame& ir, const Frame& vis,
                     const std::string& homography = "");

// Max absolute difference over all planes (frames must have equal layout).
int max_abs_diff(const Frame& a, const Frame& b);
bool equal(const Frame& a, const Frame& b);

// Test images: MSRS pair resized to (w, h), as BGR and gray.
cv::Mat msrs_vis(int w, int h, int index = 0);
cv::Mat msrs_ir(int w, int h, int index = 0);
std::vector<std::string> msrs_names();

// --- pipelines ---------------------------------------------------------
struct Output {
  std::vector<GstBuffer*> buffers;  // owned
  std::vector<double> arrival_s;    // seconds since start, per buffer
  GstCaps* caps = nullptr;          // of the last sample
  ~Output();
};

struct BusLog {
  bool eos = false;
  std::vector<std::string> errors;    // "message | debug"
  std::vector<std::string> warnings;  // "message | debug"
  std::vector<GstStructure*> element_messages;  // owned copies
  int latency_messages = 0;
  int qos_messages = 0;
  ~BusLog();
  int count_element(const char* name) const;
};

// Pops bus messages into log until EOS/ERROR or timeout (seconds).
void drain_bus(GstElement* pipeline, BusLog& log, double timeout_s, bool stop_on_eos = true);

// Collects the buffers of the appsink named "out" (sync=false advised).
void collect_appsink(GstElement* pipeline, Output& out, const char* name = "out");

// Parses, runs to EOS/error (or timeout), then sets NULL.
struct RunResult {
  bool parsed = false;
  std::string parse_error;
  GstStateChangeReturn start = GST_STATE_CHANGE_FAILURE;
  BusLog bus;
  Output out;
};
void run_pipeline(const std::string& description, RunResult& r, double timeout_s = 120,
                  const std::function<void(GstElement*)>& before_play = nullptr);

double now_s();

// Bus messages (errors, warnings) one per line, for assertion messages.
std::string joined(const std::vector<std::string>& v);

}  // namespace tfgst_test
