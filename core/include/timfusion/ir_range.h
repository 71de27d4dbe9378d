// timfusion: the range of a 16-bit (radiometric) IR frame that is mapped
// onto the network's input.
//
// 16-bit IR used to be scaled over 0..65535 only: a thermal camera reporting
// 7000-8000 gave a hot target 8 grey levels of contrast (issue 27). A fixed
// range stretches [low, high] onto 0..65535; the automatic one takes robust
// percentiles of each frame (0.5 % and 99.5 % by default: a few hot or dead
// pixels do not set it) and smooths them over time, so that the picture does
// not pump when a hot object enters or leaves the view.
#pragma once
#include <opencv2/core.hpp>

namespace timfusion {

struct IrRange {
  double low = 0, high = 65535;
};

// The low_pct and high_pct percentiles (0-100) of a CV_16UC1 frame, from a
// histogram (one pass, no sort). A range narrower than kMinIrSpan is widened
// around its middle (a uniform frame would divide by zero).
constexpr double kMinIrSpan = 16;
IrRange robust_ir_range(const cv::Mat& ir16, double low_pct = 0.5, double high_pct = 99.5);

// Exponential smoothing of the automatic range over frames: each new frame
// moves the range by `weight` of the way to its own (0.05: a step in the
// scene settles in ~60 frames, 2 s at 30 fps). The first frame sets it.
class IrRangeSmoother {
 public:
  explicit IrRangeSmoother(double weight = 0.05) : weight_(weight) {}
  IrRange update(const IrRange& frame);
  void reset() { have_ = false; }

 private:
  double weight_;
  bool have_ = false;
  IrRange r_;
};

// out (CV_16UC1) = clamp((ir16 - low) * 65535 / (high - low)); `out` is
// reallocated only when its size differs.
void stretch_ir(const cv::Mat& ir16, const IrRange& r, cv::Mat& out);

}  // namespace timfusion
