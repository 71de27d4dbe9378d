// timfusion element, driven with GstHarness (one harness per sink pad, as in
// GStreamer's compositor tests): every output is compared byte for byte with
// the core's Fuser::fuse on the same frames and weights.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include <opencv2/core.hpp>

#include <fstream>
#include <string>
#include <thread>

#include "gst_test_util.h"
#include "timfusion/ir_range.h"
#include "test_support.h"

using namespace tfgst_test;

namespace {

constexpr int W = 90, H = 62;  // rows need padding in GRAY8, RGB, I420 and NV12
constexpr GstClockTime DUR = GST_SECOND / 30;

// The element with a harness on each sink pad ("vis" also owns the src side).
class TwoPads {
 public:
  explicit TwoPads(const std::string& model, const std::string& arch = "") {
    el_ = gst_element_factory_make("timfusion", "f");
    if (!el_) {
      ADD_FAILURE() << "timfusion element not found (GST_PLUGIN_PATH?)";
      return;
    }
    // Every output here is compared with the core's fusion of its pair alone;
    // the temporal mode has its own tests (test_temporal.cpp).
    g_object_set(el_, "model", model.c_str(), "arch", arch.c_str(), "temporal", FALSE, nullptr);
    bus_ = gst_bus_new();
    gst_element_set_bus(el_, bus_);
    vis_ = gst_harness_new_with_element(el_, "vis", "src");
    ir_ = gst_harness_new_with_element(el_, "ir", nullptr);
  }
  ~TwoPads() {
    if (ir_) gst_harness_teardown(ir_);
    if (vis_) gst_harness_teardown(vis_);
    if (el_) {
      gst_element_set_bus(el_, nullptr);
      gst_object_unref(el_);
    }
    if (bus_) gst_object_unref(bus_);
  }
  GstElement* element() const { return el_; }
  GstHarness* vis() const { return vis_; }
  GstHarness* ir() const { return ir_; }

  void start(const std::string& vis_caps, const std::string& ir_caps) {
    gst_harness_set_src_caps_str(vis_, vis_caps.c_str());
    gst_harness_set_src_caps_str(ir_, ir_caps.c_str());
    gst_harness_play(vis_);
  }
  void push_ir(const Frame& f, int i) { ASSERT_EQ(GST_FLOW_OK, gst_harness_push(ir_, to_buffer(f, i * DUR, DUR))); }
  void push_vis(const Frame& f, int i) { ASSERT_EQ(GST_FLOW_OK, gst_harness_push(vis_, to_buffer(f, i * DUR, DUR))); }
  // Frame i of both streams (IR first, as a thermal camera often is).
  void push_pair(const Frame& ir, const Frame& vis, int i) {
    push_ir(ir, i);
    push_vis(vis, i);
  }
  // The next output frame, with the caps it was negotiated with.
  Frame pull(GstVideoInfo* info_out = nullptr) {
    GstBuffer* b = gst_harness_pull(vis_);
    if (!b) {
      ADD_FAILURE() << "no output buffer";
      return {};
    }
    GstCaps* caps = gst_pad_get_current_caps(vis_->sinkpad);
    GstVideoInfo info;
    EXPECT_TRUE(caps && gst_video_info_from_caps(&info, caps));
    if (caps) gst_caps_unref(caps);
    if (info_out) *info_out = info;
    Frame f = from_buffer(b, info);
    gst_buffer_unref(b);
    return f;
  }
  // Messages the element posted (errors, warnings, element messages).
  BusLog messages() {
    BusLog log;
    while (GstMessage* m = gst_bus_pop(bus_)) {
      switch (GST_MESSAGE_TYPE(m)) {
        case GST_MESSAGE_ERROR: {
          GError* e = nullptr;
          gst_message_parse_error(m, &e, nullptr);
          log.errors.push_back(e->message);
          g_error_free(e);
          break;
        }
        case GST_MESSAGE_WARNING: {
          GError* e = nullptr;
          gst_message_parse_warning(m, &e, nullptr);
          log.warnings.push_back(e->message);
          g_error_free(e);
          break;
        }
        case GST_MESSAGE_ELEMENT:
          log.element_messages.push_back(gst_structure_copy(gst_message_get_structure(m)));
          break;
        default: break;
      }
      gst_message_unref(m);
    }
    return log;
  }
  std::string get_string(const char* prop) {
    gchar* s = nullptr;
    g_object_get(el_, prop, &s, nullptr);
    std::string r = s ? s : "";
    g_free(s);
    return r;
  }

 private:
  GstElement* el_ = nullptr;
  GstBus* bus_ = nullptr;
  GstHarness* vis_ = nullptr;
  GstHarness* ir_ = nullptr;
};

std::string fmt_name(GstVideoFormat f) { return gst_video_format_to_string(f); }

}  // namespace

// --- every visible format: output format/size follow vis, bytes = core -----

class VisFormat : public ::testing::TestWithParam<GstVideoFormat> {};

TEST_P(VisFormat, OutputEqualsCoreFuse) {
  const GstVideoFormat vf = GetParam();
  TwoPads t(model_light());
  t.start(caps_string(vf, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, W, H));
  for (int i = 0; i < 2; ++i) {
    Frame vis = make_vis(msrs_vis(W, H, i), vf);
    Frame ir = make_ir(msrs_ir(W, H, i), GST_VIDEO_FORMAT_GRAY8);
    t.push_pair(ir, vis, i);
    GstVideoInfo info;
    Frame out = t.pull(&info);
    EXPECT_EQ(vf, GST_VIDEO_INFO_FORMAT(&info)) << "output format must follow the visible pad";
    EXPECT_EQ(W, GST_VIDEO_INFO_WIDTH(&info));
    EXPECT_EQ(H, GST_VIDEO_INFO_HEIGHT(&info));
    EXPECT_EQ(30, GST_VIDEO_INFO_FPS_N(&info));
    Frame want = reference_fuse(model_light(), "", ir, vis);
    EXPECT_EQ(0, max_abs_diff(out, want)) << fmt_name(vf) << " frame " << i;
    EXPECT_FALSE(equal(out, vis)) << "the output should differ from the visible input";
  }
  EXPECT_TRUE(t.messages().errors.empty());
}

INSTANTIATE_TEST_SUITE_P(AllVisFormats, VisFormat,
                         ::testing::Values(GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR,
                                           GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_RGBA,
                                           GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12),
                         [](const auto& info) { return fmt_name(info.param); });

// The searched real-time network (2x2 space-to-depth, blend head), selected by
// name as users do: the element's bytes are core's.
TEST(SearchedModel, ShippedRealTimeModelByNameEqualsCoreFuse) {
  TwoPads t("ivif-rt");
  t.start(caps_string(GST_VIDEO_FORMAT_I420, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, W, H));
  Frame vis = make_vis(msrs_vis(W, H), GST_VIDEO_FORMAT_I420);
  Frame ir = make_ir(msrs_ir(W, H), GST_VIDEO_FORMAT_GRAY8);
  t.push_pair(ir, vis, 0);
  Frame out = t.pull();
  EXPECT_EQ(0, max_abs_diff(out, reference_fuse("ivif-rt", "", ir, vis)));
  EXPECT_FALSE(equal(out, vis)) << "the output should differ from the visible input";
  EXPECT_TRUE(t.messages().errors.empty());
}

// An application that pushes one pair and waits for its output before the
// next (not live, threads=2: frames may be in flight) gets every output at
// once: a frame is held back only while the next pair is already queued.
TEST(Element, OnePairAtATimeWithTwoThreadsGetsEachOutput) {
  TwoPads t("ivif-rt");
  g_object_set(t.element(), "threads", 2, nullptr);
  gst_harness_set_live(t.vis(), FALSE);  // a harness says live by default
  gst_harness_set_live(t.ir(), FALSE);
  t.start(caps_string(GST_VIDEO_FORMAT_NV12, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, W, H));
  for (int i = 0; i < 4; ++i) {
    Frame vis = make_vis(msrs_vis(W, H, i), GST_VIDEO_FORMAT_NV12);
    Frame ir = make_ir(msrs_ir(W, H, i), GST_VIDEO_FORMAT_GRAY8);
    t.push_pair(ir, vis, i);
    Frame out = t.pull();
    EXPECT_EQ(0, max_abs_diff(out, reference_fuse("ivif-rt", "", ir, vis))) << "frame " << i;
  }
  int frames = 0;
  g_object_get(t.element(), "frames-in-flight", &frames, nullptr);
  EXPECT_EQ(2, frames) << "not live with two threads: the frames went to the frame workers";
  EXPECT_TRUE(t.messages().errors.empty());
}

// --- every IR format ------------------------------------------------------

class IrFormat : public ::testing::TestWithParam<GstVideoFormat> {};

TEST_P(IrFormat, OutputEqualsCoreFuse) {
  const GstVideoFormat irf = GetParam();
  TwoPads t(model_light());
  // BGR visible: an RGB IR frame must still be read with its own order.
  t.start(caps_string(GST_VIDEO_FORMAT_BGR, W, H), caps_string(irf, W, H));
  Frame vis = make_vis(msrs_vis(W, H), GST_VIDEO_FORMAT_BGR);
  Frame ir = make_ir(msrs_ir(W, H), irf);
  t.push_pair(ir, vis, 0);
  Frame out = t.pull();
  EXPECT_EQ(0, max_abs_diff(out, reference_fuse(model_light(), "", ir, vis))) << fmt_name(irf);
}

INSTANTIATE_TEST_SUITE_P(AllIrFormats, IrFormat,
                         ::testing::Values(GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_GRAY16_LE, GST_VIDEO_FORMAT_RGB,
                                           GST_VIDEO_FORMAT_BGR),
                         [](const auto& info) { return fmt_name(info.param); });

// GRAY16_LE holding 8-bit data x257 (as a radiometric camera scaled to
// 16 bits would) must give exactly the output of the 8-bit path.
TEST(Element, Gray16TimesEqualsGray8Path) {
  for (int image : {0, 3}) {
    Frame out8, out16;
    Frame vis = make_vis(msrs_vis(W, H, image), GST_VIDEO_FORMAT_I420);
    for (GstVideoFormat irf : {GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_GRAY16_LE}) {
      TwoPads t(model_light());
      t.start(caps_string(GST_VIDEO_FORMAT_I420, W, H), caps_string(irf, W, H));
      t.push_ir(make_ir(msrs_ir(W, H, image), irf), 0);
      t.push_vis(vis, 0);
      (irf == GST_VIDEO_FORMAT_GRAY8 ? out8 : out16) = t.pull();
    }
    // If this fails by 1 while IrFormat/GRAY16_LE passes, the difference is
    // in the core (16-bit IR scaling on the CPU path), not in the element.
    EXPECT_EQ(0, max_abs_diff(out8, out16)) << "image " << image;
  }
}

// Issue 27: 16-bit IR was scaled over 0..65535 only (a camera reporting
// 7000-8000 gave 8 grey levels). ir-range=fixed and =auto stretch it with the
// core's maths (timfusion/ir_range.h); the default stays full.
TEST(Element, Gray16IrRangeFixedAndAuto) {
  Frame vis = make_vis(msrs_vis(W, H, 0), GST_VIDEO_FORMAT_GRAY8);
  cv::Mat narrow;  // 7000..8000
  msrs_ir(W, H, 0).convertTo(narrow, CV_16U, 1000.0 / 255.0, 7000);
  Frame ir{GST_VIDEO_FORMAT_GRAY16_LE, {narrow}};
  auto stretched = [&](const timfusion::IrRange& r) {
    cv::Mat m;
    timfusion::stretch_ir(narrow, r, m);
    return Frame{GST_VIDEO_FORMAT_GRAY16_LE, {m}};
  };
  const timfusion::IrRange fixed{7000, 8000};
  const timfusion::IrRange automatic = timfusion::robust_ir_range(narrow);  // the first frame sets it
  struct Case {
    const char* mode;
    Frame want;
  };
  for (const Case& c : {Case{"full", reference_fuse(model_light(), "", ir, vis)},
                        Case{"fixed", reference_fuse(model_light(), "", stretched(fixed), vis)},
                        Case{"auto", reference_fuse(model_light(), "", stretched(automatic), vis)}}) {
    TwoPads t(model_light());
    gst_util_set_object_arg(G_OBJECT(t.element()), "ir-range", c.mode);
    g_object_set(t.element(), "ir-range-min", 7000, "ir-range-max", 8000, nullptr);
    t.start(caps_string(GST_VIDEO_FORMAT_GRAY8, W, H), caps_string(GST_VIDEO_FORMAT_GRAY16_LE, W, H));
    t.push_pair(ir, vis, 0);
    EXPECT_EQ(0, max_abs_diff(t.pull(), c.want)) << c.mode;
  }
  EXPECT_GT(max_abs_diff(reference_fuse(model_light(), "", ir, vis),
                         reference_fuse(model_light(), "", stretched(fixed), vis)),
            20)
      << "the stretch must matter";
}

// --- registration -----------------------------------------------------------

TEST(Element, SmallerIrIsScaledWithIdentity) {
  TwoPads t(model_light());
  const int iw = 45, ih = 31;
  t.start(caps_string(GST_VIDEO_FORMAT_RGB, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, iw, ih, 9, 1));
  Frame vis = make_vis(msrs_vis(W, H), GST_VIDEO_FORMAT_RGB);
  Frame ir = make_ir(msrs_ir(iw, ih), GST_VIDEO_FORMAT_GRAY8);
  t.push_pair(ir, vis, 0);
  GstVideoInfo info;
  Frame out = t.pull(&info);
  EXPECT_EQ(W, GST_VIDEO_INFO_WIDTH(&info));
  EXPECT_EQ(30, GST_VIDEO_INFO_FPS_N(&info)) << "output framerate follows the visible pad, not the IR";
  EXPECT_EQ(0, max_abs_diff(out, reference_fuse(model_light(), "", ir, vis)));
}

TEST(Element, HomographyStringAndValueArrayWarpIr) {
  const std::string h = "1.1,0.02,-3,0.01,0.95,2,0,0,1";
  Frame vis = make_vis(msrs_vis(W, H), GST_VIDEO_FORMAT_GRAY8);
  Frame ir = make_ir(msrs_ir(80, 60), GST_VIDEO_FORMAT_GRAY8);
  Frame want = reference_fuse(model_light(), "", ir, vis, h);
  Frame identity = reference_fuse(model_light(), "", ir, vis);
  ASSERT_FALSE(equal(want, identity)) << "the test homography must change the result";
  for (int as_array = 0; as_array < 2; ++as_array) {
    TwoPads t(model_light());
    if (as_array) {
      // A GstValueArray of 9 doubles, as gst-launch's "<a, b, ...>" gives.
      GValue arr = G_VALUE_INIT;
      gst_value_array_init(&arr, 9);
      double v[9] = {1.1, 0.02, -3, 0.01, 0.95, 2, 0, 0, 1};
      for (double d : v) {
        GValue x = G_VALUE_INIT;
        g_value_init(&x, G_TYPE_DOUBLE);
        g_value_set_double(&x, d);
        gst_value_array_append_and_take_value(&arr, &x);
      }
      g_object_set_property(G_OBJECT(t.element()), "ir-homography", &arr);
      g_value_unset(&arr);
    } else {
      g_object_set(t.element(), "ir-homography", h.c_str(), nullptr);
    }
    t.start(caps_string(GST_VIDEO_FORMAT_GRAY8, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, 80, 60));
    t.push_pair(ir, vis, 0);
    EXPECT_EQ(0, max_abs_diff(t.pull(), want)) << (as_array ? "GstValueArray" : "string");
  }
}

// --- time alignment policies -------------------------------------------------

// IR slower than the visible camera: until a newer IR frame covers the
// output time, the last IR frame is fused again with each visible frame.
TEST(Element, LastIrFrameIsRepeated) {
  TwoPads t(model_light());
  t.start(caps_string(GST_VIDEO_FORMAT_RGB, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, W, H, 10, 1));
  const GstClockTime ir_dur = GST_SECOND / 10;
  Frame ir0 = make_ir(msrs_ir(W, H, 1), GST_VIDEO_FORMAT_GRAY8);
  Frame ir1 = make_ir(msrs_ir(W, H, 4), GST_VIDEO_FORMAT_GRAY8);
  std::vector<Frame> vis;
  for (int i = 0; i < 4; ++i) vis.push_back(make_vis(msrs_vis(W, H, i), GST_VIDEO_FORMAT_RGB));
  ASSERT_EQ(GST_FLOW_OK, gst_harness_push(t.ir(), to_buffer(ir0, 0, ir_dur)));
  t.push_vis(vis[0], 0);
  EXPECT_EQ(0, max_abs_diff(t.pull(), reference_fuse(model_light(), "", ir0, vis[0])));
  // The next IR frame starts at 100 ms: visible frames 1 and 2 (33..100 ms)
  // still get IR frame 0, frame 3 (100..133 ms) gets IR frame 1.
  ASSERT_EQ(GST_FLOW_OK, gst_harness_push(t.ir(), to_buffer(ir1, ir_dur, ir_dur)));
  for (int i = 1; i < 4; ++i) {
    t.push_vis(vis[i], i);
    const Frame& ir = i < 3 ? ir0 : ir1;
    EXPECT_EQ(0, max_abs_diff(t.pull(), reference_fuse(model_light(), "", ir, vis[i]))) << "visible frame " << i;
  }
}

// Live, the IR camera has sent nothing yet: on the aggregator's timeout the
// visible frame is fused with a black IR frame (documented policy).
TEST(Element, NoIrYetFusesWithBlackIr) {
  TwoPads t(model_light());
  t.start(caps_string(GST_VIDEO_FORMAT_GRAY8, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, W, H));
  Frame vis = make_vis(msrs_vis(W, H), GST_VIDEO_FORMAT_GRAY8);
  t.push_vis(vis, 0);
  // The harness is live with a test clock: release the aggregator's wait.
  GstBuffer* out = nullptr;
  for (int i = 0; i < 200 && !out; ++i) {
    gst_harness_crank_single_clock_wait(t.ir()) || gst_harness_crank_single_clock_wait(t.vis());
    out = gst_harness_try_pull(t.vis());
    if (!out) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(nullptr, out) << "the timeout did not produce an output without IR";
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_GRAY8, W, H);
  Frame got = from_buffer(out, info);
  gst_buffer_unref(out);
  Frame black = make_ir(cv::Mat::zeros(H, W, CV_8UC1), GST_VIDEO_FORMAT_GRAY8);
  EXPECT_EQ(0, max_abs_diff(got, reference_fuse(model_light(), "", black, vis)));
}

// --- model handling ---------------------------------------------------------

TEST(Element, ReportsActualDeviceModelAndInferenceTime) {
  {
    GstElement* fresh = gst_element_factory_make("timfusion", nullptr);
    ASSERT_NE(nullptr, fresh);
    gchar* dev = nullptr;
    g_object_get(fresh, "actual-device", &dev, nullptr);
    EXPECT_STREQ("", dev) << "nothing is loaded in NULL";
    g_free(dev);
    gst_object_unref(fresh);
  }
  TwoPads t(model_light());
  t.start(caps_string(GST_VIDEO_FORMAT_GRAY8, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, W, H));
  EXPECT_EQ("cpu", t.get_string("actual-device")) << "this machine has no usable GPU";
  EXPECT_EQ(model_light(), t.get_string("actual-model"));
  t.push_ir(make_ir(msrs_ir(W, H), GST_VIDEO_FORMAT_GRAY8), 0);
  t.push_vis(make_vis(msrs_vis(W, H), GST_VIDEO_FORMAT_GRAY8), 0);
  t.pull();
  double ms = 0;
  g_object_get(t.element(), "inference-ms", &ms, nullptr);
  EXPECT_GT(ms, 0.0);
  BusLog log = t.messages();
  EXPECT_EQ(1, log.count_element("timfusion-model-loaded"));
  // The engine's resolved description travels with it (issue 28): the file,
  // device, precision and where frames run, in one line.
  for (auto* s : log.element_messages) {
    if (!gst_structure_has_name(s, "timfusion-model-loaded")) continue;
    const gchar* engine = gst_structure_get_string(s, "engine");
    ASSERT_NE(nullptr, engine);
    const std::string text = engine;
    EXPECT_EQ(0u, text.find(model_light() + " on cpu, fp32; ")) << text;
    EXPECT_TRUE(text.find("shared CPU") != std::string::npos || text.find("intra-op threads") != std::string::npos)
        << text;
  }
}

// A weight file without metadata loads with arch=ivif-light and gives the
// same output as the same tensors with metadata.
TEST(Element, NoMetadataFileWithArch) {
  TwoPads t(model_light_nometa(), "ivif-light");
  t.start(caps_string(GST_VIDEO_FORMAT_RGB, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, W, H));
  Frame vis = make_vis(msrs_vis(W, H), GST_VIDEO_FORMAT_RGB);
  Frame ir = make_ir(msrs_ir(W, H), GST_VIDEO_FORMAT_GRAY8);
  t.push_pair(ir, vis, 0);
  EXPECT_EQ(0, max_abs_diff(t.pull(), reference_fuse(model_light(), "", ir, vis)));
}

static bool wait_for_model(TwoPads& t, const std::string& path) {
  for (int i = 0; i < 6000; ++i) {  // up to 60 s on a loaded machine
    if (t.get_string("actual-model") == path) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(Element, ModelSwapWhilePlaying) {
  TwoPads t(model_light());
  t.start(caps_string(GST_VIDEO_FORMAT_RGB, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, W, H));
  int i = 0;
  auto step = [&](int image) {
    Frame vis = make_vis(msrs_vis(W, H, image), GST_VIDEO_FORMAT_RGB);
    Frame ir = make_ir(msrs_ir(W, H, image), GST_VIDEO_FORMAT_GRAY8);
    t.push_pair(ir, vis, i);
    ++i;
    return std::make_tuple(t.pull(), ir, vis);
  };
  {
    auto [out, ir, vis] = step(0);
    EXPECT_EQ(0, max_abs_diff(out, reference_fuse(model_light(), "", ir, vis)));
  }
  g_object_set(t.element(), "model", model_full_c8().c_str(), nullptr);
  ASSERT_TRUE(wait_for_model(t, model_full_c8())) << "the new model was never swapped in";
  for (int image : {1, 0}) {
    auto [out, ir, vis] = step(image);
    Frame want = reference_fuse(model_full_c8(), "", ir, vis);
    EXPECT_EQ(0, max_abs_diff(out, want)) << "output must come from the new model";
    EXPECT_NE(0, max_abs_diff(out, reference_fuse(model_light(), "", ir, vis)));
  }
  BusLog log = t.messages();
  EXPECT_TRUE(log.errors.empty());
  EXPECT_TRUE(log.warnings.empty());
  int swaps = 0;
  for (auto* s : log.element_messages) {
    gboolean swap = FALSE;
    if (gst_structure_has_name(s, "timfusion-model-loaded") && gst_structure_get_boolean(s, "swap", &swap) && swap)
      ++swaps;
  }
  EXPECT_EQ(1, swaps);
}

TEST(Element, BadModelSwapKeepsCurrentModelAndWarns) {
  TwoPads t(model_light());
  t.start(caps_string(GST_VIDEO_FORMAT_GRAY8, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, W, H));
  const std::string bad = "/nonexistent/dir/broken.safetensors";
  g_object_set(t.element(), "model", bad.c_str(), nullptr);
  std::vector<std::string> warnings;
  for (int k = 0; k < 6000 && warnings.empty(); ++k) {
    warnings = t.messages().warnings;
    if (warnings.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(1u, warnings.size());
  EXPECT_NE(std::string::npos, warnings[0].find(bad)) << warnings[0];
  EXPECT_EQ(model_light(), t.get_string("actual-model"));
  Frame vis = make_vis(msrs_vis(W, H), GST_VIDEO_FORMAT_GRAY8);
  Frame ir = make_ir(msrs_ir(W, H), GST_VIDEO_FORMAT_GRAY8);
  t.push_pair(ir, vis, 0);
  EXPECT_EQ(0, max_abs_diff(t.pull(), reference_fuse(model_light(), "", ir, vis)));
}

// Issue 13: a calibration file with a 30,000-character line crashed the
// element (the regex parser overflowed the stack), /dev/zero read 4.3 GB and
// a FIFO hung it, also when set while PLAYING. Each is now a warning and the
// current homography stays.
TEST(Element, HostileCalibrationFilesWhilePlayingWarnAndKeepFusing) {
  const std::string dir = tftest::temp_dir("gst-hostile-calib");
  {
    std::ofstream(dir + "/long.conf") << "ir-homography=1;0;0;0;1;0;0;0;1" << std::string(30000, ' ') << "x\n";
  }
  const std::string fifo = dir + "/fifo.conf";
  ASSERT_EQ(0, mkfifo(fifo.c_str(), 0600));
  TwoPads t(model_light());
  t.start(caps_string(GST_VIDEO_FORMAT_GRAY8, W, H), caps_string(GST_VIDEO_FORMAT_GRAY8, W, H));
  Frame vis = make_vis(msrs_vis(W, H), GST_VIDEO_FORMAT_GRAY8);
  Frame ir = make_ir(msrs_ir(W, H), GST_VIDEO_FORMAT_GRAY8);
  int i = 0;
  for (const std::string& file : {dir + "/long.conf", std::string("/dev/zero"), fifo}) {
    g_object_set(t.element(), "calibration-file", file.c_str(), nullptr);
    auto warnings = t.messages().warnings;
    ASSERT_EQ(1u, warnings.size()) << file;
    EXPECT_NE(std::string::npos, warnings[0].find(file)) << warnings[0];
    t.push_pair(ir, vis, i);
    ++i;
    EXPECT_EQ(0, max_abs_diff(t.pull(), reference_fuse(model_light(), "", ir, vis))) << file;
  }
}
