// timfusion calibration: scale x translation search on the coarsest level.
//
// ECC only converges from a start within a few pixels (coarse level) of the
// answer; a rig can be off by 10 % of the frame and by a factor of two in
// scale. So, for a geometric series of scales around the resolution guess, the
// IR structure map is resized and slid over the visible one (normalised
// cross-correlation, cv::matchTemplate, which is FFT-based), within the
// allowed shift. Rotation and perspective are left to ECC.
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "calibration_internal.h"

namespace timfusion::calib {

namespace {

struct Placement {
  cv::Point offset;  // visible-level position of the resized IR map's pixel (0,0)
  double score = -1;
};

// Best placement of b (the IR map resized by scale s) over v within
// |shift| <= max_shift per axis around the centred position.
Placement best_placement(const cv::Mat& v, const cv::Mat& b, double s, double max_shift) {
  const int wv = v.cols, hv = v.rows, wb = b.cols, hb = b.rows;
  const cv::Point centred((wv - wb) / 2, (hv - hb) / 2);
  const int mx = int(std::ceil(max_shift * wv)) + 1, my = int(std::ceil(max_shift * hv)) + 1;
  // The template is a central crop of the smaller map that stays inside the
  // larger one for every allowed shift.
  const bool ir_smaller = s <= 1.0;
  const cv::Size small = ir_smaller ? b.size() : v.size();
  const cv::Size large = ir_smaller ? v.size() : b.size();
  const cv::Size crop(std::min(small.width, large.width - 2 * mx), std::min(small.height, large.height - 2 * my));
  if (crop.width < 12 || crop.height < 12) return {};
  const cv::Point c0((small.width - crop.width) / 2, (small.height - crop.height) / 2);
  const cv::Mat& small_m = ir_smaller ? b : v;
  const cv::Mat& large_m = ir_smaller ? v : b;
  cv::Mat result;
  cv::matchTemplate(large_m, small_m(cv::Rect(c0, crop)), result, cv::TM_CCOEFF_NORMED);
  Placement best;
  for (int y = 0; y < result.rows; ++y) {
    const float* r = result.ptr<float>(y);
    for (int x = 0; x < result.cols; ++x) {
      // Where the resized IR map's (0,0) lands in visible-level pixels.
      const cv::Point off = ir_smaller ? cv::Point(x - c0.x, y - c0.y) : cv::Point(c0.x - x, c0.y - y);
      if (std::abs(off.x - centred.x) > mx || std::abs(off.y - centred.y) > my) continue;
      if (std::isfinite(r[x]) && r[x] > best.score) best = {off, r[x]};
    }
  }
  return best;
}

}  // namespace

std::vector<Candidate> coarse_search(const Level& coarse, cv::Size ir_full, cv::Size vis_full,
                                     const CalibrationOptions& o) {
  // A little blur widens the correlation peak so that the scale steps below
  // cannot step over it.
  cv::Mat v, ir;
  cv::GaussianBlur(coarse.vis, v, cv::Size(0, 0), 1.0);
  cv::GaussianBlur(coarse.ir, ir, cv::Size(0, 0), 1.0);
  const double ratio = 1.07;
  const double lo = std::max(1e-3, std::min(o.min_scale, o.max_scale)), hi = std::max(o.min_scale, o.max_scale);
  const int n = std::max(1, int(std::ceil(std::log(hi / lo) / std::log(ratio)))) + 1;
  // Rotation is searched coarsely too: a few degrees turn the frame's corners
  // by several coarse pixels, enough to lose a weak cross-modal peak.
  const double angles[] = {-4.0, 0.0, 4.0};
  const int na = 3;
  std::vector<Candidate> all(size_t(n) * na);
  for (int i = 0; i < n; ++i) {
    const double s = n == 1 ? lo : lo * std::pow(hi / lo, double(i) / (n - 1));
    const cv::Size bs(int(std::lround(s * v.cols)), int(std::lround(s * v.rows)));
    for (int a = 0; a < na; ++a) all[size_t(i) * na + a] = {Mat3::eye(), s, -1};
    if (bs.width < 12 || bs.height < 12) continue;
    cv::Mat b;
    cv::resize(ir, b, bs, 0, 0, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    for (int a = 0; a < na; ++a) {
      cv::Mat rot = cv::getRotationMatrix2D(cv::Point2f((bs.width - 1) / 2.0f, (bs.height - 1) / 2.0f), angles[a], 1.0);
      cv::Mat br;
      if (angles[a] == 0)
        br = b;
      else
        cv::warpAffine(b, br, rot, bs, cv::INTER_LINEAR, cv::BORDER_CONSTANT, 0);
      const Placement p = best_placement(v, br, s, o.max_shift);
      // Level homography: IR level pixel -> resized map pixel -> rotated -> visible level pixel.
      const Mat3 shift(1, 0, p.offset.x, 0, 1, p.offset.y, 0, 0, 1);
      const Mat3 r3(rot.at<double>(0, 0), rot.at<double>(0, 1), rot.at<double>(0, 2), rot.at<double>(1, 0),
                    rot.at<double>(1, 1), rot.at<double>(1, 2), 0, 0, 1);
      all[size_t(i) * na + a] = {to_full(coarse, shift * r3 * resize_map(ir.size(), bs)), s, p.score};
    }
  }
  (void)ir_full;
  (void)vis_full;
  // Local maxima over scale (per angle), best first.
  std::vector<Candidate> peaks;
  for (int i = 0; i < n; ++i)
    for (int a = 0; a < na; ++a) {
      const double sc = all[size_t(i) * na + a].score;
      if (sc <= 0) continue;
      if ((i > 0 && all[size_t(i - 1) * na + a].score > sc) || (i + 1 < n && all[size_t(i + 1) * na + a].score > sc))
        continue;
      peaks.push_back(all[size_t(i) * na + a]);
    }
  std::sort(peaks.begin(), peaks.end(), [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  return peaks;
}

}  // namespace timfusion::calib
