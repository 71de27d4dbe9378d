// timfusion calibration: enhanced correlation coefficient (ECC) refinement
// on one pyramid level, and the local residual check.
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include "calibration_internal.h"

namespace timfusion::calib {

namespace {

// The level's IR map warped onto its visible frame by h_full, and the mask of
// the visible pixels the IR frame covers.
void warp_onto_vis(const Level& l, const Mat3& h_full, cv::Mat& warped, cv::Mat& valid) {
  const Mat3 hl = to_level(l, h_full);
  cv::warpPerspective(l.ir, warped, cv::Mat(hl), l.vis.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, 0);
  cv::warpPerspective(cv::Mat(l.ir.size(), CV_8U, cv::Scalar(255)), valid, cv::Mat(hl), l.vis.size(),
                      cv::INTER_NEAREST, cv::BORDER_CONSTANT, 0);
}

// h_full followed by a shift of d visible pixels in direction `angle`.
Mat3 shifted(const Mat3& h_full, double d, double angle) {
  return Mat3(1, 0, d * std::cos(angle), 0, 1, d * std::sin(angle), 0, 0, 1) * h_full;
}

}  // namespace

double refine(const Level& l, Mat3& h_full, int motion, int iterations, double eps) {
  Mat3 hl = to_level(l, h_full);
  hl *= 1.0 / hl(2, 2);
  cv::Mat w;
  if (motion == cv::MOTION_HOMOGRAPHY)
    cv::Mat(hl).convertTo(w, CV_32F);
  else
    cv::Mat(hl).rowRange(0, 2).convertTo(w, CV_32F);
  // Template = IR map, input = visible map: the warp maps IR level pixels to
  // visible level pixels, i.e. it is the homography itself. Pixels that fall
  // outside the visible frame are left out by ECC.
  const cv::TermCriteria crit(cv::TermCriteria::COUNT + cv::TermCriteria::EPS, iterations, eps);
  const double corr = cv::findTransformECC(l.ir, l.vis, w, motion, crit, cv::noArray(), 5);
  Mat3 out = Mat3::eye();
  for (int r = 0; r < w.rows; ++r)
    for (int c = 0; c < 3; ++c) out(r, c) = w.at<float>(r, c);
  h_full = to_full(l, out);
  return corr;
}

double refine_last_two(const Level& coarser, const Level& finest, Mat3& h_full) {
  refine(coarser, h_full, cv::MOTION_HOMOGRAPHY, 60, 1e-4);
  return refine(finest, h_full, cv::MOTION_HOMOGRAPHY, kFinestIterations, kFinestEps);
}

double local_residual(const Level& l, const Mat3& h_full) {
  cv::Mat warped, valid;
  warp_onto_vis(l, h_full, warped, valid);
  const int grid = 4;
  const int pw = l.vis.cols / grid, ph = l.vis.rows / grid;
  if (pw < 24 || ph < 24) return -1;
  std::vector<double> shifts;
  for (int gy = 0; gy < grid; ++gy)
    for (int gx = 0; gx < grid; ++gx) {
      const cv::Rect r(gx * pw, gy * ph, pw, ph);
      if (cv::countNonZero(valid(r)) < 0.95 * r.area()) continue;
      cv::Mat a = warped(r), b = l.vis(r);
      cv::Scalar ma, sa, mb, sb;
      cv::meanStdDev(a, ma, sa);
      cv::meanStdDev(b, mb, sb);
      if (sa[0] < 0.05 || sb[0] < 0.05) continue;  // no structure here
      // The aperture problem: a patch with edges of one direction only pins
      // the shift across them, not along. Needs two strong directions.
      cv::Mat gx2, gy2;
      cv::Sobel(b, gx2, CV_32F, 1, 0, 3);
      cv::Sobel(b, gy2, CV_32F, 0, 1, 3);
      const double sxx = gx2.dot(gx2), syy = gy2.dot(gy2), sxy = gx2.dot(gy2);
      const double tr = sxx + syy, det = sxx * syy - sxy * sxy;
      const double lmin = 0.5 * (tr - std::sqrt(std::max(0.0, tr * tr - 4 * det)));
      if (tr <= 0 || lmin / tr < 0.15) continue;
      cv::Mat w = cv::Mat::eye(2, 3, CV_32F);
      try {
        const double c = cv::findTransformECC(
            a, b, w, cv::MOTION_TRANSLATION,
            cv::TermCriteria(cv::TermCriteria::COUNT + cv::TermCriteria::EPS, 30, 1e-3), cv::noArray(), 5);
        if (c < 0.3) continue;
      } catch (const cv::Exception&) {
        continue;
      }
      const double dx = w.at<float>(0, 2) / l.vis_from_full(0, 0), dy = w.at<float>(1, 2) / l.vis_from_full(1, 1);
      shifts.push_back(std::hypot(dx, dy));
    }
  if (shifts.size() < 3) return -1;
  std::nth_element(shifts.begin(), shifts.begin() + shifts.size() / 2, shifts.end());
  return shifts[shifts.size() / 2];
}

double correlation_at(const Level& l, const Mat3& h_full) {
  cv::Mat warped, valid;
  warp_onto_vis(l, h_full, warped, valid);
  if (cv::countNonZero(valid) < 0.05 * valid.total()) return 0;
  // Zero-mean normalised cross-correlation over the overlap: what ECC
  // maximises.
  cv::Scalar ma, sa, mb, sb;
  cv::meanStdDev(warped, ma, sa, valid);
  cv::meanStdDev(l.vis, mb, sb, valid);
  if (sa[0] <= 1e-9 || sb[0] <= 1e-9) return 0;
  cv::Mat a = warped - ma[0], b = l.vis - mb[0];
  a.setTo(0, valid == 0);
  b.setTo(0, valid == 0);
  return a.dot(b) / (double(cv::countNonZero(valid)) * sa[0] * sb[0]);
}

double distinctness(const Level& l, const Mat3& h_full, cv::Size vis_full) {
  const double c0 = correlation_at(l, h_full);
  // Shift the estimate by 3 % of the frame in 8 directions: a true alignment
  // of thin structure loses most of its correlation; a coincidence of broad
  // bright regions (the usual wrong answer) keeps it.
  const double d = 0.03 * std::max(vis_full.width, vis_full.height);
  double sum = 0;
  int n = 0;
  for (int k = 0; k < 8; ++k) {
    sum += correlation_at(l, shifted(h_full, d, k * CV_PI / 4));
    ++n;
  }
  return c0 - sum / n;
}

double restart_spread(const Level& coarser, const Level& finest, const Mat3& h_full, cv::Size ir_full,
                      cv::Size vis_full, double d) {
  // Where the structure pins the alignment down, ECC comes back to the same
  // place from any start in its basin; where it only holds it loosely (weak
  // or one-directional edges, parallax between regions), each start ends
  // somewhere else. The distance between those ends is what an estimate
  // from this structure is worth.
  double worst = 0;
  for (int k = 0; k < 4; ++k) {
    Mat3 h = shifted(h_full, d, k * CV_PI / 2 + CV_PI / 4);
    double moved = d;  // not converging counts as not coming back
    try {
      refine_last_two(coarser, finest, h);
      moved = reprojection_error(to_homography(h), to_homography(h_full), ir_full, vis_full);
    } catch (const cv::Exception&) {
    }
    worst = std::max(worst, moved);
  }
  return worst;
}

}  // namespace timfusion::calib
