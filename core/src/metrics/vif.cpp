// VIF = VIFp(IR,F) + VIFp(VIS,F): Sheikh & Bovik's multi-scale pixel-domain VIF
// (LIVE vifp_mscale.m, as Tang et al.'s evaluation sums it over the two sources).
// Four scales, Gaussian window N = 2^(5-s)+1 with sigma N/5, 'valid' filtering,
// downsampling by 2 after filtering, sigma_n^2 = 2, on the [0,255] scale in double.
#include <algorithm>
#include <cmath>

#include "image_ops.h"
#include "kernels.h"

namespace timfusion::metrics_detail {

// x(1:2:end, 1:2:end)
static cv::Mat every_other(const cv::Mat& x) {
  cv::Mat out((x.rows + 1) / 2, (x.cols + 1) / 2, CV_64F);
  for (int i = 0; i < out.rows; ++i)
    for (int j = 0; j < out.cols; ++j) out.at<double>(i, j) = x.at<double>(2 * i, 2 * j);
  return out;
}

static double vifp(cv::Mat ref, cv::Mat dist) {
  const double sigma_nsq = 2, eps = 1e-10;
  double num = 0, den = 0;
  for (int scale = 1; scale <= 4; ++scale) {
    const int n = (1 << (5 - scale)) + 1;
    const cv::Mat g = gaussian_factor(n, n / 5.0);
    if (scale > 1) {
      ref = filter_valid(ref, g);
      dist = filter_valid(dist, g);
      ref = every_other(ref);
      dist = every_other(dist);
    }
    cv::Mat mu1 = filter_valid(ref, g), mu2 = filter_valid(dist, g);
    if (mu1.empty()) break;  // image too small for this scale: its terms are empty sums
    cv::Mat s1 = filter_valid(ref.mul(ref), g) - mu1.mul(mu1);
    cv::Mat s2 = filter_valid(dist.mul(dist), g) - mu2.mul(mu2);
    cv::Mat s12 = filter_valid(ref.mul(dist), g) - mu1.mul(mu2);
    for (int i = 0; i < s1.rows; ++i)
      for (int j = 0; j < s1.cols; ++j) {
        // The LIVE code's clamping steps, in its order.
        double a = std::max(s1.at<double>(i, j), 0.0), b = std::max(s2.at<double>(i, j), 0.0);
        double c = s12.at<double>(i, j);
        double gg = c / (a + eps);
        double sv = b - gg * c;
        if (a < eps) {
          gg = 0;
          sv = b;
          a = 0;
        }
        if (b < eps) {
          gg = 0;
          sv = 0;
        }
        if (gg < 0) {
          sv = b;
          gg = 0;
        }
        if (sv <= eps) sv = eps;
        num += std::log10(1 + gg * gg * a / (sv + sigma_nsq));
        den += std::log10(1 + a / sigma_nsq);
      }
  }
  return num / den;
}

double vif(const Planes& p) { return vifp(p.ir, p.fused) + vifp(p.vis, p.fused); }

}  // namespace timfusion::metrics_detail
