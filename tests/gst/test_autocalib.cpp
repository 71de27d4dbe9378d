// timfusion element: calibration in the pipeline. auto-calibrate on live
// frames of a real pair with a known misalignment, its refusal on blank
// frames, and timfusion-calibrate's file loaded by calibration-file.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <string>

#include <opencv2/imgproc.hpp>

#include "gst_test_util.h"
#include "heated_board.h"
#include "test_support.h"
#include "timfusion/calibration.h"
#include "timfusion/pairs.h"

using namespace tfgst_test;

namespace {

struct Misaligned {
  std::string ir_png, vis_png;
  cv::Size ir_size, vis_size;
  timfusion::Homography truth;
};

// RoadScene FLIR_04269 seen by an IR camera of 0.75 x the visible resolution,
// scale 1.15, rotated 2 degrees, shifted by (5 %, -4 %) of the frame.
Misaligned make_pair(const std::string& dir) {
  const cv::Mat vis = timfusion::read_image(tftest::data("roadscene/vis/FLIR_04269.png"), -1);
  const cv::Mat ir = timfusion::read_image(tftest::data("roadscene/ir/FLIR_04269.png"), 0);
  const cv::Size is(int(std::lround(0.75 * vis.cols)), int(std::lround(0.75 * vis.rows)));
  const double cx = (vis.cols - 1) / 2.0, cy = (vis.rows - 1) / 2.0, th = 2.0 * CV_PI / 180, s = 1.15;
  const double fx = double(vis.cols) / is.width, fy = double(vis.rows) / is.height;
  const cv::Matx33d res(fx, 0, 0.5 * fx - 0.5, 0, fy, 0.5 * fy - 0.5, 0, 0, 1);
  const cv::Matx33d a(s * std::cos(th), -s * std::sin(th), cx + 0.05 * vis.cols, s * std::sin(th), s * std::cos(th),
                      cy - 0.04 * vis.rows, 0, 0, 1);
  const cv::Matx33d h = a * cv::Matx33d(1, 0, -cx, 0, 1, -cy, 0, 0, 1) * res;
  cv::Mat out;
  cv::warpPerspective(ir, out, cv::Mat(h), is, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REFLECT_101);
  Misaligned m{dir + "/ir.png", dir + "/vis.png", is, vis.size(), {}};
  timfusion::write_image(m.ir_png, out);
  timfusion::write_image(m.vis_png, vis);
  for (int i = 0; i < 9; ++i) m.truth.m[i] = h.val[i];
  return m;
}

std::string still(const std::string& png, const std::string& pad, const std::string& format, bool live, int n) {
  return "filesrc location=\"" + png + "\" ! pngdec ! videoconvert ! video/x-raw,format=" + format +
         " ! imagefreeze num-buffers=" + std::to_string(n) + (live ? " is-live=true" : "") +
         " ! video/x-raw,framerate=10/1 ! f." + pad + " ";
}

std::string fusion(const std::string& props) {
  return "timfusion name=f model=\"" + model_tiny() + "\" " + props + " ";
}

struct LiveResult {
  GstStructure* calibration = nullptr;  // the first timfusion-calibration message (owned)
  std::vector<std::string> warnings, errors;
  int outputs_after_message = 0;
  ~LiveResult() {
    if (calibration) gst_structure_free(calibration);
  }
};

// Runs a live pipeline until the calibration message has come and `after`
// more frames were output (or timeout), then stops it.
void run_live(const std::string& desc, LiveResult& r, int after, double timeout_s) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  ASSERT_EQ(nullptr, err) << err->message;
  std::atomic<int> outputs{0};
  GstElement* f = gst_bin_get_by_name(GST_BIN(p), "f");
  GstPad* srcpad = gst_element_get_static_pad(f, "src");
  gst_pad_add_probe(
      srcpad, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad*, GstPadProbeInfo*, gpointer n) -> GstPadProbeReturn {
        ++*static_cast<std::atomic<int>*>(n);
        return GST_PAD_PROBE_OK;
      },
      &outputs, nullptr);
  ASSERT_NE(GST_STATE_CHANGE_FAILURE, gst_element_set_state(p, GST_STATE_PLAYING));
  GstBus* bus = gst_element_get_bus(p);
  const double t0 = now_s();
  int at_message = -1;
  while (now_s() - t0 < timeout_s) {
    if (at_message >= 0 && outputs.load() >= at_message + after) break;
    GstMessage* m = gst_bus_timed_pop(bus, 100 * GST_MSECOND);
    if (!m) continue;
    GError* e = nullptr;
    gchar* dbg = nullptr;
    switch (GST_MESSAGE_TYPE(m)) {
      case GST_MESSAGE_ELEMENT:
        if (!r.calibration && gst_structure_has_name(gst_message_get_structure(m), "timfusion-calibration")) {
          r.calibration = gst_structure_copy(gst_message_get_structure(m));
          at_message = outputs.load();
        }
        break;
      case GST_MESSAGE_WARNING:
        gst_message_parse_warning(m, &e, &dbg);
        r.warnings.push_back(e ? e->message : "");
        break;
      case GST_MESSAGE_ERROR:
        gst_message_parse_error(m, &e, &dbg);
        r.errors.push_back(e ? e->message : "");
        break;
      default: break;
    }
    g_clear_error(&e);
    g_free(dbg);
    gst_message_unref(m);
    if (!r.errors.empty()) break;
  }
  if (at_message >= 0) r.outputs_after_message = outputs.load() - at_message;
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(srcpad);
  gst_object_unref(f);
  gst_object_unref(p);
}

// Live sources of the rendered heated board (tests/support/heated_board.h),
// n buffers each; *view gets the frames and the truth.
std::string board_sources(const std::string& tag, int n, tftest::BoardView* view) {
  const std::string dir = tftest::temp_dir(tag);
  *view = tftest::heated_board_view({190, 150}, 3);
  timfusion::write_image(dir + "/ir.png", view->ir);
  timfusion::write_image(dir + "/vis.png", view->vis);
  return still(dir + "/ir.png", "ir", "GRAY8", true, n) + still(dir + "/vis.png", "vis", "GRAY8", true, n);
}

// The run posted a successful timfusion-calibration message and no error.
::testing::AssertionResult calibrated(const LiveResult& r) {
  if (!r.errors.empty()) return ::testing::AssertionFailure() << "error: " << r.errors[0];
  if (!r.calibration) return ::testing::AssertionFailure() << "no timfusion-calibration message";
  gboolean ok = FALSE;
  gst_structure_get_boolean(r.calibration, "success", &ok);
  if (!ok) return ::testing::AssertionFailure() << gst_structure_to_string(r.calibration);
  return ::testing::AssertionSuccess();
}

timfusion::Homography parse_message_homography(const GstStructure* s) {
  const gchar* h = gst_structure_get_string(s, "ir-homography");
  return timfusion::Homography::parse(h ? h : "");
}

}  // namespace

TEST(AutoCalibrate, OffByDefault) {
  GstElement* f = gst_element_factory_make("timfusion", nullptr);
  ASSERT_NE(nullptr, f);
  gboolean on = TRUE;
  double seconds = 0;
  g_object_get(f, "auto-calibrate", &on, "auto-calibrate-seconds", &seconds, nullptr);
  EXPECT_FALSE(on);
  EXPECT_GT(seconds, 0);
  gst_object_unref(f);
}

TEST(AutoCalibrate, LiveFramesGiveTheKnownHomography) {
  const Misaligned m = make_pair(tftest::temp_dir("autocal"));
  LiveResult r;
  run_live(still(m.ir_png, "ir", "GRAY8", true, 100000) + still(m.vis_png, "vis", "BGR", true, 100000) +
               fusion("auto-calibrate=true auto-calibrate-seconds=0.5 auto-calibrate-frames=2") + "! fakesink sync=false",
           r, 3, 240);
  ASSERT_TRUE(calibrated(r));
  const timfusion::Homography h = parse_message_homography(r.calibration);
  EXPECT_LT(timfusion::reprojection_error(h, m.truth, m.ir_size, m.vis_size), 2.0) << gst_structure_to_string(r.calibration);
  double residual = -2, correlation = 0;
  int frames = 0;
  EXPECT_TRUE(gst_structure_get_double(r.calibration, "residual-px", &residual));
  EXPECT_TRUE(gst_structure_get_double(r.calibration, "correlation", &correlation));
  EXPECT_TRUE(gst_structure_get_int(r.calibration, "frames", &frames));
  EXPECT_GE(correlation, 0.4);
  EXPECT_EQ(2, frames);
  EXPECT_GE(r.outputs_after_message, 3) << "fusion stopped after the calibration";
}

// A heated checkerboard in view of a live rig (auto-calibrate-checkerboard):
// the board's corners give the known homography to a fraction of a pixel.
TEST(AutoCalibrate, LiveFramesOfAHeatedCheckerboardGiveTheKnownHomography) {
  tftest::BoardView v;
  LiveResult r;
  run_live(board_sources("autocal-board", 100000, &v) +
               fusion("auto-calibrate=true auto-calibrate-checkerboard=9x6 auto-calibrate-seconds=0.3 "
                      "auto-calibrate-frames=2") +
               "! fakesink sync=false",
           r, 3, 120);
  ASSERT_TRUE(calibrated(r));
  const gchar* method = gst_structure_get_string(r.calibration, "method");
  EXPECT_STREQ("checkerboard", method ? method : "");
  timfusion::Homography truth;
  for (int i = 0; i < 9; ++i) truth.m[i] = v.truth.val[i];
  EXPECT_LT(timfusion::reprojection_error(parse_message_homography(r.calibration), truth, v.ir.size(), v.vis.size()),
            0.5)
      << gst_structure_to_string(r.calibration);
  EXPECT_GE(r.outputs_after_message, 3) << "fusion stopped after the calibration";
}

TEST(AutoCalibrate, MalformedCheckerboardIsAWarningAndNoCalibrationRuns) {
  tftest::BoardView v;
  LiveResult r;
  run_live(board_sources("autocal-badboard", 30, &v) +
               fusion("auto-calibrate=true auto-calibrate-checkerboard=9by6 auto-calibrate-seconds=0.3") +
               "! fakesink sync=false",
           r, 0, 8);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(nullptr, r.calibration) << "a malformed board must not fall back to another method";
  bool warned = false;
  for (const auto& w : r.warnings) warned |= w.find("9by6") != std::string::npos && w.find("COLSxROWS") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST(AutoCalibrate, BlankFramesAreRefusedWithAWarningAndFusionGoesOn) {
  const std::string dir = tftest::temp_dir("autocal-blank");
  timfusion::write_image(dir + "/ir.png", cv::Mat(96, 128, CV_8UC1, cv::Scalar(60)));
  timfusion::write_image(dir + "/vis.png", cv::Mat(120, 160, CV_8UC3, cv::Scalar(90, 120, 150)));
  LiveResult r;
  run_live(still(dir + "/ir.png", "ir", "GRAY8", true, 100000) + still(dir + "/vis.png", "vis", "BGR", true, 100000) +
               fusion("auto-calibrate=true auto-calibrate-seconds=0.3 auto-calibrate-frames=2") + "! fakesink sync=false",
           r, 3, 120);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_NE(nullptr, r.calibration);
  gboolean ok = TRUE;
  gst_structure_get_boolean(r.calibration, "success", &ok);
  EXPECT_FALSE(ok);
  const gchar* why = gst_structure_get_string(r.calibration, "error");
  ASSERT_NE(nullptr, why);
  EXPECT_NE(std::string(why).find("not enough common structure"), std::string::npos) << why;
  bool warned = false;
  for (const auto& w : r.warnings) warned |= w.find("Auto-calibration failed") != std::string::npos;
  EXPECT_TRUE(warned);
  EXPECT_GE(r.outputs_after_message, 3);
}

TEST(CalibrateTool, ItsFileLoadsInTheElement) {
  const std::string dir = tftest::temp_dir("calib-element");
  const Misaligned m = make_pair(dir);
  std::string out;
  ASSERT_EQ(0, tftest::run(tftest::build_dir() + "/core/timfusion-calibrate -q --ir " + m.ir_png + " --vis " +
                               m.vis_png + " -o " + dir + "/rig.json",
                           &out))
      << out;
  RunResult r;
  run_pipeline(still(m.ir_png, "ir", "GRAY8", false, 3) + still(m.vis_png, "vis", "BGR", false, 3) +
                   fusion("calibration-file=\"" + dir + "/rig.json\"") + "! appsink name=out sync=false",
               r, 120);
  ASSERT_TRUE(r.parsed) << r.parse_error;
  EXPECT_NE(GST_STATE_CHANGE_FAILURE, r.start);
  EXPECT_TRUE(r.bus.errors.empty()) << (r.bus.errors.empty() ? "" : r.bus.errors[0]);
  EXPECT_EQ(3u, r.out.buffers.size());
  EXPECT_EQ(0, r.bus.count_element("timfusion-calibration")) << "auto-calibrate is off by default";
}
