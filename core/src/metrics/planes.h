// Internal: colour handling. Metrics are defined on one gray plane per source;
// a colour evaluation is a list of such triples (one per RGB channel, or luma).
#pragma once
#include <vector>

#include <opencv2/core.hpp>

#include "timfusion/metrics.h"

namespace timfusion::metrics_detail {

// Visible, infrared and fused gray planes: CV_64F, [0,255] scale, one size.
struct Planes {
  cv::Mat vis, ir, fused;
};

// MATLAB rgb2gray on 8-bit BGR(A): round(0.298936*R + 0.587043*G + 0.114021*B).
cv::Mat rgb2gray(const cv::Mat& bgr8);

// Checks the inputs and reduces them to the planes the metrics average over:
// PerChannel with a colour fused image gives three triples in R, G, B order (VIFB's
// channel k = 1..3), a gray visible image being reused for every channel; otherwise
// (and always in Luma mode) one gray triple.
std::vector<Planes> make_planes(const MetricInputs& in, ColorMode mode);

}  // namespace timfusion::metrics_detail
