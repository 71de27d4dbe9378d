#include "timfusion/ir_range.h"

#include <algorithm>
#include <vector>

#include "timfusion/error.h"

namespace timfusion {

IrRange robust_ir_range(const cv::Mat& ir16, double low_pct, double high_pct) {
  if (ir16.type() != CV_16UC1 || ir16.empty()) throw Error("robust_ir_range: needs a 16-bit gray frame");
  std::vector<uint32_t> hist(65536, 0);
  for (int y = 0; y < ir16.rows; ++y) {
    const uint16_t* row = ir16.ptr<uint16_t>(y);
    for (int x = 0; x < ir16.cols; ++x) ++hist[row[x]];
  }
  const double n = static_cast<double>(ir16.total());
  const double lo_count = n * std::clamp(low_pct, 0.0, 100.0) / 100.0;
  const double hi_count = n * std::clamp(high_pct, 0.0, 100.0) / 100.0;
  IrRange r{-1, -1};
  double cum = 0;
  for (int v = 0; v < 65536; ++v) {
    cum += hist[v];
    if (r.low < 0 && cum > lo_count) r.low = v;
    if (r.high < 0 && cum >= hi_count) {
      r.high = v;
      break;
    }
  }
  if (r.low < 0) r.low = 0;
  if (r.high < r.low) r.high = r.low;
  if (r.high - r.low < kMinIrSpan) {
    const double mid = std::clamp((r.low + r.high) / 2, kMinIrSpan / 2, 65535 - kMinIrSpan / 2);
    r = {mid - kMinIrSpan / 2, mid + kMinIrSpan / 2};
  }
  return r;
}

IrRange IrRangeSmoother::update(const IrRange& frame) {
  if (!have_) {
    r_ = frame;
    have_ = true;
  } else {
    r_.low += weight_ * (frame.low - r_.low);
    r_.high += weight_ * (frame.high - r_.high);
  }
  return r_;
}

void stretch_ir(const cv::Mat& ir16, const IrRange& r, cv::Mat& out) {
  if (ir16.type() != CV_16UC1) throw Error("stretch_ir: needs a 16-bit gray frame");
  const double span = std::max(r.high - r.low, 1.0);
  // convertTo saturates: values below low give 0, above high 65535.
  ir16.convertTo(out, CV_16U, 65535.0 / span, -r.low * 65535.0 / span);
}

}  // namespace timfusion
