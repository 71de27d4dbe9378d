// Qcv, Chen & Varshney's human-perception measure (Z. Liu's metricChen.m as VIFB's
// metricsQcv.m wraps it): a saliency-weighted mean of CSF-filtered squared
// differences between each source and the fused image. Lower is better.
#include <cmath>

#include "image_ops.h"
#include "kernels.h"

namespace timfusion::metrics_detail {

namespace {

constexpr int kWindow = 16;  // local regions of 16x16
constexpr double kAlpha = 5;  // saliency exponent

// Mannos-Sakrison CSF, the one filter of the three the code builds that it uses.
double mannos_sakrison(double r) {
  return 2.6 * (0.0192 + 0.144 * r) * std::exp(-std::pow(0.144 * r, 1.1));
}

// Region saliency: blkproc sums of |Sobel|^alpha (filter2 'same', zero padding).
cv::Mat saliency(const cv::Mat& x) {
  static const double kx[9] = {-1, 0, 1, -2, 0, 2, -1, 0, 1};
  static const double ky[9] = {-1, -2, -1, 0, 0, 0, 1, 2, 1};
  cv::Mat gx = correlate3x3(x, kx, Border::Zero), gy = correlate3x3(x, ky, Border::Zero);
  cv::Mat g(x.size(), CV_64F);
  for (int i = 0; i < x.rows; ++i)
    for (int j = 0; j < x.cols; ++j)
      g.at<double>(i, j) = std::pow(std::sqrt(gx.at<double>(i, j) * gx.at<double>(i, j) +
                                              gy.at<double>(i, j) * gy.at<double>(i, j)),
                                    kAlpha);
  return block_sums(g, kWindow);
}

// blkproc mean2(x.^2) per 16x16 region; partial regions are zero-padded, so the
// divisor is always 256.
cv::Mat region_power(const cv::Mat& d) { return block_sums(d.mul(d), kWindow) / (kWindow * kWindow); }

}  // namespace

double qcv(const Planes& p) {
  cv::Mat v = normalize1(p.vis), r = normalize1(p.ir), f = normalize1(p.fused);
  cv::Mat l1 = saliency(v), l2 = saliency(r);
  // Frequencies scaled by size/8 ("length 3" in the original).
  const double su = p.fused.cols / 8.0, sv = p.fused.rows / 8.0;
  cv::Mat d1 = region_power(radial_filter(v - f, su, sv, mannos_sakrison));
  cv::Mat d2 = region_power(radial_filter(r - f, su, sv, mannos_sakrison));
  return cv::sum(l1.mul(d1) + l2.mul(d2))[0] / cv::sum(l1 + l2)[0];
}

}  // namespace timfusion::metrics_detail
