// timfusion element in real pipelines (gst_parse_launch): caps negotiation,
// image folders, live sources, EOS and stall policies, latency, errors and
// state cycles. No assertion depends on how fast this machine is, except
// that a stalled pad must not stop the output for a whole second.
#include <gtest/gtest.h>

#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "gst_test_util.h"
#include "test_support.h"

using namespace tfgst_test;
namespace fs = std::filesystem;

namespace {

std::string fmt_name(GstVideoFormat f) { return gst_video_format_to_string(f); }

std::string src(const std::string& pad, GstVideoFormat f, int w, int h, int fps, int n, const std::string& extra = "") {
  return "videotestsrc num-buffers=" + std::to_string(n) + " " + extra + " ! " + caps_string(f, w, h, fps, 1) +
         " ! f." + pad + " ";
}

std::string fusion(const std::string& model, const std::string& props = "") {
  return "timfusion name=f model=\"" + model + "\" " + props + " ";
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

GstVideoInfo output_info(const Output& out) {
  GstVideoInfo info;
  gst_video_info_init(&info);
  if (out.caps) gst_video_info_from_caps(&info, out.caps);
  return info;
}

GstVideoFormat output_format(const Output& out) {
  GstVideoInfo info = output_info(out);
  return GST_VIDEO_INFO_FORMAT(&info);
}

}  // namespace

// --- caps negotiation -------------------------------------------------------

class NegotiateVis : public ::testing::TestWithParam<GstVideoFormat> {};

TEST_P(NegotiateVis, OutputHasVisibleFormatSizeAndRate) {
  const GstVideoFormat vf = GetParam();
  RunResult r;
  // IR: another size and rate (4 frames at 15 fps end before the visible 3 at 10 fps).
  run_pipeline(src("vis", vf, 64, 48, 10, 3, "pattern=ball") + src("ir", GST_VIDEO_FORMAT_GRAY8, 40, 30, 15, 4) +
                   fusion(model_light()) + "! appsink name=out sync=false",
               r);
  ASSERT_TRUE(r.parsed) << r.parse_error;
  EXPECT_TRUE(r.bus.errors.empty()) << joined(r.bus.errors);
  EXPECT_TRUE(r.bus.eos);
  GstVideoInfo info = output_info(r.out);
  EXPECT_EQ(vf, GST_VIDEO_INFO_FORMAT(&info));
  EXPECT_EQ(64, GST_VIDEO_INFO_WIDTH(&info));
  EXPECT_EQ(48, GST_VIDEO_INFO_HEIGHT(&info));
  EXPECT_EQ(10, GST_VIDEO_INFO_FPS_N(&info));
  EXPECT_EQ(3u, r.out.buffers.size());
}

INSTANTIATE_TEST_SUITE_P(AllVisFormats, NegotiateVis,
                         ::testing::Values(GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR,
                                           GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_RGBA,
                                           GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12),
                         [](const auto& info) { return fmt_name(info.param); });

class NegotiateIr : public ::testing::TestWithParam<GstVideoFormat> {};

TEST_P(NegotiateIr, AnyIrFormatGivesVisibleOutput) {
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_I420, 64, 48, 10, 3) + src("ir", GetParam(), 64, 48, 10, 3) +
                   fusion(model_light()) + "! appsink name=out sync=false",
               r);
  ASSERT_TRUE(r.parsed) << r.parse_error;
  EXPECT_TRUE(r.bus.errors.empty()) << joined(r.bus.errors);
  EXPECT_EQ(GST_VIDEO_FORMAT_I420, output_format(r.out));
  EXPECT_EQ(3u, r.out.buffers.size());
}

INSTANTIATE_TEST_SUITE_P(AllIrFormats, NegotiateIr,
                         ::testing::Values(GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_GRAY16_LE, GST_VIDEO_FORMAT_RGB,
                                           GST_VIDEO_FORMAT_BGR),
                         [](const auto& info) { return fmt_name(info.param); });

// With a videoconvert after it, the element still outputs the visible format
// and downstream converts.
TEST(Negotiation, DownstreamConversionKeepsVisibleFormat) {
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_NV12, 64, 48, 10, 2) + src("ir", GST_VIDEO_FORMAT_GRAY8, 64, 48, 10, 2) +
                   fusion(model_light()) + "! videoconvert ! video/x-raw,format=BGRA ! appsink name=out sync=false",
               r);
  EXPECT_TRUE(r.bus.errors.empty()) << joined(r.bus.errors);
  EXPECT_EQ(GST_VIDEO_FORMAT_BGRA, output_format(r.out));
  EXPECT_EQ(2u, r.out.buffers.size());
}

// Downstream wants gray, the visible camera is forced to RGB: impossible.
TEST(Negotiation, ImpossibleCapsFailNotNegotiated) {
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_RGB, 64, 48, 10, 3) + src("ir", GST_VIDEO_FORMAT_GRAY8, 64, 48, 10, 3) +
                   fusion(model_light()) + "! video/x-raw,format=GRAY8 ! appsink name=out sync=false",
               r, 60);
  ASSERT_TRUE(r.parsed) << r.parse_error;
  ASSERT_FALSE(r.bus.errors.empty()) << "expected a negotiation error";
  EXPECT_TRUE(contains(joined(r.bus.errors), "not-negotiated") || contains(joined(r.bus.errors), "negotiat"))
      << joined(r.bus.errors);
  EXPECT_TRUE(r.out.buffers.empty());
}

// An IR format the element does not take cannot even be linked.
TEST(Negotiation, UnsupportedIrFormatIsRefused) {
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_RGB, 64, 48, 10, 3) + src("ir", GST_VIDEO_FORMAT_YUY2, 64, 48, 10, 3) +
                   fusion(model_light()) + "! appsink name=out sync=false",
               r, 60);
  EXPECT_TRUE(!r.parsed || !r.bus.errors.empty()) << "YUY2 on the ir pad must be refused";
  EXPECT_TRUE(r.out.buffers.empty());
}

// --- image folders (MSRS sample) ---------------------------------------------

// multifilesrc needs numbered names: link the sorted pairs as 0000.png...
static std::string numbered_folder(const std::string& kind, int n) {
  std::string dir = tftest::temp_dir("gst-" + kind);
  auto names = msrs_names();
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/%04d.png", i);
    fs::create_symlink(tftest::data("msrs_sample/" + kind + "/" + names.at(i)), dir + name);
  }
  return dir;
}

TEST(Files, MsrsFoldersToFusedPngs) {
  const int n = 3;
  const std::string ir_dir = numbered_folder("ir", n), vis_dir = numbered_folder("vis", n);
  const std::string out_dir = tftest::temp_dir("gst-fused");
  const std::string model = model_tiny();  // 640x480 frames: a small model keeps this quick
  RunResult r;
  run_pipeline("multifilesrc location=" + vis_dir + "/%04d.png index=0 caps=image/png,framerate=5/1 ! pngdec ! f.vis "
                   "multifilesrc location=" + ir_dir + "/%04d.png index=0 caps=image/png,framerate=5/1 ! pngdec ! f.ir " +
                   fusion(model, "temporal=false") +  // unrelated stills: each compared with the core's fusion
                   "! pngenc ! multifilesink location=" + out_dir + "/fused-%04d.png",
               r, 600);
  ASSERT_TRUE(r.parsed) << r.parse_error;
  EXPECT_TRUE(r.bus.errors.empty()) << joined(r.bus.errors);
  EXPECT_TRUE(r.bus.eos);
  auto names = msrs_names();
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/fused-%04d.png", i);
    cv::Mat got = cv::imread(out_dir + name, cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(got.empty()) << "missing output " << name;
    EXPECT_EQ(640, got.cols);
    EXPECT_EQ(480, got.rows);
    EXPECT_EQ(3, got.channels()) << "colour visible in, colour out";
    cv::Mat vis = cv::imread(tftest::data("msrs_sample/vis/" + names[i]), cv::IMREAD_COLOR);
    cv::Mat ir = cv::imread(tftest::data("msrs_sample/ir/" + names[i]), cv::IMREAD_GRAYSCALE);
    Frame fv{GST_VIDEO_FORMAT_BGR, {vis}}, fi{GST_VIDEO_FORMAT_GRAY8, {ir}};
    Frame want = reference_fuse(model, "", fi, fv);
    EXPECT_EQ(0, cv::norm(got, want.planes[0], cv::NORM_INF)) << "frame " << i << " differs from the core's fusion";
  }
  EXPECT_FALSE(fs::exists(out_dir + "/fused-0003.png")) << "exactly n frames expected";
}

// --- live sources at different rates -------------------------------------------

class LiveRates : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(LiveRates, OutputFollowsVisibleRate) {
  const int vis_fps = GetParam().first, ir_fps = GetParam().second;
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_GRAY8, 32, 24, vis_fps, vis_fps, "is-live=true pattern=ball") +
                   src("ir", GST_VIDEO_FORMAT_GRAY8, 32, 24, ir_fps, ir_fps, "is-live=true") + fusion(model_light()) +
                   "! appsink name=out sync=false",
               r, 120);
  ASSERT_TRUE(r.parsed) << r.parse_error;
  EXPECT_TRUE(r.bus.errors.empty()) << joined(r.bus.errors);
  EXPECT_TRUE(r.bus.eos);
  GstVideoInfo info = output_info(r.out);
  EXPECT_EQ(vis_fps, GST_VIDEO_INFO_FPS_N(&info));
  EXPECT_EQ(1, GST_VIDEO_INFO_FPS_D(&info));
  ASSERT_GE(r.out.buffers.size(), static_cast<size_t>(vis_fps / 3)) << "too few outputs";
  const GstClockTime dur = gst_util_uint64_scale_int(GST_SECOND, 1, vis_fps);
  for (GstBuffer* b : r.out.buffers) {
    EXPECT_NEAR(static_cast<double>(dur), static_cast<double>(GST_BUFFER_DURATION(b)), 1.0);
    // Output slots are on the visible frame grid.
    const double k = static_cast<double>(GST_BUFFER_PTS(b)) / static_cast<double>(dur);
    EXPECT_NEAR(std::round(k), k, 1e-3) << "PTS " << GST_BUFFER_PTS(b);
  }
}

INSTANTIATE_TEST_SUITE_P(VisFastAndSlow, LiveRates, ::testing::Values(std::make_pair(30, 9), std::make_pair(9, 30)),
                         [](const auto& info) {
                           return "vis" + std::to_string(info.param.first) + "_ir" + std::to_string(info.param.second);
                         });

// --- EOS on one pad ------------------------------------------------------------

TEST(Eos, IrEndsFirstVisibleContinues) {
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 10, "pattern=ball") +
                   src("ir", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 3) + fusion(model_light()) +
                   "! appsink name=out sync=false",
               r);
  EXPECT_TRUE(r.bus.errors.empty()) << joined(r.bus.errors);
  EXPECT_TRUE(r.bus.eos);
  EXPECT_EQ(10u, r.out.buffers.size()) << "output continues with the last IR frame until the visible stream ends";
}

TEST(Eos, VisibleEndsFirstIrContinues) {
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 3) +
                   src("ir", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 10, "pattern=ball") + fusion(model_light()) +
                   "! appsink name=out sync=false",
               r);
  EXPECT_TRUE(r.bus.errors.empty()) << joined(r.bus.errors);
  EXPECT_TRUE(r.bus.eos);
  ASSERT_EQ(10u, r.out.buffers.size()) << "output continues with the last visible frame until the IR stream ends";
  for (size_t i = 0; i < r.out.buffers.size(); ++i)
    EXPECT_EQ(i * GST_SECOND / 10, GST_BUFFER_PTS(r.out.buffers[i]));
  // After the visible EOS the moving IR ball still changes the output.
  GstVideoInfo info = output_info(r.out);
  Frame a = from_buffer(r.out.buffers[5], info), b = from_buffer(r.out.buffers[9], info);
  EXPECT_FALSE(equal(a, b));
}

TEST(Eos, BothEndTogether) {
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_RGB, 32, 24, 10, 4) + src("ir", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 4) +
                   fusion(model_light()) + "! appsink name=out sync=false",
               r);
  EXPECT_TRUE(r.bus.eos);
  EXPECT_EQ(4u, r.out.buffers.size());
}

// --- stalled pad, live -------------------------------------------------------------

// The stalled pad is an appsrc fed by a thread: 1 s of frames, 2 s of
// nothing, 0.5 s of frames, EOS. The other pad is a live videotestsrc.
// (appsrc must report a usable latency range, or the aggregator base class
// cannot configure live mode and waits for every pad.)
class Stall : public ::testing::TestWithParam<std::string> {};

TEST_P(Stall, StalledPadDoesNotStallLiveOutput) {
  const std::string stalled = GetParam(), other = stalled == "ir" ? "vis" : "ir";
  const std::string caps = caps_string(GST_VIDEO_FORMAT_GRAY8, 32, 24, 30, 1);
  const std::string desc = "appsrc name=stalled is-live=true format=time min-latency=0 max-latency=-1 caps=\"" + caps + "\" ! f." + stalled + " " +
                           "videotestsrc is-live=true num-buffers=150 pattern=ball ! " + caps + " ! f." + other + " " +
                           fusion(model_light()) + "! appsink name=out sync=false";
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  ASSERT_EQ(nullptr, err) << err->message;
  Output out;
  collect_appsink(p, out);
  GstElement* appsrc = gst_bin_get_by_name(GST_BIN(p), "stalled");
  ASSERT_NE(GST_STATE_CHANGE_FAILURE, gst_element_set_state(p, GST_STATE_PLAYING));
  const double t0 = now_s();
  std::atomic<double> stall_begin{0}, stall_end{0};
  std::thread feeder([&] {
    GstClock* clock = nullptr;
    for (int i = 0; i < 200 && !(clock = gst_element_get_clock(p)); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!clock) return;
    cv::Mat img(24, 32, CV_8UC1, cv::Scalar(90));
    Frame f{GST_VIDEO_FORMAT_GRAY8, {img}};
    auto push_for = [&](double seconds) {
      const double end = now_s() + seconds;
      while (now_s() < end) {
        GstClockTime rt = gst_clock_get_time(clock) - gst_element_get_base_time(p);
        gst_app_src_push_buffer(GST_APP_SRC(appsrc), to_buffer(f, rt, GST_SECOND / 30));
        std::this_thread::sleep_for(std::chrono::milliseconds(33));
      }
    };
    push_for(1.0);
    stall_begin = now_s() - t0;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    stall_end = now_s() - t0;
    push_for(0.5);
    gst_app_src_end_of_stream(GST_APP_SRC(appsrc));
    gst_object_unref(clock);
  });
  BusLog log;
  drain_bus(p, log, 120);
  feeder.join();
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(appsrc);
  gst_object_unref(p);
  EXPECT_TRUE(log.errors.empty()) << joined(log.errors);
  ASSERT_GT(stall_end.load(), 0.0);
  // Outputs that arrived while the pad was stalled (middle of the window).
  int during = 0;
  for (double t : out.arrival_s)
    if (t > stall_begin + 0.5 && t < stall_end - 0.5) ++during;
  std::string times;
  for (double t : out.arrival_s) times += std::to_string(t).substr(0, 5) + " ";
  EXPECT_GE(during, 5) << "output stopped while the " << stalled << " pad was stalled (" << out.buffers.size()
                       << " outputs in total, stall " << stall_begin << ".." << stall_end << " s, arrivals: " << times
                       << ")";
}

INSTANTIATE_TEST_SUITE_P(EitherPad, Stall, ::testing::Values("ir", "vis"));

// --- latency --------------------------------------------------------------------------

TEST(Latency, QueryAddsFrameAndProcessingTime) {
  const std::string desc = src("vis", GST_VIDEO_FORMAT_GRAY8, 32, 24, 30, 600, "is-live=true") +
                           src("ir", GST_VIDEO_FORMAT_GRAY8, 32, 24, 30, 600, "is-live=true") +
                           fusion(model_light()) + "! fakesink sync=true";
  GstElement* p = gst_parse_launch(desc.c_str(), nullptr);
  ASSERT_NE(nullptr, p);
  GstElement* f = gst_bin_get_by_name(GST_BIN(p), "f");
  gst_element_set_state(p, GST_STATE_PLAYING);
  BusLog log;
  double ms = 0;
  for (int i = 0; i < 100 && ms <= 0; ++i) {
    drain_bus(p, log, 0.3, false);
    g_object_get(f, "inference-ms", &ms, nullptr);
  }
  ASSERT_GT(ms, 0.0) << "no frame was fused";
  GstQuery* q = gst_query_new_latency();
  ASSERT_TRUE(gst_element_query(f, q));
  gboolean live = FALSE;
  GstClockTime min = 0, max = 0;
  gst_query_parse_latency(q, &live, &min, &max);
  gst_query_unref(q);
  EXPECT_TRUE(live);
  // videotestsrc (live) reports one frame; the element adds one output frame
  // plus its measured processing time with 5% headroom.
  const GstClockTime frame = GST_SECOND / 30;
  EXPECT_GT(min, 2 * frame) << "latency must include the processing time";
  EXPECT_GE(log.latency_messages, 1);
  EXPECT_TRUE(log.errors.empty()) << joined(log.errors);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(f);
  gst_object_unref(p);
}

// Live cameras faster than the network: old slots are skipped (QoS), output
// keeps coming, nothing errors out, and the run ends when the cameras do.
TEST(Latency, SlowInferenceSkipsLateFramesLive) {
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_RGB, 320, 240, 60, 120, "is-live=true pattern=ball") +
                   src("ir", GST_VIDEO_FORMAT_GRAY8, 320, 240, 60, 120, "is-live=true") +
                   fusion(model_light(), "device=cpu") + "! appsink name=out sync=false",
               r, 300);
  ASSERT_TRUE(r.parsed) << r.parse_error;
  EXPECT_TRUE(r.bus.errors.empty()) << joined(r.bus.errors);
  EXPECT_TRUE(r.bus.eos);
  EXPECT_GT(r.out.buffers.size(), 0u);
  EXPECT_LT(r.out.buffers.size(), 120u) << "a 320x240 C=48 network on the CPU cannot keep up with 60 fps";
  EXPECT_GT(r.bus.qos_messages, 0) << "skipped slots are reported with QoS messages";
}

// --- errors ----------------------------------------------------------------------------

struct BadModel {
  const char* name;
  std::function<std::string()> make;  // returns the weight file path
  std::string arch;
  const char* problem;  // expected in the message
};

static std::string write_bytes(const std::string& name, const std::string& bytes) {
  std::string p = tftest::temp_dir("gst-bad") + "/" + name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

static std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class BadWeights : public ::testing::TestWithParam<BadModel> {};

TEST_P(BadWeights, StateChangeFailsNamingFileAndProblem) {
  const BadModel& c = GetParam();
  const std::string path = c.make();
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 2) + src("ir", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 2) +
                   fusion(path, c.arch.empty() ? "" : "arch=" + c.arch) + "! fakesink",
               r, 30);
  ASSERT_TRUE(r.parsed) << r.parse_error;
  EXPECT_EQ(GST_STATE_CHANGE_FAILURE, r.start);
  ASSERT_FALSE(r.bus.errors.empty()) << "no error message posted";
  const std::string e = r.bus.errors[0];
  EXPECT_TRUE(contains(e, path)) << "message must name the file: " << e;
  EXPECT_TRUE(contains(e, c.problem)) << "message must say what is wrong: " << e;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadWeights,
    ::testing::Values(
        BadModel{"missing", [] { return std::string("/nonexistent/timfusion/model.safetensors"); }, "", "not found"},
        BadModel{"truncated",
                 [] { return write_bytes("truncated.safetensors", read_file(model_light()).substr(0, 4000)); }, "",
                 "truncated"},
        BadModel{"garbage", [] { return write_bytes("garbage.safetensors", std::string(64, 'x')); }, "", "header"},
        BadModel{"tiny", [] { return write_bytes("tiny.safetensors", "abc"); }, "", "too short"},
        BadModel{"wrong_arch", [] { return model_full_c8(); }, "ivif-light", "weight"},
        BadModel{"no_metadata", [] { return model_light_nometa(); }, "", "architecture"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Registration, MirroringHomographyIsAnError) {
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 2) + src("ir", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 2) +
                   fusion(model_light(), "ir-homography=\"-1,0,31,0,1,0,0,0,1\"") + "! fakesink",
               r, 30);
  EXPECT_EQ(GST_STATE_CHANGE_FAILURE, r.start);
  ASSERT_FALSE(r.bus.errors.empty());
  EXPECT_TRUE(contains(r.bus.errors[0], "mirror")) << r.bus.errors[0];
}

TEST(Registration, NotNineNumbersIsAnError) {
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 2) + src("ir", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 2) +
                   fusion(model_light(), "ir-homography=\"1,0,0,0,1,0\"") + "! fakesink",
               r, 30);
  EXPECT_EQ(GST_STATE_CHANGE_FAILURE, r.start);
  ASSERT_FALSE(r.bus.errors.empty());
  EXPECT_TRUE(contains(r.bus.errors[0], "9 numbers")) << r.bus.errors[0];
}

TEST(Registration, CalibrationFiles) {
  const std::string dir = tftest::temp_dir("gst-calib");
  const std::string json = dir + "/cam.json", key = dir + "/cam.ini", missing = dir + "/none.json";
  std::ofstream(json) << R"({"ir-homography": [1.5, 0, 2, 0, 1.5, 1, 0, 0, 1]})";
  std::ofstream(key) << "[cameras]\nir-homography=1.5;0;2;0;1.5;1;0;0;1\n";
  for (const std::string& file : {json, key}) {
    RunResult r;
    run_pipeline(src("vis", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 2) + src("ir", GST_VIDEO_FORMAT_GRAY8, 16, 12, 10, 2) +
                     fusion(model_light(), "calibration-file=\"" + file + "\"") + "! appsink name=out sync=false",
                 r, 60);
    EXPECT_TRUE(r.bus.errors.empty()) << file << ": " << joined(r.bus.errors);
    EXPECT_EQ(2u, r.out.buffers.size()) << file;
  }
  RunResult r;
  run_pipeline(src("vis", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 2) + src("ir", GST_VIDEO_FORMAT_GRAY8, 16, 12, 10, 2) +
                   fusion(model_light(), "calibration-file=\"" + missing + "\"") + "! fakesink",
               r, 30);
  EXPECT_EQ(GST_STATE_CHANGE_FAILURE, r.start);
  ASSERT_FALSE(r.bus.errors.empty());
  EXPECT_TRUE(contains(r.bus.errors[0], missing)) << r.bus.errors[0];
}

// --- state cycles ------------------------------------------------------------------------

TEST(States, TwoHundredNullPlayingCyclesLoadTheModelOnce) {
  const std::string desc = src("vis", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 1) +
                           src("ir", GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 1) + fusion(model_light()) +
                           "! appsink name=out sync=false";
  GstElement* p = gst_parse_launch(desc.c_str(), nullptr);
  ASSERT_NE(nullptr, p);
  Output out;
  collect_appsink(p, out);
  BusLog log;
  int eos = 0;
  for (int i = 0; i < 200; ++i) {
    ASSERT_NE(GST_STATE_CHANGE_FAILURE, gst_element_set_state(p, GST_STATE_PLAYING)) << "cycle " << i;
    log.eos = false;
    drain_bus(p, log, 60);
    eos += log.eos ? 1 : 0;
    ASSERT_TRUE(log.errors.empty()) << "cycle " << i << ": " << joined(log.errors);
    ASSERT_EQ(GST_STATE_CHANGE_SUCCESS, gst_element_set_state(p, GST_STATE_NULL));
  }
  gst_object_unref(p);
  EXPECT_EQ(200, eos);
  EXPECT_EQ(200u, out.buffers.size());
  EXPECT_EQ(1, log.count_element("timfusion-model-loaded")) << "the model must be loaded once, then reused";
}

// Two elements with different `threads` in one process each run with their
// own count (it is applied on each element's streaming thread, not
// process-wide).
// Each element keeps its own thread count. Live: one frame at a time over
// the intra-op threads. Not live: threads=2 fuses two whole frames at once,
// each with one intra-op thread (frames-in-flight).
struct ThreadsCase {
  bool live;
  int one_threads, one_frames, two_threads, two_frames;  // inference-threads, frames-in-flight
};
class Threads : public ::testing::TestWithParam<ThreadsCase> {};

TEST_P(Threads, TwoElementsInOnePipelineKeepTheirOwnThreadCounts) {
  const ThreadsCase c = GetParam();
  auto chain = [&](const std::string& name, int threads) {
    std::string s;
    for (const char* pad : {"vis", "ir"})
      s += std::string("videotestsrc num-buffers=4 is-live=") + (c.live ? "true" : "false") + " ! " +
           caps_string(GST_VIDEO_FORMAT_GRAY8, 64, 48, 10, 1) + " ! " + name + "." + pad + " ";
    return s + "timfusion name=" + name + " threads=" + std::to_string(threads) + " model=\"" + model_tiny() +
           "\" ! fakesink sync=false ";
  };
  const std::string desc = chain("one", 1) + chain("two", 2);
  GstElement* p = gst_parse_launch(desc.c_str(), nullptr);
  ASSERT_NE(nullptr, p);
  ASSERT_NE(GST_STATE_CHANGE_FAILURE, gst_element_set_state(p, GST_STATE_PLAYING));
  BusLog log;
  drain_bus(p, log, 120);
  EXPECT_TRUE(log.eos);
  EXPECT_TRUE(log.errors.empty()) << joined(log.errors);
  struct Expected {
    const char* name;
    int threads, frames;
  };
  for (const Expected& e : {Expected{"one", c.one_threads, c.one_frames}, Expected{"two", c.two_threads, c.two_frames}}) {
    GstElement* el = gst_bin_get_by_name(GST_BIN(p), e.name);
    ASSERT_NE(nullptr, el);
    int threads = -1, frames = -1;
    g_object_get(el, "inference-threads", &threads, "frames-in-flight", &frames, nullptr);
    EXPECT_EQ(e.threads, threads) << e.name;
    EXPECT_EQ(e.frames, frames) << e.name;
    gst_object_unref(el);
  }
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
}

INSTANTIATE_TEST_SUITE_P(LiveAndNot, Threads,
                         ::testing::Values(ThreadsCase{true, 1, 1, 2, 1}, ThreadsCase{false, 1, 1, 1, 2}),
                         [](const ::testing::TestParamInfo<ThreadsCase>& i) {
                           return std::string(i.param.live ? "Live" : "NotLive");
                         });

// --- pipelines/*.sh ---------------------------------------------------------------------

static std::string scripts_dir() {
  const char* d = std::getenv("TIMFUSION_PIPELINES_DIR");
  return d && *d ? d : "pipelines";
}

static int run_script(const std::string& args, std::string* out) {
  return tftest::run("TIMFUSION_BUILD=\"" + tftest::build_dir() + "\" " + scripts_dir() + "/" + args, out);
}

TEST(Scripts, EveryScriptHasHelp) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(scripts_dir())) {
    if (e.path().extension() != ".sh" || e.path().filename() == "common.sh") continue;
    std::string out;
    EXPECT_EQ(0, run_script(e.path().filename().string() + " -h", &out)) << e.path();
    EXPECT_TRUE(contains(out, "Usage:")) << e.path() << ": " << out;
    ++n;
  }
  EXPECT_GE(n, 5);
}

TEST(Scripts, FuseFoldersWritesOneFusedPngPerPair) {
  const std::string out_dir = tftest::temp_dir("gst-script-out");
  std::string log;
  ASSERT_EQ(0, run_script("fuse-folders.sh -n 2 -m \"" + model_tiny() + "\" \"" + tftest::data("msrs_sample/ir") +
                              "\" \"" + tftest::data("msrs_sample/vis") + "\" \"" + out_dir + "\"",
                          &log))
      << log;
  auto names = msrs_names();
  for (int i = 0; i < 2; ++i) {
    cv::Mat m = cv::imread(out_dir + "/" + names[i], cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(m.empty()) << names[i] << " missing; log: " << log;
    EXPECT_EQ(640, m.cols);
    EXPECT_EQ(3, m.channels());
  }
  EXPECT_FALSE(fs::exists(out_dir + "/" + names[2]));
}

TEST(Scripts, CameraScriptsSayWhichCameraIsMissing) {
  for (const char* script : {"cameras-to-screen.sh", "cameras-to-h264.sh /tmp/x.mp4", "cameras-to-udp.sh"}) {
    std::string out;
    const std::string s = script;
    const std::string args = s.find(' ') == std::string::npos
                                 ? s + " -i /dev/video-timfusion-test"
                                 : s.substr(0, s.find(' ')) + " -i /dev/video-timfusion-test" + s.substr(s.find(' '));
    EXPECT_NE(0, run_script(args, &out)) << script;
    EXPECT_TRUE(contains(out, "camera /dev/video-timfusion-test not found")) << script << ": " << out;
  }
}

TEST(Scripts, SyntheticLiveDemoRuns) {
  std::string out;
  EXPECT_EQ(0, run_script("synthetic-demo.sh -o stats -s 64x48 -S 32x24 -r 30 -R 9 -n 15 -m \"" + model_light() + "\"",
                          &out))
      << out;
  EXPECT_TRUE(contains(out, "EOS")) << out;
}

// Issue 13: gst-launch-1.0 joins its arguments and parses them again, so a '"'
// in a value ended its property and the rest became pipeline text; this one
// used to create PLANTED. Such values are refused; others (spaces, '!', ',')
// reach the element literally.
TEST(Scripts, ValuesCannotInjectPipelineText) {
  const std::string dir = tftest::temp_dir("gst-script-inject");
  const std::string planted = dir + "/PLANTED";
  std::string out;
  const std::string hostile = "x\" ! fakesink videotestsrc num-buffers=1 ! filesink location=" + planted + " \"";
  // Single-quoted for the shell: the hostile value reaches the script as one argument.
  EXPECT_EQ(1, run_script("synthetic-demo.sh -o stats -s 64x48 -S 32x24 -n 3 -m '" + hostile + "'", &out)) << out;
  EXPECT_TRUE(contains(out, "double quote")) << out;
  EXPECT_FALSE(fs::exists(planted));
  // A model path full of gst-launch syntax loads as the file it names.
  const std::string odd = dir + "/a b!c,d;e=f.safetensors";
  fs::copy_file(model_light(), odd);
  EXPECT_EQ(0, run_script("synthetic-demo.sh -o stats -s 64x48 -S 32x24 -n 3 -m '" + odd + "'", &out)) << out;
  EXPECT_TRUE(contains(out, "EOS")) << out;
  EXPECT_EQ(1, run_script("synthetic-demo.sh -o stats -s 64x48 -S 32x24 -n 3 -a 'x\\y'", &out)) << out;
  EXPECT_TRUE(contains(out, "backslash")) << out;
}
