// timfusion calibration with a checkerboard seen by both cameras: the board's
// inner corners, found in each frame, are matched points, and the homography
// is a least-squares fit to all of them. For a thermal camera the board is
// heated (a lamp, the sun, a warm plate behind a cut-out board), so its
// squares differ in temperature; which colour comes out bright is not known,
// and corner detection does not care about polarity.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <opencv2/calib3d.hpp>
#include <opencv2/imgproc.hpp>

#include "calibration_internal.h"
#include "timfusion/calibration.h"

namespace timfusion {

namespace {

using calib::Mat3;

// Corner detection wants about 10+ pixels per square: small thermal frames
// are enlarged to this longer side first (corners are scaled back).
constexpr int kDetectSide = 1280;

// 8-bit gray with the 0.5..99.5 % intensity range stretched (16-bit and float
// thermal frames, dim boards).
cv::Mat detection_gray(const cv::Mat& image) {
  cv::Mat g = calib::gray_float(image), out;
  if (g.empty()) return out;
  const float lo = calib::quantile(g, 0.005), hi = calib::quantile(g, 0.995);
  g.convertTo(out, CV_8U, hi > lo ? 255.0 / (hi - lo) : 1.0, hi > lo ? -lo * 255.0 / (hi - lo) : 0.0);
  return out;
}

// The board's inner corners in image pixels, row by row; empty when not found.
std::vector<cv::Point2f> find_corners(const cv::Mat& image, cv::Size inner) {
  cv::Mat gray = detection_gray(image);
  if (gray.empty()) return {};
  const double factor = std::max(1.0, double(kDetectSide) / std::max(gray.cols, gray.rows));
  cv::Mat big = gray;
  if (factor > 1.0) cv::resize(gray, big, cv::Size(), factor, factor, cv::INTER_CUBIC);
  std::vector<cv::Point2f> corners;
  const int flags = cv::CALIB_CB_NORMALIZE_IMAGE | cv::CALIB_CB_EXHAUSTIVE | cv::CALIB_CB_ACCURACY;
  if (!cv::findChessboardCornersSB(big, inner, corners, flags)) return {};
  // Back to the frame's pixel centres (cv::resize maps x to (x + 0.5) * f - 0.5).
  for (auto& c : corners) c = cv::Point2f(float((c.x + 0.5) / factor - 0.5), float((c.y + 0.5) / factor - 0.5));
  return corners;
}

// The same corners numbered from another corner of the board: the detector
// may start at any corner whose squares look alike (always the opposite one;
// on a square board also the two others).
std::vector<std::vector<cv::Point2f>> numberings(const std::vector<cv::Point2f>& c, cv::Size inner) {
  std::vector<std::vector<cv::Point2f>> out{c, std::vector<cv::Point2f>(c.rbegin(), c.rend())};
  if (inner.width == inner.height) {
    const int n = inner.width;
    std::vector<cv::Point2f> rot(c.size()), rot3(c.size());
    for (int r = 0; r < n; ++r)
      for (int k = 0; k < n; ++k) {
        rot[r * n + k] = c[k * n + (n - 1 - r)];
        rot3[r * n + k] = c[(n - 1 - k) * n + r];
      }
    out.push_back(rot);
    out.push_back(rot3);
  }
  return out;
}

// How far a homography turns the IR frame's horizontal axis (radians, 0..pi);
// a mirrored map counts as impossible.
double turn(const Mat3& h, cv::Size ir) {
  const cv::Point2d c(ir.width / 2.0, ir.height / 2.0);
  const cv::Point2d a = calib::apply(h, c), b = calib::apply(h, c + cv::Point2d(ir.width / 4.0, 0));
  const cv::Point2d u = calib::apply(h, c + cv::Point2d(0, ir.height / 4.0));
  const double cross = (b.x - a.x) * (u.y - a.y) - (b.y - a.y) * (u.x - a.x);
  if (!(cross > 0)) return 1e9;  // mirrored or degenerate
  return std::abs(std::atan2(b.y - a.y, b.x - a.x));
}

double rms(const Mat3& h, const std::vector<cv::Point2f>& from, const std::vector<cv::Point2f>& to) {
  double s = 0;
  for (size_t i = 0; i < from.size(); ++i) {
    const cv::Point2d d = calib::apply(h, cv::Point2d(from[i])) - cv::Point2d(to[i]);
    s += d.dot(d);
  }
  return from.empty() ? 0 : std::sqrt(s / from.size());
}

std::string size_text(cv::Size s) { return std::to_string(s.width) + "x" + std::to_string(s.height); }

}  // namespace

cv::Size parse_checkerboard(const std::string& text) {
  int cols = 0, rows = 0;
  char x = 0, rest = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &cols, &x, &rows, &rest) != 3 || (x != 'x' && x != 'X') || cols < 3 ||
      rows < 3 || cols > 100 || rows > 100)
    throw Error("checkerboard \"" + text + "\": expected inner corners as COLSxROWS, each 3 to 100 (e.g. 9x6)");
  return cv::Size(cols, rows);
}

Calibration calibrate_checkerboard(const std::vector<CalibrationPair>& pairs, const CheckerboardOptions& o) {
  if (pairs.empty()) throw Error("no frame pairs given");
  if (o.inner_corners.width < 3 || o.inner_corners.height < 3)
    throw Error("a checkerboard needs at least 3x3 inner corners (given " + size_text(o.inner_corners) + ")");
  const cv::Size ir_size = pairs[0].ir.size(), vis_size = pairs[0].vis.size();
  Calibration c;
  c.method = "checkerboard";
  c.ir_size = ir_size;
  c.vis_size = vis_size;
  c.correlation = c.distinctness = c.stability_px = -1;  // structure measures: not used here

  struct Found {
    std::vector<cv::Point2f> ir, vis;
    Mat3 h;
  };
  std::vector<Found> found(pairs.size());
  std::vector<cv::Point2f> all_ir, all_vis;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const CalibrationPair& p = pairs[i];
    if (p.ir.empty() || p.vis.empty()) throw Error(p.name + ": empty frame");
    if (p.ir.size() != ir_size || p.vis.size() != vis_size)
      throw Error(p.name + ": frame sizes differ from the first pair's (all pairs must come from one rig)");
    PairReport r;
    r.name = p.name;
    std::vector<cv::Point2f> vis = find_corners(p.vis, o.inner_corners);
    std::vector<cv::Point2f> ir = vis.empty() ? std::vector<cv::Point2f>() : find_corners(p.ir, o.inner_corners);
    if (vis.empty() || ir.empty()) {
      r.problem = std::string("no ") + size_text(o.inner_corners) + " checkerboard found in " +
                  frame_text(p, !vis.empty());
      c.pairs.push_back(r);
      continue;
    }
    // The IR corners' numbering that gives an upright, unmirrored map.
    double best_turn = 1e9;
    for (const auto& numbered : numberings(ir, o.inner_corners)) {
      cv::Mat h = cv::findHomography(numbered, vis, 0);
      if (h.empty()) continue;
      const Mat3 m(h);
      const double t = turn(m, ir_size);
      if (t < best_turn) {
        best_turn = t;
        found[i] = {numbered, vis, m};
      }
    }
    if (best_turn > 1e8) {
      r.problem = "the board's corners in the two frames give no unmirrored mapping";
      c.pairs.push_back(r);
      continue;
    }
    r.estimated = true;
    c.pairs.push_back(r);
    all_ir.insert(all_ir.end(), found[i].ir.begin(), found[i].ir.end());
    all_vis.insert(all_vis.end(), found[i].vis.begin(), found[i].vis.end());
  }
  if (all_ir.empty()) {
    std::string why = c.pairs.empty() ? "" : c.pairs[0].problem;
    throw CalibrationRefused("no frame pair shows the " + size_text(o.inner_corners) +
                             " checkerboard in both cameras (first pair: " + why +
                             "): give the board's inner corners per row x column, keep all of it in both views, and "
                             "heat it (lamp, sun) so that its squares differ in temperature");
  }
  cv::Mat fit = cv::findHomography(all_ir, all_vis, 0);  // least squares over every pair's corners
  if (fit.empty()) throw CalibrationRefused("the checkerboard corners do not determine a homography");
  const Mat3 h(fit);
  c.h = calib::to_homography(h);
  c.residual_px = rms(h, all_ir, all_vis);

  std::vector<double> spread;
  for (size_t i = 0; i < pairs.size(); ++i) {
    PairReport& r = c.pairs[i];
    if (!r.estimated) continue;
    r.used = true;
    r.correlation = -1;
    r.distance_px = reprojection_error(calib::to_homography(found[i].h), c.h, ir_size, vis_size);
    spread.push_back(r.distance_px);
  }
  if (spread.size() > 1) {
    std::nth_element(spread.begin(), spread.begin() + spread.size() / 2, spread.end());
    c.spread_px = spread[spread.size() / 2];
  }
  if (c.residual_px > o.max_rms_px)
    throw CalibrationRefused("the checkerboard corners fit the homography only to " +
                             std::to_string(c.residual_px).substr(0, 5) + " px RMS (limit " +
                             std::to_string(o.max_rms_px).substr(0, 5) +
                             "): a board tilted far from the scene's plane, a blurred frame, or cameras that moved "
                             "between pairs");
  const double used = double(spread.size()) / pairs.size();
  c.confidence = std::clamp(1.0 - c.residual_px / o.max_rms_px, 0.0, 1.0) * used;
  return c;
}

}  // namespace timfusion
