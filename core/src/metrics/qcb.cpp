// Qcb, Chen & Blum's contrast-preservation measure (Z. Liu's metricChenBlum.m as
// VIFB's metricsQcb.m wraps it).
#include <cmath>

#include "image_ops.h"
#include "kernels.h"

namespace timfusion::metrics_detail {

namespace {

// Contrast sensitivity (DoG) filter on the freqspace grid scaled by size/30.
double csf(double r) {
  const double f0 = 15.3870, f1 = 1.3456, a = 0.7622;
  return std::exp(-(r / f0) * (r / f0)) - a * std::exp(-(r / f1) * (r / f1));
}

// Local contrast |G1*x / G2*x - 1| with unnormalised 31x31 Gaussians (sigma 2 and 4,
// each divided by 2 pi sigma^2), filter2 'same' with zero padding, then the masking
// response C^p / (h C^q + Z) with p = 3, q = 2, h = 1, Z = 1e-4.
cv::Mat masked_contrast(const cv::Mat& x) {
  const double kPi = 3.14159265358979323846;
  auto factor = [](double sigma) {  // exp(-x^2/(2 sigma^2)), x = -15..15, not normalised
    cv::Mat g(31, 1, CV_64F);
    for (int i = 0; i < 31; ++i) g.at<double>(i) = std::exp(-(i - 15.0) * (i - 15.0) / (2 * sigma * sigma));
    return g;
  };
  cv::Mat b1 = filter_same_zero(x, factor(2), 1 / (2 * kPi * 4.0));
  cv::Mat b2 = filter_same_zero(x, factor(4), 1 / (2 * kPi * 16.0));
  cv::Mat out(x.size(), CV_64F);
  for (int i = 0; i < x.rows; ++i)
    for (int j = 0; j < x.cols; ++j) {
      double c = std::abs(b1.at<double>(i, j) / b2.at<double>(i, j) - 1);
      out.at<double>(i, j) = c * c * c / (c * c + 1e-4);
    }
  return out;
}

// (a./b).*m + (b./a).*(1-m) with m = a < b: MATLAB evaluates both ratios, so a zero
// on either side yields Inf*0 = NaN, which the final mean carries (VIFB quirk).
double preservation(double a, double b) {
  const double m = a < b ? 1.0 : 0.0;
  return (a / b) * m + (b / a) * (1 - m);
}

}  // namespace

double qcb(const Planes& p) {
  // Each image is normalize1'd (min-max to [0,255], rounded) first.
  cv::Mat v = normalize1(p.vis), r = normalize1(p.ir), f = normalize1(p.fused);
  const double su = p.fused.cols / 30.0, sv = p.fused.rows / 30.0;
  cv::Mat c1 = masked_contrast(radial_filter(v, su, sv, csf));
  cv::Mat c2 = masked_contrast(radial_filter(r, su, sv, csf));
  cv::Mat cf = masked_contrast(radial_filter(f, su, sv, csf));
  double sum = 0;
  for (int i = 0; i < cf.rows; ++i)
    for (int j = 0; j < cf.cols; ++j) {
      const double a = c1.at<double>(i, j), b = c2.at<double>(i, j), c = cf.at<double>(i, j);
      const double l1 = a * a / (a * a + b * b), l2 = b * b / (a * a + b * b);
      sum += l1 * preservation(a, c) + l2 * preservation(b, c);
    }
  return sum / static_cast<double>(cf.total());
}

}  // namespace timfusion::metrics_detail
