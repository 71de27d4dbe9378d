// SF, AG and EI: gradient statistics of the fused image (VIFB metricsSpatial_frequency.m,
// metricsAvg_gradient.m, metricsEdge_intensity.m).
#include <cmath>

#include "image_ops.h"
#include "kernels.h"

namespace timfusion::metrics_detail {

double spatial_frequency(const Planes& p) {
  // VIFB divides both sums by M*N (not by the number of differences), [0,255] scale.
  // For a colour image VIFB's size() folds the channels into columns, so the registry
  // passes the R|G|B planes side by side (seams included): see registry.cpp.
  const cv::Mat& f = p.fused;
  double rf = 0, cf = 0;
  for (int i = 0; i < f.rows; ++i)
    for (int j = 1; j < f.cols; ++j) {
      double d = f.at<double>(i, j) - f.at<double>(i, j - 1);
      rf += d * d;
    }
  for (int i = 1; i < f.rows; ++i)
    for (int j = 0; j < f.cols; ++j) {
      double d = f.at<double>(i, j) - f.at<double>(i - 1, j);
      cf += d * d;
    }
  const double mn = static_cast<double>(f.total());
  return std::sqrt(rf / mn + cf / mn);
}

double average_gradient(const Planes& p) {
  // MATLAB gradient (central inside, one-sided at borders); VIFB divides the sum
  // of sqrt((gx^2+gy^2)/2) by (M-1)(N-1) although it has M*N terms.
  cv::Mat gx, gy;
  matlab_gradient(p.fused, gx, gy);
  double s = 0;
  for (int i = 0; i < gx.rows; ++i)
    for (int j = 0; j < gx.cols; ++j) {
      double a = gx.at<double>(i, j), b = gy.at<double>(i, j);
      s += std::sqrt((a * a + b * b) / 2);
    }
  return s / ((p.fused.rows - 1.0) * (p.fused.cols - 1.0));
}

double edge_intensity(const Planes& p) {
  // imfilter with fspecial('sobel') and its transpose, 'replicate' border; mean magnitude.
  static const double w[9] = {1, 2, 1, 0, 0, 0, -1, -2, -1};
  static const double wt[9] = {1, 0, -1, 2, 0, -2, 1, 0, -1};
  cv::Mat gx = correlate3x3(p.fused, w, Border::Replicate);
  cv::Mat gy = correlate3x3(p.fused, wt, Border::Replicate);
  cv::Mat mag;
  cv::magnitude(gx, gy, mag);
  return cv::mean(mag)[0];
}

}  // namespace timfusion::metrics_detail
