// SSIM (Wang et al. 2004) in VIFB's fusion form SSIM(VIS,F) + SSIM(IR,F) (<= 2;
// VIFB metricsSsim.m): Gaussian 11x11 window, sigma 1.5, K = (0.01, 0.03), L = 255,
// 'valid' filtering, mean of the SSIM map.
#include "image_ops.h"
#include "kernels.h"

namespace timfusion::metrics_detail {

static double ssim_pair(const cv::Mat& a, const cv::Mat& b) {
  static const cv::Mat g = gaussian_factor(11, 1.5);
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  cv::Mat ua = filter_valid(a, g), ub = filter_valid(b, g);
  cv::Mat saa = filter_valid(a.mul(a), g) - ua.mul(ua);
  cv::Mat sbb = filter_valid(b.mul(b), g) - ub.mul(ub);
  cv::Mat sab = filter_valid(a.mul(b), g) - ua.mul(ub);
  cv::Mat num = (2 * ua.mul(ub) + c1).mul(2 * sab + c2);
  cv::Mat den = (ua.mul(ua) + ub.mul(ub) + c1).mul(saa + sbb + c2);
  cv::Mat map;
  cv::divide(num, den, map);
  return cv::mean(map)[0];  // NaN-free: both factors of den are >= c1, c2 > 0
}

double ssim(const Planes& p) { return ssim_pair(p.vis, p.fused) + ssim_pair(p.ir, p.fused); }

}  // namespace timfusion::metrics_detail
