// PSNR and RMSE against both sources: VIFB's variants (metricsPsnr.m, metricsRmse.m)
// and the standard ones.
#include <cmath>

#include "kernels.h"

namespace timfusion::metrics_detail {

static double sum_sq_diff(const cv::Mat& a, const cv::Mat& b) {
  double s = 0;
  for (int i = 0; i < a.rows; ++i)
    for (int j = 0; j < a.cols; ++j) {
      double d = a.at<double>(i, j) - b.at<double>(i, j);
      s += d * d;
    }
  return s;
}

// VIFB's "mse" is sqrt(sum (a-b)^2) / (M*N): neither an MSE nor an RMSE.
static double vifb_mse(const cv::Mat& a, const cv::Mat& b) {
  return std::sqrt(sum_sq_diff(a, b)) / static_cast<double>(a.total());
}

double rmse_vifb(const Planes& p) { return (vifb_mse(p.vis, p.fused) + vifb_mse(p.ir, p.fused)) / 2.0; }

// 20 log10(255 / sqrt(rmse_vifb)): the square root of a value that is already a root
// puts VIFB's PSNR near 60 dB for typical images.
double psnr_vifb(const Planes& p) { return 20 * std::log10(255.0 / std::sqrt(rmse_vifb(p))); }

// Standard: MSE = (MSE(VIS,F) + MSE(IR,F)) / 2 on [0,255]; RMSE = sqrt(MSE);
// PSNR = 10 log10(255^2 / MSE).
static double mean_mse(const Planes& p) {
  const double n = static_cast<double>(p.fused.total());
  return (sum_sq_diff(p.vis, p.fused) / n + sum_sq_diff(p.ir, p.fused) / n) / 2.0;
}

double rmse(const Planes& p) { return std::sqrt(mean_mse(p)); }
double psnr(const Planes& p) { return 10 * std::log10(255.0 * 255.0 / mean_mse(p)); }

}  // namespace timfusion::metrics_detail
