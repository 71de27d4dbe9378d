#include "image_ops.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

namespace timfusion::metrics_detail {

cv::Mat gaussian_factor(int n, double sigma) {
  cv::Mat g(n, 1, CV_64F);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    double x = i - (n - 1) / 2.0;
    g.at<double>(i) = std::exp(-x * x / (2 * sigma * sigma));
    sum += g.at<double>(i);
  }
  return g / sum;
}

cv::Mat filter_valid(const cv::Mat& x, const cv::Mat& g) {
  const int r = g.rows / 2;
  if (x.rows < g.rows || x.cols < g.rows) return cv::Mat(0, 0, CV_64F);
  cv::Mat same;
  // The border mode only touches pixels that 'valid' drops.
  cv::sepFilter2D(x, same, CV_64F, g, g, cv::Point(-1, -1), 0, cv::BORDER_REFLECT_101);
  return same(cv::Rect(r, r, x.cols - 2 * r, x.rows - 2 * r)).clone();
}

cv::Mat filter_same_zero(const cv::Mat& x, const cv::Mat& g, double scale) {
  // Zero padding wider than the kernel keeps OpenCV's border handling out of the result.
  const int r = g.rows / 2;
  cv::Mat padded;
  cv::copyMakeBorder(x, padded, r, r, r, r, cv::BORDER_CONSTANT, 0);
  cv::Mat out;
  cv::sepFilter2D(padded, out, CV_64F, g, g * scale, cv::Point(-1, -1), 0, cv::BORDER_CONSTANT);
  return out(cv::Rect(r, r, x.cols, x.rows)).clone();
}

cv::Mat correlate3x3(const cv::Mat& x, const double k[9], Border border) {
  CV_Assert(x.type() == CV_64F);
  cv::Mat pad;
  if (border == Border::Reflect101 && (x.rows < 2 || x.cols < 2))
    border = Border::Replicate;  // a 1-pixel-wide plane mirrors onto itself
  const int mode = border == Border::Zero        ? cv::BORDER_CONSTANT
                   : border == Border::Replicate ? cv::BORDER_REPLICATE
                                                 : cv::BORDER_REFLECT_101;
  cv::copyMakeBorder(x, pad, 1, 1, 1, 1, mode, 0);
  cv::Mat out(x.size(), CV_64F);
  for (int i = 0; i < x.rows; ++i) {
    const double* r[3] = {pad.ptr<double>(i), pad.ptr<double>(i + 1), pad.ptr<double>(i + 2)};
    double* o = out.ptr<double>(i);
    for (int j = 0; j < x.cols; ++j) {
      double s = 0.0;
      for (int di = 0; di < 3; ++di)
        for (int dj = 0; dj < 3; ++dj) s += k[di * 3 + dj] * r[di][j + dj];
      o[j] = s;
    }
  }
  return out;
}

void matlab_gradient(const cv::Mat& x, cv::Mat& gx, cv::Mat& gy) {
  gx = cv::Mat::zeros(x.size(), CV_64F);
  gy = cv::Mat::zeros(x.size(), CV_64F);
  const int m = x.rows, n = x.cols;
  for (int i = 0; i < m; ++i) {
    const double* p = x.ptr<double>(i);
    double* q = gx.ptr<double>(i);
    if (n < 2) break;
    q[0] = p[1] - p[0];
    q[n - 1] = p[n - 1] - p[n - 2];
    for (int j = 1; j < n - 1; ++j) q[j] = (p[j + 1] - p[j - 1]) / 2;
  }
  if (m < 2) return;
  for (int j = 0; j < n; ++j) {
    gy.at<double>(0, j) = x.at<double>(1, j) - x.at<double>(0, j);
    gy.at<double>(m - 1, j) = x.at<double>(m - 1, j) - x.at<double>(m - 2, j);
    for (int i = 1; i < m - 1; ++i) gy.at<double>(i, j) = (x.at<double>(i + 1, j) - x.at<double>(i - 1, j)) / 2;
  }
}

cv::Mat normalize1(const cv::Mat& x) {
  double lo, hi;
  cv::minMaxLoc(x, &lo, &hi);
  if (hi == 0 && lo == 0) return x.clone();
  cv::Mat out(x.size(), CV_64F);
  for (int i = 0; i < x.rows; ++i)
    for (int j = 0; j < x.cols; ++j)
      out.at<double>(i, j) = std::round((x.at<double>(i, j) - lo) / (hi - lo) * 255);
  return out;
}

// Frequency of DFT index k on MATLAB's freqspace grid after ifftshift:
// freqspace gives (j - floor(n/2)) * 2/n at shifted index j.
static double freq(int k, int n) { return ((k + n / 2) % n - n / 2) * 2.0 / n; }

cv::Mat radial_filter(const cv::Mat& x, double su, double sv, double (*h)(double r)) {
  cv::Mat spec;
  cv::dft(x, spec, cv::DFT_COMPLEX_OUTPUT);
  for (int i = 0; i < spec.rows; ++i) {
    double v = sv * freq(i, spec.rows);
    auto* p = spec.ptr<cv::Vec2d>(i);
    for (int j = 0; j < spec.cols; ++j) {
      double u = su * freq(j, spec.cols);
      p[j] *= h(std::sqrt(u * u + v * v));
    }
  }
  cv::Mat back;
  cv::idft(spec, back, cv::DFT_SCALE | cv::DFT_COMPLEX_OUTPUT);
  cv::Mat planes[2];
  cv::split(back, planes);
  // H is even in frequency, so the imaginary part is rounding noise only.
  return planes[0];
}

cv::Mat block_sums(const cv::Mat& x, int b) {
  const int br = (x.rows + b - 1) / b, bc = (x.cols + b - 1) / b;
  cv::Mat out = cv::Mat::zeros(br, bc, CV_64F);
  for (int i = 0; i < x.rows; ++i)
    for (int j = 0; j < x.cols; ++j) out.at<double>(i / b, j / b) += x.at<double>(i, j);
  return out;
}

double corr2(const cv::Mat& a, const cv::Mat& b) {
  const double ma = cv::mean(a)[0], mb = cv::mean(b)[0];
  double sab = 0, saa = 0, sbb = 0;
  for (int i = 0; i < a.rows; ++i)
    for (int j = 0; j < a.cols; ++j) {
      double da = a.at<double>(i, j) - ma, db = b.at<double>(i, j) - mb;
      sab += da * db;
      saa += da * da;
      sbb += db * db;
    }
  return sab / std::sqrt(saa * sbb);
}

}  // namespace timfusion::metrics_detail
