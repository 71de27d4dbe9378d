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
//
// --pairs-per-case K: the rig sees K scenes. The same homography (and IR
// resolution) is applied to K registered pairs (the case's pair and the next
// K-1 in the sorted list; pairs of another size are resized to the first
// one's visible size, both frames alike, which keeps their registration), and
// calibrate() gets all K, as timfusion-calibrate does with a folder.
//
// The data sets' own registration is off by a few pixels, differently across
// the frame, so "own" errors are against the truth corrected by each
// untouched pair's structure optimum H0 over the part of the scene the case's
// IR camera sees; --reregister instead moves each pair's IR onto that optimum
// before rendering, so that the drawn homography is every frame's exact map.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <opencv2/calib3d.hpp>
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
               "       [--fixed R S ROT TX TY PX PY] [--pair K] [--pairs-per-case K] [--same-modality] [--oracle]\n"
               "       [--reregister]\n"
               "DATA_DIR has ir/ and vis/ with registered pairs. Prints one line per case and a\n"
               "summary line: SUMMARY name cases refused wrong(>10px) median_px p90_px mean_s floor_px\n"
               "refused_median_px (error of the estimates refused for low correlation, distinctness or stability)\n"
               "own_median_px own_p90_px (error against the truth corrected by the untouched pair's own\n"
               "structure optimum over the part of the scene the IR camera sees; floor_px: its mean displacement;\n"
               "with --pairs-per-case K > 1: against the per-point median over the K pairs\n"
               "of their corrected truths) pairs_per_case skipped_pairs (--reregister)\n"
               "--reregister: each pair's IR is first moved onto its own structure optimum (homography ECC\n"
               "of the untouched pair), so the drawn homography is every frame's exact map: a rig whose\n"
               "frames agree, without the data set's misregistration (error and own error then coincide).\n"
               "A pair whose optimum is not reliable (ECC does not converge, or restarts 3 px of the\n"
               "second-finest level away end over 0.5 px from it) is skipped for the next one.\n");
  return code;
}


// The IR camera's frame: the registered IR seen through h at ir_size. One IR
// pixel covers about s / r visible pixels: low-pass first (a camera pixel
// integrates its area); beyond the registered IR's border the scene is
// continued by reflection.
cv::Mat render_ir(const cv::Mat& ir_reg, const Case& c, const cv::Matx33d& h, cv::Size ir_size) {
  cv::Mat src = ir_reg;
  const double foot = c.s / c.r;
  if (foot > 1.2) cv::GaussianBlur(ir_reg, src, cv::Size(0, 0), 0.45 * foot);
  cv::Mat ir;
  cv::warpPerspective(src, ir, cv::Mat(h), ir_size, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REFLECT_101);
  return ir;
}

// The part of the visible frame the IR camera sees under h (the bounding box
// of its frame's image, clipped to the visible frame); the whole frame when
// that is under 64 px on a side.
cv::Rect ir_view(const cv::Matx33d& h, cv::Size ir, cv::Size vis) {
  std::vector<cv::Point2f> q;
  for (cv::Point2d p : {cv::Point2d(-0.5, -0.5), cv::Point2d(ir.width - 0.5, -0.5),
                        cv::Point2d(ir.width - 0.5, ir.height - 0.5), cv::Point2d(-0.5, ir.height - 0.5)})
    q.push_back(cv::Point2f(calib::apply(h, p)));
  const cv::Rect view = cv::boundingRect(q) & cv::Rect(0, 0, vis.width, vis.height);
  return view.width >= 64 && view.height >= 64 ? view : cv::Rect(0, 0, vis.width, vis.height);
}

// The structure optimum of an untouched registered pair over the part of the
// scene the case's IR camera sees (homography ECC from the data set's
// registration, the estimator's own measure): if the data set is
// misregistered by H0 there, the IR frame's true map is H0 * h. Only that
// part: the data sets' misregistration is not one homography (parallax,
// e.g. MSRS), and an IR camera with a narrower field of view can only find
// the one of the part it sees. `full` is in whole-frame pixels, `crop` in
// pixels of `view` (where `levels` are); identity and floor_px NaN when ECC
// does not converge.
struct StructureOptimum {
  calib::Mat3 full = calib::Mat3::eye(), crop = calib::Mat3::eye();
  cv::Rect view;
  double floor_px = NAN;  // mean displacement of H0 over the view
  std::vector<calib::Level> levels;
};

StructureOptimum structure_optimum(const cv::Mat& ir_reg, const cv::Mat& vis, cv::Rect view) {
  StructureOptimum o;
  o.view = view;
  o.levels = calib::build_pyramid(calib::gray_float(ir_reg(view)), calib::gray_float(vis(view)), 1024, 128);
  try {
    calib::Mat3 id = calib::Mat3::eye();
    calib::refine(o.levels[0], id, cv::MOTION_HOMOGRAPHY, calib::kFinestIterations, calib::kFinestEps);
    o.crop = id;
    const calib::Mat3 to_view(1, 0, -view.x, 0, 1, -view.y, 0, 0, 1);
    o.full = to_view.inv() * id * to_view;
    o.floor_px = reprojection_error(calib::to_homography(id), Homography{}, view.size(), view.size());
  } catch (const cv::Exception&) {
  }
  return o;
}

// --reregister trusts a pair's structure optimum only when ECC converged and
// comes back to it from starts 3 pixels of the second-finest level away (as
// the calibration's own stability check, within 0.5 px).
bool reliable_optimum(const StructureOptimum& o) {
  if (!std::isfinite(o.floor_px) || o.levels.size() < 2) return false;
  return calib::restart_spread(o.levels[1], o.levels[0], o.crop, o.view.size(), o.view.size(),
                               3.0 / o.levels[1].vis_factor) <= 0.5;
}

// The corrected truth of K pairs that each have their own misregistration
// H0_k: on a 9 x 9 lattice of IR pixels, the per-coordinate median of
// H0_k * h over the pairs, and the homography fitted to it (least squares).
// One pair: H0 * h itself.
calib::Mat3 corrected_truth(const std::vector<calib::Mat3>& h0s, const calib::Mat3& h, cv::Size ir) {
  if (h0s.size() == 1) return h0s[0] * h;
  std::vector<cv::Point2f> src, dst;
  for (int gy = 0; gy < 9; ++gy)
    for (int gx = 0; gx < 9; ++gx) {
      const cv::Point2d p((gx + 0.5) * ir.width / 9 - 0.5, (gy + 0.5) * ir.height / 9 - 0.5);
      std::vector<double> xs, ys;
      for (const auto& h0 : h0s) {
        const cv::Point2d q = calib::apply(h0 * h, p);
        xs.push_back(q.x);
        ys.push_back(q.y);
      }
      src.push_back(cv::Point2f(p));
      dst.push_back(cv::Point2f(float(percentile(xs, 0.5)), float(percentile(ys, 0.5))));
    }
  const cv::Mat fit = cv::findHomography(src, dst, 0);
  if (fit.empty()) return h0s[0] * h;
  calib::Mat3 out;
  for (int i = 0; i < 9; ++i) out.val[i] = fit.at<double>(i / 3, i % 3);
  return out;
}

// The command line.
struct BenchOptions {
  std::string dir;
  int cases = 15;
  int per_case = 1;  // --pairs-per-case
  unsigned seed = 17;
  bool verbose = false;
  bool oracle = false;
  bool same = false;  // debugging: the visible luma as the IR scene
  bool reregister = false;
  // A fixed case instead of random ones (r s rot tx ty px py), e.g. a pure 2x
  // downscale "0.5 1 0 0 0 0 0": the truth is known exactly.
  bool fixed = false;
  Case fixed_case{};
  int first = -1;  // --pair K: only the K-th of the spread pairs
  double min_corr = CalibrationOptions{}.min_correlation;
  const double min_distinct = CalibrationOptions{}.min_distinctness;
  const double max_stab = CalibrationOptions{}.max_stability_px;
};

// Reads the command line into o; an exit status when it asks for --help or
// is wrong (usage printed).
std::optional<int> parse_args(int argc, char** argv, BenchOptions& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") return usage(0);
    if (a == "--cases" && i + 1 < argc)
      o.cases = std::atoi(argv[++i]);
    else if (a == "--pairs-per-case" && i + 1 < argc)
      o.per_case = std::atoi(argv[++i]);
    else if (a == "--seed" && i + 1 < argc)
      o.seed = unsigned(std::atoi(argv[++i]));
    else if (a == "--min-correlation" && i + 1 < argc)
      o.min_corr = std::atof(argv[++i]);
    else if (a == "--fixed" && i + 7 < argc) {
      o.fixed = true;
      double* f[] = {&o.fixed_case.r, &o.fixed_case.s, &o.fixed_case.theta_deg, &o.fixed_case.tx, &o.fixed_case.ty,
                     &o.fixed_case.px, &o.fixed_case.py};
      for (double* v : f) *v = std::atof(argv[++i]);
    } else if (a == "--pair" && i + 1 < argc)
      o.first = std::atoi(argv[++i]);
    else if (a == "--same-modality")
      o.same = true;
    else if (a == "--reregister")
      o.reregister = true;
    else if (a == "--oracle")
      o.oracle = true;
    else if (a == "--verbose")
      o.verbose = true;
    else if (!a.empty() && a[0] != '-' && o.dir.empty())
      o.dir = a;
    else
      return usage(2);
  }
  if (o.dir.empty() || o.cases < 1 || o.per_case < 1) return usage(2);
  return std::nullopt;
}

// Case k's misalignment, drawn from rng (always, so that --fixed and --pair
// leave the other cases' draws unchanged).
Case draw_case(int k, std::mt19937& rng, std::uniform_real_distribution<double>& u, const BenchOptions& o) {
  static const double resolutions[] = {0.5, 0.75, 1.0};
  Case c;
  c.r = resolutions[k % 3];
  c.s = std::pow(2.0, u(rng));  // log-uniform in 0.5..2
  c.theta_deg = 5 * u(rng);
  c.tx = 0.1 * u(rng);
  c.ty = 0.1 * u(rng);
  c.px = 0.03 * u(rng);
  c.py = 0.03 * u(rng);
  return o.fixed ? o.fixed_case : c;
}

// --oracle: the structure correlation at the truth on every level, the
// coarse search's candidates against the truth, and the untouched pair's
// translation per 3x3 patch.
void print_oracle(const cv::Mat& ir, const cv::Mat& vis, const cv::Matx33d& h, const Homography& truth, cv::Size ir_size,
                  const std::vector<calib::Level>& lv) {
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

// What the summary line is made of, over all cases.
struct Totals {
  std::vector<double> errors, own_errors, times, floors, refused_errors;
  int refused = 0, wrong = 0, skipped_pairs = 0;
};

// One case's rig: the IR frames rendered through its homography from K
// registered pairs, and each pair's misregistration H0 (for the own truth).
struct CaseRig {
  std::vector<CalibrationPair> rig;
  std::vector<calib::Mat3> h0s;
  std::string names, case_floors, skipped;
};

CaseRig build_rig(const std::vector<ImagePair>& pairs, size_t base, const Case& c, const cv::Matx33d& h,
                  const Homography& truth, cv::Size ir_size, cv::Size vis_size, const BenchOptions& o, Totals& t) {
  CaseRig r;
  for (size_t j = 0, taken = 0; taken < size_t(o.per_case) && j < pairs.size(); ++j) {
    const ImagePair& ip = pairs[(base + j) % pairs.size()];
    cv::Mat vis = read_image(ip.vis, -1);
    cv::Mat ir_reg = o.same ? read_image(ip.vis, 0) : read_image(ip.ir, 0);
    if (ir_reg.size() != vis.size()) throw Error(ip.name + ": IR and visible sizes differ: not registered");
    if (vis.size() != vis_size) {
      cv::resize(vis, vis, vis_size, 0, 0, cv::INTER_AREA);
      cv::resize(ir_reg, ir_reg, vis_size, 0, 0, cv::INTER_AREA);
    }
    const StructureOptimum opt = structure_optimum(ir_reg, vis, ir_view(h, ir_size, vis_size));
    const double floor_px = opt.floor_px;
    const calib::Mat3& h0 = opt.full;
    if (o.reregister && !reliable_optimum(opt)) {
      // Its structure does not pin down where the IR belongs: it cannot
      // be re-registered, so the next pair takes its place.
      r.skipped += (r.skipped.empty() ? "" : ",") + ip.name;
      ++t.skipped_pairs;
      continue;
    }
    // --reregister: the IR scene moved onto its structure optimum first,
    // so that h is every frame's exact map (a rig whose frames agree).
    const cv::Mat ir = render_ir(ir_reg, c, o.reregister ? h0.inv() * h : h, ir_size);
    r.h0s.push_back(o.reregister ? calib::Mat3::eye() : h0);
    t.floors.push_back(floor_px);
    char fb[32];
    std::snprintf(fb, sizeof fb, "%s%.2f", taken ? "/" : "", floor_px);
    r.case_floors += fb;
    r.names += (taken ? "+" : "") + ip.name;
    r.rig.push_back({ip.name, ir, vis});
    if (o.oracle && taken == 0) print_oracle(ir, vis, h, truth, ir_size, opt.levels);
    ++taken;
  }
  if (r.rig.empty()) throw Error("no pair of " + o.dir + " has a reliable structure optimum to re-register");
  return r;
}

// Calibrates the rig with no thresholds, applies them here (so that the error
// of a refused estimate is known too: was refusing it right?), counts the
// case in t and prints its line.
void run_case(int k, const Case& c, const CaseRig& r, const cv::Matx33d& h, const Homography& truth, cv::Size ir_size,
              cv::Size vis_size, const BenchOptions& o, Totals& t) {
  const Homography own_truth = calib::to_homography(corrected_truth(r.h0s, h, ir_size));
  const auto t0 = std::chrono::steady_clock::now();
  std::string status;
  double own = NAN;
  double err = NAN, corr = NAN, resid = NAN, distinct = NAN, stab = NAN;
  int used = 0;
  try {
    CalibrationOptions opt;
    opt.min_correlation = -1;
    opt.min_distinctness = -1;
    opt.max_stability_px = -1;
    const Calibration cal = calibrate(r.rig, opt);
    err = reprojection_error(cal.h, truth, ir_size, vis_size);
    own = reprojection_error(cal.h, own_truth, ir_size, vis_size);
    corr = cal.correlation;
    resid = cal.residual_px;
    distinct = cal.distinctness;
    stab = cal.stability_px;
    for (const auto& pr : cal.pairs) used += pr.used;
    if (corr < o.min_corr || distinct < o.min_distinct || (o.max_stab >= 0 && stab > o.max_stab)) {
      ++t.refused;
      t.refused_errors.push_back(err);
      status = corr < o.min_corr           ? "refused (correlation)"
               : distinct < o.min_distinct ? "refused (distinctness)"
                                           : "refused (stability)";
    } else {
      t.errors.push_back(err);
      t.own_errors.push_back(own);
      if (err > 10) ++t.wrong;
      status = err > 10 ? "WRONG" : "ok";
    }
  } catch (const CalibrationRefused& e) {
    ++t.refused;
    status = std::string("refused: ") + e.what();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  t.times.push_back(secs);
  std::printf("case %2d %-12s r=%.2f s=%.3f rot=%+.2f t=(%+.3f,%+.3f) p=(%+.3f,%+.3f) err=%.3f own=%.3f corr=%.3f "
              "dist=%.3f stab=%.2f resid=%.2f floor=%s used=%d/%d %.2fs %s%s%s\n",
              k, r.names.c_str(), c.r, c.s, c.theta_deg, c.tx, c.ty, c.px, c.py, err, own, corr, distinct, stab, resid,
              r.case_floors.c_str(), used, o.per_case, secs,
              o.verbose || status.rfind("refused", 0) != 0 ? status.c_str() : status.substr(0, 160).c_str(),
              r.skipped.empty() ? "" : " (not re-registrable, skipped: ", r.skipped.empty() ? "" : (r.skipped + ")").c_str());
  std::fflush(stdout);
}

// SUMMARY name cases refused wrong median_px p90_px mean_s floor_px
// refused_median_px own_median_px own_p90_px pairs_per_case skipped_pairs.
void print_summary(const BenchOptions& o, const Totals& t) {
  double mean_t = 0;
  for (double x : t.times) mean_t += x / t.times.size();
  std::string name = o.dir;
  while (!name.empty() && name.back() == '/') name.pop_back();
  name = name.substr(name.find_last_of('/') + 1);
  std::vector<double> fl;
  for (double f : t.floors)
    if (std::isfinite(f)) fl.push_back(f);
  std::printf("SUMMARY %s %d %d %d %.3f %.3f %.2f %.2f %.2f %.3f %.3f %d %d\n", name.c_str(), o.cases, t.refused, t.wrong,
              percentile(t.errors, 0.5), percentile(t.errors, 0.9), mean_t, percentile(fl, 0.5),
              percentile(t.refused_errors, 0.5), percentile(t.own_errors, 0.5), percentile(t.own_errors, 0.9), o.per_case,
              t.skipped_pairs);
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions o;
  if (std::optional<int> code = parse_args(argc, argv, o)) return *code;
  try {
    const auto pairs = list_pairs(o.dir + "/ir", o.dir + "/vis");
    if (pairs.empty()) throw Error(o.dir + ": no IR/visible pairs");
    std::mt19937 rng(o.seed);
    std::uniform_real_distribution<double> u(-1, 1);
    Totals t;
    for (int k = 0; k < o.cases; ++k) {
      const size_t base = size_t(k) * pairs.size() / o.cases;
      const Case c = draw_case(k, rng, u, o);
      if (o.first >= 0 && k != o.first) continue;
      const cv::Size vis_size = read_image(pairs[base].vis, -1).size();
      const cv::Size ir_size(int(std::lround(c.r * vis_size.width)), int(std::lround(c.r * vis_size.height)));
      const cv::Matx33d h = homography_for(c, ir_size, vis_size);
      Homography truth;
      for (int i = 0; i < 9; ++i) truth.m[i] = h.val[i] / h(2, 2);
      const CaseRig r = build_rig(pairs, base, c, h, truth, ir_size, vis_size, o, t);
      run_case(k, c, r, h, truth, ir_size, vis_size, o, t);
    }
    print_summary(o, t);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "timfusion-calibrate-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
