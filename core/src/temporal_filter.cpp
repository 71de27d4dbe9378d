#include "timfusion/temporal_filter.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "timfusion/error.h"
#include "timfusion/noise_level.h"

namespace timfusion {

namespace {

constexpr double kMaxStrength = 0.95;  // a >= 0.05: a static pixel still follows a lasting change within ~60 frames
constexpr int kBox = 5;                // the gate's window

// For noise alone, the box's mean squared change over its noise power is a
// chi-square of 25 degrees of freedom over 25: median 0.973, standard
// deviation sqrt(2/25) = 0.283.
constexpr double kMedianOfMeanChiSquare = 0.973;
constexpr double kNoiseRatioSpread = 0.283;

// The median of a float plane's values on every fourth row and column: the
// static majority of the frame sets it.
double median_of(const cv::Mat& plane, std::vector<float>& samples) {
  samples.clear();
  for (int y = 0; y < plane.rows; y += 4) {
    const float* row = plane.ptr<float>(y);
    for (int x = 0; x < plane.cols; x += 4) samples.push_back(row[x]);
  }
  if (samples.empty()) return 0;
  auto mid = samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2);
  std::nth_element(samples.begin(), mid, samples.end());
  return *mid;
}

}  // namespace

TemporalFilter::TemporalFilter(const TemporalFilterOptions& options) : options_(options) {
  if (!(options_.strength >= 0 && options_.strength <= kMaxStrength))
    throw Error("temporal filter: strength " + std::to_string(options_.strength) + " is outside 0..0.95");
  if (!(options_.motion_threshold >= 0.5 && options_.motion_threshold <= 100))
    throw Error("temporal filter: motion threshold " + std::to_string(options_.motion_threshold) + " is outside 0.5..100");
}

void TemporalFilter::reset() {
  out_.release();
  static_share_ = 0;
}

void TemporalFilter::apply(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& fused) {
  if ((ir.type() != CV_8UC1 && ir.type() != CV_16UC1) || vis.type() != CV_8UC1)
    throw Error("temporal filter: the inputs must be luma planes (IR 8- or 16-bit, visible 8-bit)");
  // 16-bit IR in grey levels of 255, as noise_level measures it.
  const double ir_scale = ir.depth() == CV_16U ? 1.0 / 257 : 1.0;
  if (fused.depth() != CV_8U || fused.channels() > 4)
    throw Error("temporal filter: the fused frame must be 8-bit with 1 to 4 channels");
  if (ir.size() != fused.size() || vis.size() != fused.size())
    throw Error("temporal filter: the inputs are not the size of the fused frame");
  if (options_.strength <= 0) return;
  if (out_.empty() || out_.size() != fused.size() || out_.channels() != fused.channels()) {
    ir.convertTo(ref_ir_, CV_32F, ir_scale);
    vis.convertTo(ref_vis_, CV_32F);
    fused.convertTo(out_, CV_32F);
    static_share_ = 0;
    return;
  }
  const double a_min = 1.0 - options_.strength;
  // Each input's change against its reference, and its local energy: the
  // mean of the squared change over the box. A change of mean zero (texture
  // sliding past) counts as fully as a brightness change, which a box mean
  // of the change would average away.
  ir.convertTo(diff_ir_, CV_32F, ir_scale);
  vis.convertTo(diff_vis_, CV_32F);
  cv::subtract(diff_ir_, ref_ir_, diff_ir_);
  cv::subtract(diff_vis_, ref_vis_, diff_vis_);
  cv::multiply(diff_ir_, diff_ir_, box_ir_);
  cv::multiply(diff_vis_, diff_vis_, box_vis_);
  cv::blur(box_ir_, box_ir_, cv::Size(kBox, kBox), cv::Point(-1, -1), cv::BORDER_REFLECT_101);
  cv::blur(box_vis_, box_vis_, cv::Size(kBox, kBox), cv::Point(-1, -1), cv::BORDER_REFLECT_101);
  // The change's noise power where nothing moves: white camera noise of level
  // s gives s^2 (1 + a/(2-a)) (the reference carries a/(2-a) of it). Noise
  // that is not white (demosaicing, compression) has more power per pixel
  // than its finest band shows: then the frame's median energy (the static
  // majority) is used, up to 9x, so a panning camera still counts as motion.
  thread_local std::vector<float> samples;
  auto noise_power = [&](const cv::Mat& input, const cv::Mat& energy) {
    const double s = std::max(noise_level(input), 0.5), white = s * s * (1 + a_min / (2 - a_min));
    return std::clamp(median_of(energy, samples) / kMedianOfMeanChiSquare, white, 9 * white);
  };
  const double p_ir = noise_power(ir, box_ir_), p_vis = noise_power(vis, box_vis_);
  // z = (energy / power - 1) / spread of that ratio for noise alone; the
  // gate u = z / t - 1 in [0, 1]: a = a_min below t, 1 from 2t.
  const double t = options_.motion_threshold;
  auto gate_of = [&](cv::Mat& energy, double power) {
    energy.convertTo(energy, CV_32F, 1.0 / (power * kNoiseRatioSpread * t), -1.0 / (kNoiseRatioSpread * t) - 1.0);
  };
  gate_of(box_ir_, p_ir);
  gate_of(box_vis_, p_vis);
  cv::max(box_ir_, box_vis_, gate_);
  // Open around what moves as well: the box edge of a moving object sees
  // only part of its change.
  cv::dilate(gate_, gate_, cv::Mat(), cv::Point(-1, -1), 1, cv::BORDER_REFLECT_101);
  cv::threshold(gate_, gate_, 1.0, 1.0, cv::THRESH_TRUNC);
  cv::max(gate_, 0.0, gate_);
  gate_.convertTo(gate_, CV_32F, 1 - a_min, a_min);  // a in [a_min, 1]
  cv::multiply(diff_ir_, gate_, diff_ir_);
  cv::add(ref_ir_, diff_ir_, ref_ir_);
  cv::multiply(diff_vis_, gate_, diff_vis_);
  cv::add(ref_vis_, diff_vis_, ref_vis_);
  // out += a (F - out), F = round(out), per pixel and channel: one pass
  // instead of six over a float copy of the whole colour frame (with many
  // rigs in one process, every pass over memory counts).
  const int C = fused.channels();
  int64_t still = 0;
  for (int y = 0; y < fused.rows; ++y) {
    const float* a = gate_.ptr<float>(y);
    uint8_t* f = fused.ptr<uint8_t>(y);
    float* o = out_.ptr<float>(y);
    for (int x = 0; x < fused.cols; ++x, f += C, o += C) {
      still += a[x] < 0.5f;
      for (int c = 0; c < C; ++c) {
        o[c] += (static_cast<float>(f[c]) - o[c]) * a[x];
        f[c] = cv::saturate_cast<uint8_t>(o[c]);
      }
    }
  }
  static_share_ = static_cast<double>(still) / static_cast<double>(gate_.total());
}

}  // namespace timfusion
