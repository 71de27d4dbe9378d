// Temporal stability (`temporal`, `temporal-strength`): real pipelines with
// generated noisy video. Static parts calm down, moving content does not
// smear, frames in flight get the same result as one at a time, and a
// flushing seek makes the element forget the past.
#include <gtest/gtest.h>

#include <gst/app/gstappsink.h>

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "gst_test_util.h"

using namespace tfgst_test;
namespace fs = std::filesystem;

namespace {

constexpr int W = 160, H = 120, FRAMES = 16, SIDE = 20;

cv::Rect object_at(int t) { return {10 + 4 * t, 50, SIDE, SIDE}; }

cv::Mat noisy(const cv::Mat& clean, double sigma, cv::RNG& rng) {
  cv::Mat noise(clean.size(), CV_MAKETYPE(CV_32F, clean.channels())), f, out;
  rng.fill(noise, cv::RNG::NORMAL, 0, sigma);
  clean.convertTo(f, CV_32F);
  cv::Mat sum = f + noise;
  sum.convertTo(out, CV_8U);
  return out;
}

// A static MSRS scene with a warm square moving 4 px per frame; visible noise
// sigma 6, IR sigma 2 (sigma 0: the clean frames). PNGs in dir/{ir,vis}.
void write_sequence(const fs::path& dir, double vis_sigma, double ir_sigma) {
  cv::RNG rng(11);
  const cv::Mat vis = msrs_vis(W, H, 1), ir = msrs_ir(W, H, 1);
  fs::create_directories(dir / "ir");
  fs::create_directories(dir / "vis");
  for (int t = 0; t < FRAMES; ++t) {
    cv::Mat v = vis.clone(), i = ir.clone();
    i(object_at(t)).setTo(230);
    cv::RNG texture(5);  // visibly textured, the same texture every frame: the object moves, its look does not
    texture.fill(v(object_at(t)), cv::RNG::UNIFORM, 0, 255);
    char name[32];
    std::snprintf(name, sizeof name, "%06d.png", t);
    cv::imwrite((dir / "vis" / name).string(), vis_sigma > 0 ? noisy(v, vis_sigma, rng) : v);
    cv::imwrite((dir / "ir" / name).string(), ir_sigma > 0 ? noisy(i, ir_sigma, rng) : i);
  }
}

// The fused luma of each frame of the sequence in dir.
std::vector<cv::Mat> play(const fs::path& dir, const std::string& props) {
  auto src = [&](const char* cam) {
    return "multifilesrc location=" + (dir / cam / "%06d.png").string() + " index=0 stop-index=" +
           std::to_string(FRAMES - 1) + " caps=image/png,framerate=30/1 ! pngdec ! videoconvert ! f." + cam + " ";
  };
  RunResult r;
  run_pipeline(src("vis") + src("ir") + "timfusion name=f model=ivif-rt " + props +
                   " ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=out sync=false",
               r);
  EXPECT_TRUE(r.bus.eos) << joined(r.bus.errors);
  EXPECT_TRUE(r.bus.errors.empty()) << joined(r.bus.errors);
  std::vector<cv::Mat> frames;
  if (!r.out.caps) return frames;
  GstVideoInfo info;
  gst_video_info_from_caps(&info, r.out.caps);
  for (GstBuffer* b : r.out.buffers) frames.push_back(from_buffer(b, info).planes[0].clone());
  return frames;
}

// mean |O_t - O_t-1| where mask is set, over the frames.
double flicker(const std::vector<cv::Mat>& seq, const cv::Mat& mask) {
  double sum = 0;
  for (size_t t = 1; t < seq.size(); ++t) {
    cv::Mat d;
    cv::absdiff(seq[t], seq[t - 1], d);
    sum += cv::mean(d, mask)[0];
  }
  return sum / static_cast<double>(seq.size() - 1);
}

double object_error(const std::vector<cv::Mat>& seq, const std::vector<cv::Mat>& clean) {
  double sum = 0;
  for (int t = 1; t < FRAMES; ++t) {
    cv::Mat d;
    cv::absdiff(seq[static_cast<size_t>(t)](object_at(t)), clean[static_cast<size_t>(t)](object_at(t)), d);
    sum += cv::mean(d)[0];
  }
  return sum / (FRAMES - 1);
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("timfusion-temporal-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST(Temporal, StaticNoiseCalmsDownMovingContentDoesNot) {
  TempDir dir;
  write_sequence(dir.path / "noisy", 6, 2);
  write_sequence(dir.path / "clean", 0, 0);
  const auto by_default = play(dir.path / "noisy", "threads=1");
  const auto per_frame = play(dir.path / "noisy", "threads=1 temporal=false");
  const auto clean = play(dir.path / "clean", "threads=1 temporal=false");
  const auto in_flight = play(dir.path / "noisy", "threads=2");
  for (const auto* s : {&by_default, &per_frame, &clean, &in_flight}) ASSERT_EQ(static_cast<size_t>(FRAMES), s->size());
  cv::Mat still(H, W, CV_8UC1, cv::Scalar(255));
  for (int t = 0; t < FRAMES; ++t) still((object_at(t) + cv::Size(8, 8) - cv::Point(4, 4)) & cv::Rect(0, 0, W, H)).setTo(0);
  const double calm = flicker(by_default, still), shimmer = flicker(per_frame, still);
  EXPECT_LT(calm, 0.5 * shimmer) << "static region: " << calm << " vs per-frame " << shimmer;
  const double e_default = object_error(by_default, clean), e_per_frame = object_error(per_frame, clean);
  EXPECT_LT(e_default, 1.3 * e_per_frame) << "the moving object: " << e_default << " vs per-frame " << e_per_frame;
  // The first frame has no past: as fused.
  EXPECT_EQ(0.0, cv::norm(by_default[0], per_frame[0], cv::NORM_INF));
  // Frames in flight (threads=2, not live) are filtered in output order: as one at a time.
  for (int t = 0; t < FRAMES; ++t) EXPECT_LE(cv::norm(by_default[t], in_flight[t], cv::NORM_INF), 1.0) << t;
}

TEST(Temporal, PropertiesAreDocumentedAndBounded) {
  GstElement* f = gst_element_factory_make("timfusion", nullptr);
  ASSERT_NE(nullptr, f);
  gboolean on = FALSE;
  double strength = 0;
  g_object_get(f, "temporal", &on, "temporal-strength", &strength, nullptr);
  EXPECT_TRUE(on) << "on by default for video";
  EXPECT_DOUBLE_EQ(0.75, strength);
  GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(f), "temporal-strength");
  ASSERT_NE(nullptr, spec);
  EXPECT_DOUBLE_EQ(0.95, G_PARAM_SPEC_DOUBLE(spec)->maximum);
  EXPECT_NE(nullptr, std::strstr(g_param_spec_get_blurb(g_object_class_find_property(G_OBJECT_GET_CLASS(f), "temporal")),
                                 "flushing seeks"));
  gst_object_unref(f);
}

namespace {

// Spatial standard deviation of each output, for the seek test.
struct Collected {
  std::mutex mu;
  std::vector<double> spread;
  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return spread.size();
  }
};

}  // namespace

// videotestsrc's snow: every frame new noise. Filtered, the output's spatial
// spread drops frame after frame; the first frame after a flushing seek has
// no past, so its spread is back at that of a single frame.
TEST(Temporal, FlushingSeekForgetsThePast) {
  const std::string desc =
      "videotestsrc num-buffers=400 pattern=snow ! " + caps_string(GST_VIDEO_FORMAT_GRAY8, W, H) +
      " ! f.vis videotestsrc num-buffers=400 pattern=black ! " + caps_string(GST_VIDEO_FORMAT_GRAY8, W, H) +
      " ! f.ir timfusion name=f model=ivif-rt threads=1 ! appsink name=out sync=false";
  GstElement* p = gst_parse_launch(desc.c_str(), nullptr);
  ASSERT_NE(nullptr, p);
  Collected seen;
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "out");
  GstAppSinkCallbacks cb{};
  cb.new_sample = [](GstAppSink* s, gpointer user) -> GstFlowReturn {
    GstSample* sample = gst_app_sink_pull_sample(s);
    if (!sample) return GST_FLOW_OK;
    GstVideoInfo info;
    gst_video_info_from_caps(&info, gst_sample_get_caps(sample));
    const cv::Mat y = from_buffer(gst_sample_get_buffer(sample), info).planes[0];
    cv::Scalar mean, sd;
    cv::meanStdDev(y, mean, sd);
    auto* c = static_cast<Collected*>(user);
    std::lock_guard<std::mutex> lock(c->mu);
    c->spread.push_back(sd[0]);
    gst_sample_unref(sample);
    return GST_FLOW_OK;
  };
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, &seen, nullptr);
  gst_object_unref(sink);
  ASSERT_NE(GST_STATE_CHANGE_FAILURE, gst_element_set_state(p, GST_STATE_PLAYING));
  const double t0 = now_s();
  while (seen.count() < 20 && now_s() - t0 < 60) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(gst_element_seek_simple(p, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH, 0));
  const size_t restart = seen.count();
  BusLog log;
  drain_bus(p, log, 120);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  EXPECT_TRUE(log.errors.empty()) << joined(log.errors);
  std::lock_guard<std::mutex> lock(seen.mu);
  ASSERT_GT(seen.spread.size(), restart + 5);
  const double single = seen.spread[0];
  EXPECT_LT(seen.spread[restart - 1], 0.7 * single) << "before the seek the past calms the snow";
  EXPECT_GT(seen.spread[restart], 0.9 * single) << "the first frame after the seek has no past";
  EXPECT_LT(seen.spread[restart + 5], 0.7 * single) << "and the filter works again after it";
}
