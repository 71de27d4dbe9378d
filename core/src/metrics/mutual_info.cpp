// MI = MI(VIS,F) + MI(IR,F) (Qu et al. 2002; VIFB metricsMutinf.m).
#include <cmath>
#include <vector>

#include "kernels.h"

namespace timfusion::metrics_detail {

namespace {

// VIFB min-max normalises each image to [0,255] and rounds (MATLAB int16 rounds
// half away from zero, like std::round) before binning; a constant image is all 0.
std::vector<int> bins(const cv::Mat& x) {
  double lo, hi;
  cv::minMaxLoc(x, &lo, &hi);
  std::vector<int> b(x.total(), 0);
  if (hi == lo) return b;
  size_t k = 0;
  for (int i = 0; i < x.rows; ++i)
    for (int j = 0; j < x.cols; ++j) b[k++] = static_cast<int>(std::round((x.at<double>(i, j) - lo) / (hi - lo) * 255));
  return b;
}

double entropy_nats(const std::vector<double>& h, double n) {
  double e = 0;
  for (double c : h)
    if (c > 0) e -= (c / n) * std::log(c / n);
  return e;
}

// H(a) + H(b) - H(a,b) in nats (VIFB uses the natural log) from a 256x256 joint histogram.
double mutinf(const cv::Mat& a, const cv::Mat& b) {
  std::vector<int> ba = bins(a), bb = bins(b);
  std::vector<double> ha(256, 0), hb(256, 0), hab(256 * 256, 0);
  for (size_t k = 0; k < ba.size(); ++k) {
    ha[ba[k]] += 1;
    hb[bb[k]] += 1;
    hab[ba[k] * 256 + bb[k]] += 1;
  }
  const double n = static_cast<double>(ba.size());
  return entropy_nats(ha, n) + entropy_nats(hb, n) - entropy_nats(hab, n);
}

}  // namespace

double mutual_information(const Planes& p) { return mutinf(p.vis, p.fused) + mutinf(p.ir, p.fused); }

}  // namespace timfusion::metrics_detail
