// timfusion element conventions (issue 14): an unlinked sink pad ends in an
// error naming it instead of a silent hang, another output size fixed by
// downstream is served by scaling, pad properties are reachable from
// gst-launch, gst-inspect's defaults are the real ones, and actual-model is
// the loaded file.
#include <gtest/gtest.h>

#include <gst/video/video.h>

#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <string>

#include "gst_test_util.h"
#include "test_support.h"

using namespace tfgst_test;
namespace fs = std::filesystem;

namespace {

std::string src(const std::string& pad, GstVideoFormat f, int w, int h, int n) {
  return "videotestsrc num-buffers=" + std::to_string(n) + " pattern=ball ! " + caps_string(f, w, h, 10, 1) +
         " ! f." + pad + " ";
}

std::string fusion() { return "timfusion name=f model=\"" + model_light() + "\" "; }

Frame output_frame(const Output& out, size_t i) {
  GstVideoInfo info;
  gst_video_info_from_caps(&info, out.caps);
  return from_buffer(out.buffers.at(i), info);
}

// Every readable+writable property owned by `owner` (or its subtypes) has its param spec default.
void expect_defaults_are_real(GObject* obj, GType owner, const std::string& what) {
  guint n = 0;
  GParamSpec** specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(obj), &n);
  int checked = 0;
  for (guint i = 0; i < n; ++i) {
    GParamSpec* p = specs[i];
    if (!g_type_is_a(p->owner_type, owner)) continue;
    if ((p->flags & G_PARAM_READWRITE) != G_PARAM_READWRITE) continue;
    GValue v = G_VALUE_INIT;
    g_value_init(&v, p->value_type);
    g_object_get_property(obj, p->name, &v);
    EXPECT_EQ(0, g_param_values_cmp(p, &v, g_param_spec_get_default_value(p)))
        << what << "::" << p->name << " is " << g_strdup_value_contents(&v) << ", gst-inspect says "
        << g_strdup_value_contents(g_param_spec_get_default_value(p));
    g_value_unset(&v);
    ++checked;
  }
  g_free(specs);
  EXPECT_GT(checked, 0) << what;
}

}  // namespace

TEST(ElementConventions, UnlinkedSinkPadIsAnErrorNamingIt) {
  RunResult r;
  const double t0 = now_s();
  run_pipeline(src("vis", GST_VIDEO_FORMAT_I420, 64, 48, 3) + fusion() + "! appsink name=out sync=false", r, 60);
  const double took = now_s() - t0;
  ASSERT_TRUE(r.parsed) << r.parse_error;
  ASSERT_FALSE(r.bus.errors.empty()) << "the pipeline waited silently for the unlinked ir pad";
  const std::string e = joined(r.bus.errors);
  EXPECT_NE(e.find("\"ir\""), std::string::npos) << e;
  EXPECT_NE(e.find("not linked"), std::string::npos) << e;
  EXPECT_LT(took, 30.0) << "the message must come within seconds, not at the test's timeout";
}

TEST(ElementConventions, LinkedPadsGetNoUnlinkedMessage) {
  RunResult r;  // runs past the 5 s check: a live 10 fps pipeline of 70 frames
  run_pipeline("videotestsrc is-live=true num-buffers=70 ! " + caps_string(GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 1) +
                   " ! f.vis videotestsrc is-live=true num-buffers=70 ! " +
                   caps_string(GST_VIDEO_FORMAT_GRAY8, 32, 24, 10, 1) + " ! f.ir " + fusion() +
                   "! appsink name=out sync=false",
               r, 60);
  EXPECT_TRUE(r.bus.errors.empty()) << joined(r.bus.errors);
  EXPECT_TRUE(r.bus.warnings.empty()) << joined(r.bus.warnings);
  EXPECT_TRUE(r.bus.eos);
}

// Downstream fixes 32x24 while the visible camera gives 64x48: the fused frame is
// scaled (as compositor does), equal to the unscaled output scaled by OpenCV.
TEST(ElementConventions, DownstreamSizeIsServedByScaling) {
  for (GstVideoFormat f : {GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12}) {
    const std::string inputs = src("vis", f, 64, 48, 2) + src("ir", GST_VIDEO_FORMAT_GRAY8, 64, 48, 2) + fusion();
    RunResult full, small;
    run_pipeline(inputs + "! appsink name=out sync=false", full);
    run_pipeline(inputs + "! video/x-raw,width=32,height=24 ! appsink name=out sync=false", small);
    ASSERT_TRUE(small.bus.errors.empty()) << gst_video_format_to_string(f) << ": " << joined(small.bus.errors);
    ASSERT_EQ(2u, small.out.buffers.size()) << gst_video_format_to_string(f);
    ASSERT_EQ(2u, full.out.buffers.size()) << gst_video_format_to_string(f);
    GstVideoInfo info;
    ASSERT_TRUE(gst_video_info_from_caps(&info, small.out.caps));
    EXPECT_EQ(32, GST_VIDEO_INFO_WIDTH(&info));
    EXPECT_EQ(24, GST_VIDEO_INFO_HEIGHT(&info));
    EXPECT_EQ(f, GST_VIDEO_INFO_FORMAT(&info));
    const Frame big = output_frame(full.out, 1), got = output_frame(small.out, 1);
    ASSERT_EQ(big.planes.size(), got.planes.size());
    for (size_t p = 0; p < big.planes.size(); ++p) {
      cv::Mat want;
      cv::resize(big.planes[p], want, got.planes[p].size(), 0, 0, cv::INTER_AREA);
      EXPECT_LE(cv::norm(want, got.planes[p], cv::NORM_INF), 1)
          << gst_video_format_to_string(f) << " plane " << p;
    }
  }
}

TEST(ElementConventions, PadPropertiesAreReachableFromGstLaunch) {
  GError* err = nullptr;
  GstElement* f = gst_parse_launch(
      "timfusion ir::max-last-buffer-repeat=123456789 vis::repeat-after-eos=false ir::zorder=3", &err);
  ASSERT_TRUE(f) << (err ? err->message : "");
  ASSERT_EQ(nullptr, err) << err->message;
  GstPad* ir = gst_element_get_static_pad(f, "ir");
  GstPad* vis = gst_element_get_static_pad(f, "vis");
  guint64 repeat = 0;
  guint zorder = 0;
  gboolean vis_repeat = TRUE, ir_repeat = FALSE;
  g_object_get(ir, "max-last-buffer-repeat", &repeat, "zorder", &zorder, "repeat-after-eos", &ir_repeat, nullptr);
  g_object_get(vis, "repeat-after-eos", &vis_repeat, nullptr);
  EXPECT_EQ(123456789u, repeat);
  EXPECT_EQ(3u, zorder);
  EXPECT_FALSE(vis_repeat);
  EXPECT_TRUE(ir_repeat) << "untouched: its default";
  gst_object_unref(ir);
  gst_object_unref(vis);
  gst_object_unref(f);
}

TEST(ElementConventions, InspectDefaultsAreTheRealOnes) {
  GstElement* f = gst_element_factory_make("timfusion", nullptr);
  ASSERT_TRUE(f);
  expect_defaults_are_real(G_OBJECT(f), G_OBJECT_TYPE(f), "timfusion");
  for (const char* name : {"ir", "vis"}) {
    GstPad* pad = gst_element_get_static_pad(f, name);
    // The pad class is the one of the element's pad template (gst-inspect shows its properties).
    GstPadTemplate* templ = gst_element_get_pad_template(f, name);
    EXPECT_EQ(GST_PAD_TEMPLATE_GTYPE(templ), G_OBJECT_TYPE(pad)) << name;
    expect_defaults_are_real(G_OBJECT(pad), g_type_from_name("GstAggregatorPad"), name);
    gboolean repeat = FALSE;
    g_object_get(pad, "repeat-after-eos", &repeat, nullptr);
    EXPECT_TRUE(repeat) << name << ": both pads repeat their last frame after EOS by default";
    gst_object_unref(pad);
  }
  gst_object_unref(f);
}

TEST(ElementConventions, ActualModelIsTheLoadedFile) {
  GstElement* f = gst_element_factory_make("timfusion", nullptr);
  ASSERT_TRUE(f);
  g_object_set(f, "model", "ivif-light", nullptr);  // a shipped model's name
  ASSERT_EQ(GST_STATE_CHANGE_SUCCESS, gst_element_set_state(f, GST_STATE_READY));
  gchar* actual = nullptr;
  g_object_get(f, "actual-model", &actual, nullptr);
  ASSERT_TRUE(actual);
  const fs::path p(actual);
  EXPECT_TRUE(p.is_absolute()) << actual;
  EXPECT_EQ("ivif-light.safetensors", p.filename().string()) << actual;
  EXPECT_TRUE(fs::is_regular_file(p)) << actual;
  g_free(actual);
  gst_element_set_state(f, GST_STATE_NULL);
  gst_object_unref(f);
}
