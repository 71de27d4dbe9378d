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
// The gate is worked out on blocks of kBlock x kBlock pixels: each block's
// mean squared change, then a box of kBox x kBox blocks (6x6 pixels, as the
// 5x5-pixel box of the first version) and the gate itself at a quarter of
// the pixels. Only the references and the output follow per pixel.
// That halves the filter's cost per frame (many rigs in one process; issue
// 28), and a gate is smooth at that scale anyway.
constexpr int kBlock = 2;
constexpr int kBox = 3;  // the gate's window, in blocks
constexpr int kNoiseEvery = 4;  // frames per measurement of the cameras' noise levels

// For noise alone, the box's mean squared change over its noise power is a
// chi-square of 36 degrees of freedom over 36: median ~0.981, standard
// deviation sqrt(2/36) = 0.236.
constexpr double kMedianOfMeanChiSquare = 0.981;
constexpr double kNoiseRatioSpread = 0.236;

// The median of a float plane's values on every fourth row and column (of
// the block plane; 4,800 values at 640x480): the static majority of the frame
// sets it.
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

// Each input's mean squared change against its reference over each block
// (IR scaled by irs to grey levels of 255: 1 for 8-bit, 1/257 for 16-bit).
// A block cut by the right or bottom edge averages the pixels it has.
template <class IrPixel>
void change_energies(const cv::Mat& ir, const cv::Mat& vis, float irs, const cv::Mat& ref_ir, const cv::Mat& ref_vis,
                     cv::Mat& energy_ir, cv::Mat& energy_vis) {
  const int W = vis.cols, H = vis.rows;
  for (int by = 0; by < energy_ir.rows; ++by) {
    float *ei = energy_ir.ptr<float>(by), *ev = energy_vis.ptr<float>(by);
    std::fill(ei, ei + energy_ir.cols, 0.0f);
    std::fill(ev, ev + energy_vis.cols, 0.0f);
    const int y0 = by * kBlock, y1 = std::min(y0 + kBlock, H);
    for (int y = y0; y < y1; ++y) {
      const float *ri = ref_ir.ptr<float>(y), *rv = ref_vis.ptr<float>(y);
      const IrPixel* i = ir.ptr<IrPixel>(y);
      const uint8_t* v = vis.ptr<uint8_t>(y);
      int x = 0;
      static_assert(kBlock == 2, "the row loop sums a block's two pixels per step");
      for (; x + 1 < W; x += 2) {  // whole blocks: two pixels a step
        const float di0 = static_cast<float>(i[x]) * irs - ri[x], dv0 = static_cast<float>(v[x]) - rv[x];
        const float di1 = static_cast<float>(i[x + 1]) * irs - ri[x + 1], dv1 = static_cast<float>(v[x + 1]) - rv[x + 1];
        ei[x / 2] += di0 * di0 + di1 * di1;
        ev[x / 2] += dv0 * dv0 + dv1 * dv1;
      }
      if (x < W) {
        const float di = static_cast<float>(i[x]) * irs - ri[x], dv = static_cast<float>(v[x]) - rv[x];
        ei[x / 2] += di * di;
        ev[x / 2] += dv * dv;
      }
    }
    // Divide by each block's pixel count (4, fewer on the edges).
    const int rows = y1 - y0;
    for (int bx = 0; bx < energy_ir.cols; ++bx) {
      const float n = static_cast<float>(rows * (std::min(bx * kBlock + kBlock, W) - bx * kBlock));
      ei[bx] /= n;
      ev[bx] /= n;
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
    const float* g = gate.ptr<float>(y / kBlock);
    float *ri = ref_ir.ptr<float>(y), *rv = ref_vis.ptr<float>(y), *o = out.ptr<float>(y);
    const uint8_t* v = vis.ptr<uint8_t>(y);
    const IrPixel* i = ir.ptr<IrPixel>(y);
    uint8_t* f = fused.ptr<uint8_t>(y);
    for (int x = 0; x < fused.cols; ++x, f += C, o += C) {
      const float a = std::min(std::max(g[x / kBlock], 0.0f), 1.0f) * arange + amin;
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
  out_.release();  // the next apply() starts over, noise measurement included
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
    frames_since_noise_ = 0;
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
  const cv::Size blocks((fused.cols + kBlock - 1) / kBlock, (fused.rows + kBlock - 1) / kBlock);
  box_ir_.create(blocks, CV_32F);
  box_vis_.create(blocks, CV_32F);
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
  // The cameras' noise levels are measured on every kNoiseEvery-th frame: a
  // camera's gain moves over seconds, and the two measurements were a fifth
  // of the filter's cost when taken on every frame.
  if (frames_since_noise_ == 0) {
    noise_ir_ = noise_level(ir);
    noise_vis_ = noise_level(vis);
  }
  frames_since_noise_ = (frames_since_noise_ + 1) % kNoiseEvery;
  thread_local std::vector<float> samples;
  auto noise_power = [&](double level, const cv::Mat& energy) {
    const double s = std::max(level, 0.5), white = s * s * (1 + a_min / (2 - a_min));
    return std::clamp(median_of(energy, samples) / kMedianOfMeanChiSquare, white, 9 * white);
  };
  const double p_ir = noise_power(noise_ir_, box_ir_), p_vis = noise_power(noise_vis_, box_vis_);
  // z = (energy / power - 1) / spread of that ratio for noise alone; the
  // gate u = z / t - 1 in [0, 1]: a = a_min below t, 1 from 2t.
  const double t = options_.motion_threshold;
  // Into box_ir_: the larger of the two inputs' u (the gate).
  const float k = static_cast<float>(kNoiseRatioSpread * t), offset = static_cast<float>(1.0 / k + 1.0);
  const float scale_ir = static_cast<float>(1.0 / (p_ir * k)), scale_vis = static_cast<float>(1.0 / (p_vis * k));
  for (int y = 0; y < box_ir_.rows; ++y) {
    float* bi = box_ir_.ptr<float>(y);
    const float* bv = box_vis_.ptr<float>(y);
    for (int x = 0; x < box_ir_.cols; ++x) bi[x] = std::max(bi[x] * scale_ir, bv[x] * scale_vis) - offset;
  }
  // No dilation: the box of 3x3 blocks already reaches 2-3 px past a moving
  // edge (the first, per-pixel version dilated its 5x5 box by a pixel for
  // that). A dilation by a block would open 36 px around every false opening
  // of static noise (static share 0.76 instead of 0.8 and more in
  // TemporalFilter.StaticNoiseIsAveragedAway).
  // The references and the output follow the frame by a (follow_gate).
  const float amin = static_cast<float>(a_min), arange = static_cast<float>(1 - a_min);
  const int64_t still = ir.depth() == CV_16U
                            ? follow_gate<uint16_t>(box_ir_, ir, vis, irs, amin, arange, ref_ir_, ref_vis_, out_, fused)
                            : follow_gate<uint8_t>(box_ir_, ir, vis, irs, amin, arange, ref_ir_, ref_vis_, out_, fused);
  static_share_ = static_cast<double>(still) / static_cast<double>(fused.total());
}

}  // namespace timfusion
