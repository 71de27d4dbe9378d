// timfusion-calibrate-bench: accuracy of timfusion::calibrate on registered
// IR/visible pairs with a known synthetic misalignment.
//
// For each case a registered pair is taken from DATA/ir + DATA/vis, a random
// homography of realistic size is drawn (scale 0.5-2 relative to the
// resolution guess, centre shift up to 10 % of the visible width/height,
// rotation up to 5 degrees, mild perspective) together with an IR resolution
// (0.5, 0.75 or 1 x the visible one), and the IR camera's frame is rendered
// from the registered IR (area-filtered; beyond the registered IR's border the
// scene is continued by reflection, as a real wider IR field of view would
// show more scene). The estimate is compared with the truth: mean distance in
// visible pixels over a 5 x 5 lattice of the visible frame where the IR frame
// covers it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "timfusion/calibration.h"
#include "timfusion/pairs.h"
#include "calibration/calibration_internal.h"  // --oracle: the correlation at the truth
#include <opencv2/video/tracking.hpp>

using namespace timfusion;

namespace {

struct Case {
  double r, s, theta_deg, tx, ty, px, py;
};

cv::Matx33d homography_for(const Case& c, cv::Size ir, cv::Size vis) {
  const double cx = (vis.width - 1) / 2.0, cy = (vis.height - 1) / 2.0;
  const double th = c.theta_deg * M_PI / 180;
  const cv::Matx33d to_c(1, 0, -cx, 0, 1, -cy, 0, 0, 1);
  const cv::Matx33d back(1, 0, cx + c.tx * vis.width, 0, 1, cy + c.ty * vis.height, 0, 0, 1);
  const cv::Matx33d rs(c.s * std::cos(th), -c.s * std::sin(th), 0, c.s * std::sin(th), c.s * std::cos(th), 0, 0, 0,
                       1);
  // Perspective in centred coordinates normalised by the half width: the
  // w term changes by up to px at the frame's edge.
  const cv::Matx33d persp(1, 0, 0, 0, 1, 0, c.px / (vis.width / 2.0), c.py / (vis.height / 2.0), 1);
  const double fx = double(vis.width) / ir.width, fy = double(vis.height) / ir.height;
  const cv::Matx33d res(fx, 0, 0.5 * fx - 0.5, 0, fy, 0.5 * fy - 0.5, 0, 0, 1);
  return back * rs * persp * to_c * res;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double k = p * (v.size() - 1);
  const size_t i = size_t(k);
  return i + 1 < v.size() ? v[i] + (k - i) * (v[i + 1] - v[i]) : v[i];
}

int usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "Usage: timfusion-calibrate-bench DATA_DIR [--cases N] [--seed S] [--min-correlation C] [--verbose]\n"
               "       [--fixed R S ROT TX TY PX PY] [--pair K] [--same-modality] [--oracle]\n"
               "DATA_DIR has ir/ and vis/ with registered pairs. Prints one line per case and a\n"
               "summary line: SUMMARY name cases refused wrong(>10px) median_px p90_px mean_s floor_px\n"
               "refused_median_px (error of the estimates refused for low correlation or distinctness)\n"
               "own_median_px own_p90_px (error against the truth corrected by the untouched pair's own\n"
               "structure optimum)\n");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int cases = 15;
  unsigned seed = 17;
  bool verbose = false;
  bool oracle = false;
  bool same = false;  // debugging: the visible luma as the IR scene
  // A fixed case instead of random ones (r s rot tx ty px py), e.g. a pure 2x
  // downscale "0.5 1 0 0 0 0 0": the truth is known exactly.
  bool fixed = false;
  Case fixed_case{};
  int first = -1;  // --pair K: only the K-th of the spread pairs
  double min_corr = CalibrationOptions{}.min_correlation;
  const double min_distinct = CalibrationOptions{}.min_distinctness;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") return usage(0);
    if (a == "--cases" && i + 1 < argc)
      cases = std::atoi(argv[++i]);
    else if (a == "--seed" && i + 1 < argc)
      seed = unsigned(std::atoi(argv[++i]));
    else if (a == "--min-correlation" && i + 1 < argc)
      min_corr = std::atof(argv[++i]);
    else if (a == "--fixed" && i + 7 < argc) {
      fixed = true;
      double* f[] = {&fixed_case.r, &fixed_case.s, &fixed_case.theta_deg, &fixed_case.tx, &fixed_case.ty,
                     &fixed_case.px, &fixed_case.py};
      for (double* v : f) *v = std::atof(argv[++i]);
    } else if (a == "--pair" && i + 1 < argc)
      first = std::atoi(argv[++i]);
    else if (a == "--same-modality")
      same = true;
    else if (a == "--oracle")
      oracle = true;
    else if (a == "--verbose")
      verbose = true;
    else if (!a.empty() && a[0] != '-' && dir.empty())
      dir = a;
    else
      return usage(2);
  }
  if (dir.empty() || cases < 1) return usage(2);
  try {
    const auto pairs = list_pairs(dir + "/ir", dir + "/vis");
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(-1, 1);
    std::vector<double> errors, own_errors, times, floors, refused_errors;
    int refused = 0, wrong = 0;
    const double resolutions[] = {0.5, 0.75, 1.0};
    for (int k = 0; k < cases; ++k) {
      const ImagePair& ip = pairs[size_t(k) * pairs.size() / cases];
      const cv::Mat vis = read_image(ip.vis, -1);
      const cv::Mat ir_reg = same ? read_image(ip.vis, 0) : read_image(ip.ir, 0);
      Case c;
      c.r = resolutions[k % 3];
      c.s = std::pow(2.0, u(rng));  // log-uniform in 0.5..2
      c.theta_deg = 5 * u(rng);
      c.tx = 0.1 * u(rng);
      c.ty = 0.1 * u(rng);
      c.px = 0.03 * u(rng);
      c.py = 0.03 * u(rng);
      if (fixed) c = fixed_case;
      if (first >= 0 && k != first) continue;
      const cv::Size ir_size(int(std::lround(c.r * vis.cols)), int(std::lround(c.r * vis.rows)));
      const cv::Matx33d h = homography_for(c, ir_size, vis.size());
      // One IR pixel covers about s / r visible pixels: low-pass first (a
      // camera pixel integrates its area).
      cv::Mat src = ir_reg;
      const double foot = c.s / c.r;
      if (foot > 1.2) cv::GaussianBlur(ir_reg, src, cv::Size(0, 0), 0.45 * foot);
      cv::Mat ir;
      cv::warpPerspective(src, ir, cv::Mat(h), ir_size, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                          cv::BORDER_REFLECT_101);
      Homography truth;
      for (int i = 0; i < 9; ++i) truth.m[i] = h.val[i] / h(2, 2);

      if (oracle) {
        // Structure correlation at the truth on every level (ECC from the truth).
        auto levels = calib::build_pyramid(calib::gray_float(ir), calib::gray_float(vis), 1024, 128);
        std::printf("oracle:");
        for (size_t l = 0; l < levels.size(); ++l) {
          calib::Mat3 hh = h;
          double c0 = -2;
          try { c0 = calib::refine(levels[l], hh, cv::MOTION_HOMOGRAPHY, 1, 1e-9); } catch (...) {}
          double c1 = -2;
          try { hh = h; c1 = calib::refine(levels[l], hh, cv::MOTION_HOMOGRAPHY, 60, 1e-5); } catch (...) {}
          std::printf(" L%zu %.3f->%.3f (moved %.2f)", l, c0, c1,
                      reprojection_error(calib::to_homography(hh), truth, ir_size, vis.size()));
        }
        std::printf("\n");
        auto cands = calib::coarse_search(levels.back(), ir_size, vis.size(), CalibrationOptions{});
        std::printf("coarse candidates (error to truth px, score):");
        for (size_t i = 0; i < cands.size() && i < 12; ++i)
          std::printf(" %.1f/%.3f", reprojection_error(calib::to_homography(cands[i].h), truth, ir_size, vis.size()),
                      cands[i].score);
        std::printf("\n");
      }
      // How well the data set itself is registered, by the same measure: the
      // shift that best aligns the structure of the untouched pair.
      double floor_px = NAN;
      // The structure optimum of the untouched pair (homography ECC from the
      // data set's registration, the same measure): if the data set is
      // misregistered by H0, the IR frame's true map is H0 * h. The error
      // against it ("own") measures the search and refinement alone.
      calib::Mat3 h0 = calib::Mat3::eye();
      {
        auto lv = calib::build_pyramid(calib::gray_float(ir_reg), calib::gray_float(vis), 1024, 128);
        calib::Mat3 id = calib::Mat3::eye();
        try {
          calib::refine(lv[0], id, cv::MOTION_HOMOGRAPHY, 100, 1e-5);
          h0 = id;
          floor_px = reprojection_error(calib::to_homography(h0), Homography{}, vis.size(), vis.size());
        } catch (const cv::Exception&) {
        }
        floors.push_back(floor_px);
        if (oracle) {
          // The same measure on 3x3 patches of the untouched pair: one common
          // shift means the data set's registration is off; scattered shifts
          // mean local parallax or a noisy measure.
          std::printf("untouched pair, translation per 3x3 patch (dx,dy px, corr):");
          const int pw = lv[0].vis.cols / 3, ph = lv[0].vis.rows / 3;
          for (int gy = 0; gy < 3; ++gy)
            for (int gx = 0; gx < 3; ++gx) {
              const cv::Rect rr(gx * pw, gy * ph, pw, ph);
              cv::Mat w = cv::Mat::eye(2, 3, CV_32F);
              double cc = -2;
              try {
                cc = cv::findTransformECC(lv[0].ir(rr), lv[0].vis(rr), w, cv::MOTION_TRANSLATION,
                                          cv::TermCriteria(cv::TermCriteria::COUNT + cv::TermCriteria::EPS, 100, 1e-5),
                                          cv::noArray(), 5);
              } catch (const cv::Exception&) {
              }
              std::printf(" (%+.1f,%+.1f %.2f)", w.at<float>(0, 2) / lv[0].vis_from_full(0, 0),
                          w.at<float>(1, 2) / lv[0].vis_from_full(1, 1), cc);
            }
          std::printf("\n");
        }
      }
      const auto t0 = std::chrono::steady_clock::now();
      std::string status;
      double own = NAN;
      double err = NAN, corr = NAN, resid = NAN, distinct = NAN;
      try {
        // The correlation threshold is applied here, so that the error of a
        // refused estimate is known too (was refusing it right?).
        CalibrationOptions opt;
        opt.min_correlation = -1;
        opt.min_distinctness = -1;
        const Calibration cal = calibrate({{ip.name, ir, vis}}, opt);
        err = reprojection_error(cal.h, truth, ir_size, vis.size());
        own = reprojection_error(cal.h, calib::to_homography(h0 * h), ir_size, vis.size());
        corr = cal.correlation;
        resid = cal.residual_px;
        distinct = cal.distinctness;
        if (corr < min_corr || distinct < min_distinct) {
          ++refused;
          refused_errors.push_back(err);
          status = corr < min_corr ? "refused (correlation)" : "refused (distinctness)";
        } else {
          errors.push_back(err);
          own_errors.push_back(own);
          if (err > 10) ++wrong;
          status = err > 10 ? "WRONG" : "ok";
        }
      } catch (const CalibrationRefused& e) {
        ++refused;
        status = std::string("refused: ") + e.what();
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      times.push_back(secs);
      std::printf("case %2d %-12s r=%.2f s=%.3f rot=%+.2f t=(%+.3f,%+.3f) p=(%+.3f,%+.3f) err=%.3f own=%.3f corr=%.3f dist=%.3f "
                  "resid=%.2f floor=%.2f %.2fs %s\n",
                  k, ip.name.c_str(), c.r, c.s, c.theta_deg, c.tx, c.ty, c.px, c.py, err, own, corr, distinct, resid, floor_px, secs,
                  verbose || status.rfind("refused", 0) != 0 ? status.c_str() : status.substr(0, 160).c_str());
      std::fflush(stdout);
    }
    double mean_t = 0;
    for (double t : times) mean_t += t / times.size();
    std::string name = dir;
    while (!name.empty() && name.back() == '/') name.pop_back();
    name = name.substr(name.find_last_of('/') + 1);
    std::vector<double> fl;
    for (double f : floors)
      if (std::isfinite(f)) fl.push_back(f);
    std::printf("SUMMARY %s %d %d %d %.3f %.3f %.2f %.2f %.2f %.3f %.3f\n", name.c_str(), cases, refused, wrong,
                percentile(errors, 0.5), percentile(errors, 0.9), mean_t, percentile(fl, 0.5),
                percentile(refused_errors, 0.5), percentile(own_errors, 0.5), percentile(own_errors, 0.9));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "timfusion-calibrate-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
