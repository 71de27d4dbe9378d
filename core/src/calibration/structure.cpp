// timfusion calibration: geometry helpers, structure maps and the pyramid.
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "calibration_internal.h"

namespace timfusion::calib {

Mat3 to_mat3(const Homography& h) {
  const auto& m = h.m;
  return Mat3(m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]);
}

Homography to_homography(const Mat3& m) {
  Homography h;
  const double s = std::abs(m(2, 2)) > 1e-12 ? 1.0 / m(2, 2) : 1.0;
  for (int i = 0; i < 9; ++i) h.m[i] = m.val[i] * s;
  return h;
}

Mat3 resize_map(cv::Size from, cv::Size to) {
  const double fx = double(to.width) / from.width, fy = double(to.height) / from.height;
  return Mat3(fx, 0, 0.5 * fx - 0.5, 0, fy, 0.5 * fy - 0.5, 0, 0, 1);
}

cv::Point2d apply(const Mat3& h, cv::Point2d p) {
  const double w = h(2, 0) * p.x + h(2, 1) * p.y + h(2, 2);
  return {(h(0, 0) * p.x + h(0, 1) * p.y + h(0, 2)) / w, (h(1, 0) * p.x + h(1, 1) * p.y + h(1, 2)) / w};
}

cv::Mat gray_float(const cv::Mat& image) {
  cv::Mat g;
  if (image.channels() == 1) {
    g = image;
  } else {
    cv::Mat c3;
    if (image.channels() == 4)
      cv::cvtColor(image, c3, cv::COLOR_BGRA2BGR);
    else
      c3 = image;
    std::vector<cv::Mat> ch;
    cv::split(c3, ch);
    // BT.601 luma; the channel order hardly matters for structure.
    cv::Mat b, gr, r;
    ch[0].convertTo(b, CV_32F);
    ch[1].convertTo(gr, CV_32F);
    ch[2].convertTo(r, CV_32F);
    return 0.114f * b + 0.587f * gr + 0.299f * r;
  }
  cv::Mat out;
  g.convertTo(out, CV_32F);
  return out;
}

float quantile(const cv::Mat& m, double p) {
  std::vector<float> v;
  v.reserve(m.total());
  // A regular subsample is plenty for a percentile and keeps big frames cheap.
  const int step = m.total() > 400000 ? 3 : 1;
  for (int y = 0; y < m.rows; y += step) {
    const float* r = m.ptr<float>(y);
    for (int x = 0; x < m.cols; x += step) v.push_back(r[x]);
  }
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, size_t(p * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

double relative_contrast(const cv::Mat& gray32, int depth) {
  double range = depth == CV_8U ? 255.0 : depth == CV_16U ? 65535.0 : 1.0;
  if (depth != CV_8U && depth != CV_16U) {
    double lo, hi;
    cv::minMaxLoc(gray32, &lo, &hi);
    range = std::max(hi - lo, 1e-12);
    if (hi - lo <= 0) return 0;
  }
  return (quantile(gray32, 0.995) - quantile(gray32, 0.005)) / range;
}

cv::Mat structure_map(const cv::Mat& gray32, double pre_blur) {
  cv::Mat smooth, gx, gy, mag;
  if (pre_blur >= 0.3)
    cv::GaussianBlur(gray32, smooth, cv::Size(0, 0), pre_blur);
  else
    smooth = gray32;
  cv::Sobel(smooth, gx, CV_32F, 1, 0, 3);
  cv::Sobel(smooth, gy, CV_32F, 0, 1, 3);
  cv::magnitude(gx, gy, mag);
  {
    // Local contrast normalisation: divided by the mean magnitude around it
    // (a window of 1/40 of the frame), an edge counts by how much it stands
    // out from its neighbourhood, not by its absolute contrast. Thermal and
    // visible contrasts differ region by region (a dark street at night, a
    // hot engine): without this the strongest regions of one camera decide
    // the alignment. Measured on the shared data (6 cases per set): right
    // placements (< 12 px) 19 of 24 instead of 13 of 24.
    cv::Mat local;
    const double sigma = std::max(4.0, std::max(gray32.cols, gray32.rows) / 40.0);
    cv::GaussianBlur(mag, local, cv::Size(0, 0), sigma);
    // The floor keeps flat regions (sensor noise only) from being blown up.
    local += 0.2 * cv::mean(mag)[0] + 1e-6;
    cv::divide(mag, local, mag);
  }
  const float p99 = quantile(mag, 0.99);
  if (p99 <= 0) return cv::Mat::zeros(gray32.size(), CV_32F);
  mag *= 1.0f / p99;
  cv::min(mag, 1.0f, mag);
  // Square root: strong edges (a hot engine, a white line) dominate a plain
  // magnitude map; compressed, the many weaker shared edges count too.
  cv::sqrt(mag, mag);
  return mag;
}

namespace {

cv::Mat reduced(const cv::Mat& gray32, double f) {
  const cv::Size s(std::max(8, int(std::lround(gray32.cols * f))), std::max(8, int(std::lround(gray32.rows * f))));
  if (s == gray32.size()) return gray32;
  cv::Mat out;
  cv::resize(gray32, out, s, 0, 0, cv::INTER_AREA);
  return out;
}

}  // namespace

Level make_level(const cv::Mat& ir_gray, const cv::Mat& vis_gray, double vis_factor, double ir_foot, int max_side) {
  // The IR frame reduced so that one of its pixels covers one pixel of this
  // visible level: then both structure maps see edges at the same scale.
  // Without it, a denser IR camera (or a coarser one) gives maps whose edge
  // widths differ by up to 4x, and ECC's optimum drifts on weak structure.
  // Never enlarged: where the IR camera is the coarser one, the visible
  // frame is blurred to the IR camera's footprint instead.
  const int ir_long = std::max(ir_gray.cols, ir_gray.rows);
  const double fi = std::min({1.0, double(max_side) / ir_long, vis_factor * ir_foot});
  Level l;
  l.vis_factor = vis_factor;
  cv::Mat iv = reduced(ir_gray, fi), vv = reduced(vis_gray, vis_factor);
  const double ratio = vis_factor * ir_foot / fi;  // visible level pixels per IR level pixel
  if (ratio > 1.1) cv::GaussianBlur(vv, vv, cv::Size(0, 0), 0.45 * std::sqrt(ratio * ratio - 1.0));
  // The noise blur before the gradient is one visible level pixel for both
  // maps: on a coarser IR frame that is 1 / ratio of its pixels. A whole IR
  // pixel would widen its edges `ratio` times more than the visible ones,
  // and the cross-modal optimum then moves with the IR resolution
  // (scripts/calibration_resolution_shift.py, 29 pairs outside the
  // benchmarks: at 1/2 (1/3) of the resolution the optimum moved a median of
  // 1.26 (2.31) visible px with one IR pixel of blur, 0.91 (1.68) with one
  // visible pixel; 90th percentile 3.58 (5.02) -> 1.73 (4.71)).
  l.ir = structure_map(iv, ratio > 1.0 ? 1.0 / ratio : 1.0);
  l.vis = structure_map(vv);
  l.ir_from_full = resize_map(ir_gray.size(), iv.size());
  l.vis_from_full = resize_map(vis_gray.size(), vv.size());
  return l;
}

std::vector<Level> build_pyramid(const cv::Mat& ir_gray, const cv::Mat& vis_gray, int max_side, int coarse_side,
                                 double ir_foot) {
  const int vis_long = std::max(vis_gray.cols, vis_gray.rows);
  if (ir_foot <= 0)  // the resolution guess: the IR frame stretched onto the visible one
    ir_foot = std::sqrt(double(vis_gray.cols) * vis_gray.rows / (double(ir_gray.cols) * ir_gray.rows));
  double fv = std::min(1.0, double(max_side) / vis_long);
  std::vector<Level> levels;
  for (;;) {
    levels.push_back(make_level(ir_gray, vis_gray, fv, ir_foot, max_side));
    const Level& l = levels.back();
    if (std::max(l.vis.cols, l.vis.rows) <= coarse_side * 1.5 || std::min(l.ir.cols, l.ir.rows) < 32) break;
    fv *= 0.5;
  }
  return levels;
}

Mat3 to_level(const Level& l, const Mat3& h_full) { return l.vis_from_full * h_full * l.ir_from_full.inv(); }
Mat3 to_full(const Level& l, const Mat3& h_level) { return l.vis_from_full.inv() * h_level * l.ir_from_full; }

}  // namespace timfusion::calib

namespace timfusion::calib {

double ir_footprint(const Mat3& h, cv::Size ir) {
  std::vector<cv::Point2f> q;
  for (cv::Point2d p : {cv::Point2d(0, 0), cv::Point2d(ir.width, 0), cv::Point2d(ir.width, ir.height),
                        cv::Point2d(0, ir.height)})
    q.push_back(cv::Point2f(apply(h, p)));
  return std::sqrt(std::abs(cv::contourArea(q)) / (double(ir.width) * ir.height));
}

}  // namespace timfusion::calib
