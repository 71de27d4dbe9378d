#include "timfusion/temporal_filter.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "timfusion/error.h"
#include "timfusion/noise_level.h"

namespace timfusion {

namespace {

constexpr double kMaxStrength = 0.95;  // a >= 0.05: a static pixel still follows a lasting change within ~60 frames
constexpr int kBox = 5;                // the gate's window

// Robust spread of a float plane's values (median |v| / 0.6745) on every
// fourth row and column: the static majority of the frame sets it.
double robust_spread(const cv::Mat& plane, std::vector<float>& samples) {
  samples.clear();
  for (int y = 0; y < plane.rows; y += 4) {
    const float* row = plane.ptr<float>(y);
    for (int x = 0; x < plane.cols; x += 4) samples.push_back(std::fabs(row[x]));
  }
  if (samples.empty()) return 0;
  auto mid = samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2);
  std::nth_element(samples.begin(), mid, samples.end());
  return *mid / 0.6745;
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
  if (ir.type() != CV_8UC1 || vis.type() != CV_8UC1)
    throw Error("temporal filter: the inputs must be 8-bit luma planes");
  if (fused.depth() != CV_8U || fused.channels() > 4)
    throw Error("temporal filter: the fused frame must be 8-bit with 1 to 4 channels");
  if (ir.size() != fused.size() || vis.size() != fused.size())
    throw Error("temporal filter: the inputs are not the size of the fused frame");
  if (options_.strength <= 0) return;
  if (out_.empty() || out_.size() != fused.size() || out_.channels() != fused.channels()) {
    ir.convertTo(ref_ir_, CV_32F);
    vis.convertTo(ref_vis_, CV_32F);
    fused.convertTo(out_, CV_32F);
    static_share_ = 0;
    return;
  }
  const double a_min = 1.0 - options_.strength;
  // Each input's change against its reference, averaged over the box.
  ir.convertTo(diff_ir_, CV_32F);
  vis.convertTo(diff_vis_, CV_32F);
  cv::subtract(diff_ir_, ref_ir_, diff_ir_);
  cv::subtract(diff_vis_, ref_vis_, diff_vis_);
  cv::blur(diff_ir_, box_ir_, cv::Size(kBox, kBox), cv::Point(-1, -1), cv::BORDER_REFLECT_101);
  cv::blur(diff_vis_, box_vis_, cv::Size(kBox, kBox), cv::Point(-1, -1), cv::BORDER_REFLECT_101);
  // The box difference's noise: white camera noise of level s gives
  // s * sqrt(1 + a/(2-a)) / 5 (the reference carries a/(2-a) of the noise
  // power); measured over the frame where the noise is not white, up to 3x.
  thread_local std::vector<float> samples;
  auto spread = [&](const cv::Mat& input, const cv::Mat& box) {
    const double white = std::max(noise_level(input), 0.5) * std::sqrt(1 + a_min / (2 - a_min)) / kBox;
    return std::clamp(robust_spread(box, samples), white, 3 * white);
  };
  const double s_ir = spread(ir, box_ir_), s_vis = spread(vis, box_vis_);
  // z = max(|box_ir| / s_ir, |box_vis| / s_vis); a = a_min below t, 1 from 2t.
  const double t = options_.motion_threshold;
  cv::Mat z_ir = cv::abs(box_ir_) * (1.0 / (s_ir * t)), z_vis = cv::abs(box_vis_) * (1.0 / (s_vis * t));
  cv::max(z_ir, z_vis, gate_);  // in units of the threshold
  cv::subtract(gate_, 1.0, gate_);
  cv::threshold(gate_, gate_, 1.0, 1.0, cv::THRESH_TRUNC);
  cv::max(gate_, 0.0, gate_);
  gate_.convertTo(gate_, CV_32F, 1 - a_min, a_min);  // a in [a_min, 1]
  static_share_ = static_cast<double>(cv::countNonZero(gate_ < 0.5)) / static_cast<double>(gate_.total());
  // References and output follow their new values by a.
  cv::multiply(diff_ir_, gate_, diff_ir_);
  cv::add(ref_ir_, diff_ir_, ref_ir_);
  cv::multiply(diff_vis_, gate_, diff_vis_);
  cv::add(ref_vis_, diff_vis_, ref_vis_);
  cv::Mat gate_c = gate_;
  if (fused.channels() > 1) {
    std::vector<cv::Mat> copies(static_cast<size_t>(fused.channels()), gate_);
    cv::merge(copies, scratch_);
    gate_c = scratch_;
  }
  cv::Mat frame;
  fused.convertTo(frame, CV_32F);
  cv::subtract(frame, out_, frame);
  cv::multiply(frame, gate_c, frame);
  cv::add(out_, frame, out_);
  out_.convertTo(fused, fused.type());  // rounds and saturates
}

}  // namespace timfusion
