// CE (Bulanon et al. 2009; VIFB metricsCross_entropy.m): the mean over the two sources
// of sum_l P_src(l) log2(P_src(l)/P_F(l)), taken over the levels where both are non-zero
// (so it is a Kullback-Leibler divergence in bits, not a cross entropy). Lower is better.
#include <cmath>

#include "kernels.h"

namespace timfusion::metrics_detail {

static void histogram(const cv::Mat& x, double* h) {
  for (int i = 0; i < x.rows; ++i)
    for (int j = 0; j < x.cols; ++j) h[static_cast<int>(x.at<double>(i, j))] += 1;
}

static double kl_bits(const cv::Mat& src, const cv::Mat& f) {
  double hs[256] = {0}, hf[256] = {0};
  histogram(src, hs);
  histogram(f, hf);
  const double n = static_cast<double>(src.total());
  double r = 0;
  for (int l = 0; l < 256; ++l)
    if (hs[l] != 0 && hf[l] != 0) r += (hs[l] / n) * std::log2((hs[l] / n) / (hf[l] / n));
  return r;
}

double cross_entropy(const Planes& p) { return (kl_bits(p.vis, p.fused) + kl_bits(p.ir, p.fused)) / 2.0; }

}  // namespace timfusion::metrics_detail
