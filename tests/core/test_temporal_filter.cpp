// The noise level estimator and the temporal filter (no LibTorch): generated
// frames with known noise and known motion.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>
#include <opencv2/imgproc.hpp>

#include "timfusion/error.h"
#include "timfusion/noise_level.h"
#include "timfusion/temporal_filter.h"
#include "timfusion/torch/networks.h"

using namespace timfusion;

namespace {

// A scene with structure: a ramp, a bright disc and a few lines.
cv::Mat scene(int w = 160, int h = 120) {
  cv::Mat m(h, w, CV_8UC1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at<uint8_t>(y, x) = static_cast<uint8_t>(60 + x * 100 / w);
  cv::circle(m, {w / 3, h / 2}, h / 5, cv::Scalar(210), cv::FILLED);
  for (int i = 0; i < 4; ++i) cv::line(m, {w / 2 + 10 * i, 5}, {w / 2 + 10 * i, h - 5}, cv::Scalar(20), 1);
  return m;
}

cv::Mat with_noise(const cv::Mat& clean, double sigma, cv::RNG& rng) {
  cv::Mat noise(clean.size(), CV_32F), out;
  rng.fill(noise, cv::RNG::NORMAL, 0, sigma);
  cv::Mat f;
  clean.convertTo(f, CV_32F);
  cv::add(f, noise, f);
  f.convertTo(out, CV_8U);  // rounds and saturates, as a camera
  return out;
}

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b, const cv::Mat& mask = cv::Mat()) {
  cv::Mat d;
  cv::absdiff(a, b, d);
  return cv::mean(d, mask)[0];
}

}  // namespace

TEST(NoiseLevel, MeasuresTheNoiseNotTheScene) {
  cv::RNG rng(7);
  const cv::Mat clean = scene(320, 240);
  EXPECT_LT(noise_level(clean), 0.3);
  for (double sigma : {3.0, 6.0, 10.0}) EXPECT_NEAR(noise_level(with_noise(clean, sigma, rng)), sigma, 0.1 * sigma);
  EXPECT_EQ(noise_level(cv::Mat::zeros(2, 2, CV_8UC1)), 0.0);
  // 16-bit (a thermal camera's GRAY16, value * 257): the same level in grey levels of 255.
  cv::Mat noisy8 = with_noise(clean, 6.0, rng), noisy16;
  noisy8.convertTo(noisy16, CV_16U, 257);
  EXPECT_NEAR(noise_level(noisy16), noise_level(noisy8), 0.05);
  EXPECT_THROW(noise_level(cv::Mat::zeros(10, 10, CV_32F)), Error);
}

// The networks' version (LibTorch, [0,1] units), the CPU frame path's float
// version and this one agree on 8-bit images: the detail head and the
// element's filter see the same noise.
TEST(NoiseLevel, AgreesWithTheNetworksEstimate) {
  c10::InferenceMode guard;
  cv::RNG rng(8);
  for (double sigma : {0.0, 2.0, 7.0}) {
    cv::Mat img = with_noise(scene(200, 150), sigma, rng), f;
    img.convertTo(f, CV_32F, 1 / 255.0);
    auto t = torch::from_blob(f.data, {1, 1, f.rows, f.cols}, torch::kFloat32);
    EXPECT_NEAR(nn::coring_threshold(t, 0, 1).item<double>() * 255, noise_level(img), 1e-3) << sigma;
    // The CPU frame path's float version (the same loop on the network's input).
    EXPECT_NEAR(noise_level_unit(f) * 255, noise_level(img), 1e-3) << sigma;
  }
  EXPECT_THROW(noise_level_unit(cv::Mat::zeros(10, 10, CV_8U)), Error);
  EXPECT_EQ(noise_level_unit(cv::Mat::zeros(2, 2, CV_32F)), 0.0);
}

// A static noisy scene: the filtered video changes much less from frame to
// frame than the per-frame input, and stays unbiased.
TEST(TemporalFilter, StaticNoiseIsAveragedAway) {
  cv::RNG rng(1);
  const cv::Mat ir_clean = scene(), vis_clean = 255 - scene();
  TemporalFilter filter;
  cv::Mat previous, previous_in;
  double change_in = 0, change_out = 0, mean_in = 0, mean_out = 0;
  const int frames = 30;
  for (int t = 0; t < frames; ++t) {
    cv::Mat ir = with_noise(ir_clean, 2, rng), vis = with_noise(vis_clean, 6, rng);
    cv::Mat fused;
    cv::addWeighted(ir, 0.5, vis, 0.5, 0, fused);  // a stand-in "fusion": noise passes straight through
    cv::Mat in = fused.clone();
    filter.apply(ir, vis, fused);
    if (t >= 10) {  // after the filter has settled
      change_in += mean_abs_diff(in, previous_in);
      change_out += mean_abs_diff(fused, previous);
      mean_in += cv::mean(in)[0];
      mean_out += cv::mean(fused)[0];
    }
    previous = fused.clone();
    previous_in = in;
  }
  EXPECT_LT(change_out / change_in, 0.35);
  EXPECT_LT(std::abs(mean_out - mean_in) / (frames - 10), 0.2) << "the filter adds no bias";
  EXPECT_GT(filter.static_share(), 0.8);  // a few false openings of static noise
}

// The cameras' noise levels are measured on every fourth frame: when the
// visible camera's gain jumps (noise sigma 2 -> 8, dusk), the whole static
// frame looks like motion for at most the frames until the next measurement,
// then it is filtered again.
TEST(TemporalFilter, FollowsACameraWhoseGainRises) {
  cv::RNG rng(5);
  const cv::Mat ir_clean = scene(), vis_clean = 255 - scene();
  TemporalFilter filter;
  for (int t = 0; t < 10; ++t) {
    cv::Mat ir = with_noise(ir_clean, 1, rng), vis = with_noise(vis_clean, 2, rng), fused = vis.clone();
    filter.apply(ir, vis, fused);
  }
  ASSERT_GT(filter.static_share(), 0.8);
  std::vector<double> shares;
  for (int t = 0; t < 8; ++t) {
    cv::Mat ir = with_noise(ir_clean, 1, rng), vis = with_noise(vis_clean, 8, rng), fused = vis.clone();
    filter.apply(ir, vis, fused);
    shares.push_back(filter.static_share());
  }
  // Within four frames of the jump the filter knows the new level; from then on static.
  for (size_t t = 4; t < shares.size(); ++t) EXPECT_GT(shares[t], 0.8) << "frame " << t << " after the jump";
}

// A bright object moving 3 px per frame over a static noisy scene: where it
// is, the output follows the current frame (no trail, no smear), while the
// static background is still filtered.
TEST(TemporalFilter, WhatMovesIsNotSmeared) {
  cv::RNG rng(2);
  const cv::Mat background = scene();
  TemporalFilter filter;
  double object_error = 0;
  int counted = 0;
  for (int t = 0; t < 20; ++t) {
    cv::Mat clean = background.clone();
    const cv::Rect box(10 + 3 * t, 40, 20, 20);
    clean(box).setTo(250);
    cv::Mat ir = with_noise(clean, 2, rng), vis = with_noise(clean, 6, rng);
    cv::Mat fused = ir.clone();  // the IR as "fused": its object is what moves
    filter.apply(ir, vis, fused);
    if (t >= 5) {
      object_error += mean_abs_diff(fused(box), clean(box));
      // Where the object was one frame ago, the background is back at once.
      const cv::Rect left(box.x - 3, box.y, 3, box.height);
      EXPECT_LT(mean_abs_diff(fused(left), clean(left)), 12.0) << "frame " << t;
      ++counted;
    }
  }
  EXPECT_LT(object_error / counted, 4.0);  // the IR's noise is 2: within the per-frame error
}

TEST(TemporalFilter, ResetAndSettings) {
  cv::RNG rng(3);
  const cv::Mat clean = scene();
  TemporalFilter filter;
  cv::Mat a = with_noise(clean, 6, rng), first = a.clone();
  filter.apply(a, a, a);
  EXPECT_EQ(cv::norm(a, first, cv::NORM_INF), 0.0);  // the first frame passes unchanged
  cv::Mat b = with_noise(clean, 6, rng), unfiltered = b.clone();
  filter.apply(b, b, b);
  EXPECT_GT(cv::norm(b, unfiltered, cv::NORM_INF), 0.0);  // the second is filtered
  filter.reset();
  cv::Mat c = with_noise(clean, 6, rng), after_reset = c.clone();
  filter.apply(c, c, c);
  EXPECT_EQ(cv::norm(c, after_reset, cv::NORM_INF), 0.0);  // reset: passes unchanged again
  // Colour frames: every channel with the same gate.
  cv::Mat colour;
  cv::cvtColor(clean, colour, cv::COLOR_GRAY2BGR);
  filter.apply(clean, clean, colour);
  EXPECT_EQ(colour.channels(), 3);
  // Strength 0 is off.
  TemporalFilterOptions off;
  off.strength = 0;
  TemporalFilter none(off);
  cv::Mat d = with_noise(clean, 6, rng), e = with_noise(clean, 6, rng), e_copy = e.clone();
  none.apply(d, d, d);
  none.apply(e, e, e);
  EXPECT_EQ(cv::norm(e, e_copy, cv::NORM_INF), 0.0);
  // Bad settings and inputs are Errors naming the problem.
  TemporalFilterOptions bad;
  bad.strength = 1.0;
  EXPECT_THROW(TemporalFilter{bad}, Error);
  bad.strength = 0.5;
  bad.motion_threshold = 0;
  EXPECT_THROW(TemporalFilter{bad}, Error);
  cv::Mat small = cv::Mat::zeros(10, 10, CV_8UC1), f32 = cv::Mat::zeros(clean.size(), CV_32F);
  cv::Mat out = clean.clone();
  EXPECT_THROW(filter.apply(small, clean, out), Error);
  EXPECT_THROW(filter.apply(f32, clean, out), Error);
  // A 16-bit IR plane is taken as value / 257.
  cv::Mat ir16;
  clean.convertTo(ir16, CV_16U, 257);
  TemporalFilter sixteen;
  cv::Mat first16 = clean.clone(), second16 = clean.clone();
  sixteen.apply(ir16, clean, first16);
  sixteen.apply(ir16, clean, second16);
  EXPECT_EQ(cv::norm(second16, clean, cv::NORM_INF), 0.0);  // nothing changed: nothing moves
}
