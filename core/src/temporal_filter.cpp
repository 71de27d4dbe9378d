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

// Each input's squared change against its reference, per pixel (IR scaled by
// irs to grey levels of 255: 1 for 8-bit, 1/257 for 16-bit).
template <class IrPixel>
void change_energies(const cv::Mat& ir, const cv::Mat& vis, float irs, const cv::Mat& ref_ir, const cv::Mat& ref_vis,
                     cv::Mat& energy_ir, cv::Mat& energy_vis) {
  for (int y = 0; y < vis.rows; ++y) {
    const float *ri = ref_ir.ptr<float>(y), *rv = ref_vis.ptr<float>(y);
    const IrPixel* i = ir.ptr<IrPixel>(y);
    const uint8_t* v = vis.ptr<uint8_t>(y);
    float *ei = energy_ir.ptr<float>(y), *ev = energy_vis.ptr<float>(y);
    for (int x = 0; x < vis.cols; ++x) {
      const float di = static_cast<float>(i[x]) * irs - ri[x], dv = static_cast<float>(v[x]) - rv[x];
      ei[x] = di * di;
      ev[x] = dv * dv;
    }
  }
}

// a = a_min + (1 - a_min) clamp(u, 0, 1) from the gate u; the references
// follow by a, and out += a (F - out), F = round(out), per pixel and channel,
// in one pass (with many rigs in one process, every pass over memory counts).
// Returns how many pixels were static (a < 0.5).
template <class IrPixel>
int64_t follow_gate(const cv::Mat& gate, const cv::Mat& ir, const cv::Mat& vis, float irs, float amin, float arange,
                    cv::Mat& ref_ir, cv::Mat& ref_vis, cv::Mat& out, cv::Mat& fused) {
  const int C = fused.channels();
  int64_t still = 0;
  for (int y = 0; y < fused.rows; ++y) {
    const float* g = gate.ptr<float>(y);
    float *ri = ref_ir.ptr<float>(y), *rv = ref_vis.ptr<float>(y), *o = out.ptr<float>(y);
    const uint8_t* v = vis.ptr<uint8_t>(y);
    const IrPixel* i = ir.ptr<IrPixel>(y);
    uint8_t* f = fused.ptr<uint8_t>(y);
    for (int x = 0; x < fused.cols; ++x, f += C, o += C) {
      const float a = std::min(std::max(g[x], 0.0f), 1.0f) * arange + amin;
      still += a < 0.5f;
      ri[x] += (static_cast<float>(i[x]) * irs - ri[x]) * a;
      rv[x] += (static_cast<float>(v[x]) - rv[x]) * a;
      for (int c = 0; c < C; ++c) {
        o[c] += (static_cast<float>(f[c]) - o[c]) * a;
        f[c] = cv::saturate_cast<uint8_t>(o[c]);
      }
    }
  }
  return still;
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
  // The change itself is not kept: follow_gate recomputes it where it is
  // applied (two planes fewer per element, one pass instead of six).
  const float irs = static_cast<float>(ir_scale);
  box_ir_.create(fused.size(), CV_32F);
  box_vis_.create(fused.size(), CV_32F);
  if (ir.depth() == CV_16U)
    change_energies<uint16_t>(ir, vis, irs, ref_ir_, ref_vis_, box_ir_, box_vis_);
  else
    change_energies<uint8_t>(ir, vis, irs, ref_ir_, ref_vis_, box_ir_, box_vis_);
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
  // Into box_ir_: the larger of the two inputs' u (the gate before dilation).
  const float k = static_cast<float>(kNoiseRatioSpread * t), offset = static_cast<float>(1.0 / k + 1.0);
  const float scale_ir = static_cast<float>(1.0 / (p_ir * k)), scale_vis = static_cast<float>(1.0 / (p_vis * k));
  for (int y = 0; y < fused.rows; ++y) {
    float* bi = box_ir_.ptr<float>(y);
    const float* bv = box_vis_.ptr<float>(y);
    for (int x = 0; x < fused.cols; ++x) bi[x] = std::max(bi[x] * scale_ir, bv[x] * scale_vis) - offset;
  }
  // Open around what moves as well: the box edge of a moving object sees
  // only part of its change.
  cv::dilate(box_ir_, box_ir_, cv::Mat(), cv::Point(-1, -1), 1, cv::BORDER_REFLECT_101);
  // The references and the output follow the frame by a (follow_gate).
  const float amin = static_cast<float>(a_min), arange = static_cast<float>(1 - a_min);
  const int64_t still = ir.depth() == CV_16U
                            ? follow_gate<uint16_t>(box_ir_, ir, vis, irs, amin, arange, ref_ir_, ref_vis_, out_, fused)
                            : follow_gate<uint8_t>(box_ir_, ir, vis, irs, amin, arange, ref_ir_, ref_vis_, out_, fused);
  static_share_ = static_cast<double>(still) / static_cast<double>(box_ir_.total());
}

}  // namespace timfusion
