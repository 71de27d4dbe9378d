// EN and SD of the fused image (VIFB metricsEntropy.m, metricsVariance.m).
#include <cmath>

#include "kernels.h"

namespace timfusion::metrics_detail {

double entropy(const Planes& p) {
  // VIFB: 256-bin histogram with bin = floor(F), entropy in bits.
  const cv::Mat& f = p.fused;
  double hist[256] = {0};
  for (int i = 0; i < f.rows; ++i)
    for (int j = 0; j < f.cols; ++j) hist[static_cast<int>(std::floor(f.at<double>(i, j)))] += 1;
  const double n = static_cast<double>(f.total());
  double h = 0;
  for (double c : hist)
    if (c > 0) h -= (c / n) * std::log2(c / n);
  return h;
}

double std_dev(const Planes& p) {
  // VIFB's "Variance" is the population standard deviation, in double.
  const cv::Mat& f = p.fused;
  const double mean = cv::mean(f)[0];
  double s = 0;
  for (int i = 0; i < f.rows; ++i)
    for (int j = 0; j < f.cols; ++j) s += (f.at<double>(i, j) - mean) * (f.at<double>(i, j) - mean);
  return std::sqrt(s / static_cast<double>(f.total()));
}

}  // namespace timfusion::metrics_detail
