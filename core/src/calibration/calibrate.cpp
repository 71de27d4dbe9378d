// timfusion calibration: the estimate for each pair, the consensus over
// pairs, the joint refinement, and the decision to accept or refuse.
#include <algorithm>
#include <cmath>
#include <sstream>

#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include "calibration_internal.h"

namespace timfusion {

using calib::Mat3;

namespace {

// The advice every structure refusal ends with. Several scenes: one scene's
// weak structure can hold a wrong alignment that the others outvote
// (docs/calibration-accuracy.md: with three frames no accepted estimate was
// wrong on the shared data, with one frame RoadScene had one 17 px off).
const char* kPointAtEdges =
    "point both cameras at a scene with plenty of edges at the working distance (buildings, poles, people, "
    "parked cars; not sky, fog or a blank wall), and give frames of a few different scenes";
constexpr int kCoarseSide = 128;  // longer visible side of the coarsest level
constexpr int kCandidates = 6;    // coarse-search peaks refined with ECC

void check_cancel(const CalibrationOptions& o) {
  if (o.cancel && o.cancel->load()) throw CalibrationCancelled("calibration cancelled");
}

std::string size_str(cv::Size s) { return std::to_string(s.width) + "x" + std::to_string(s.height); }

std::string fmt(double v, int digits = 2) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

// Scale of h relative to the resolution guess (square root of the area ratio
// of the IR frame's image), for the plausibility check.
double relative_scale(const Mat3& h, cv::Size ir, cv::Size vis) {
  std::vector<cv::Point2f> q;
  for (cv::Point2d p : {cv::Point2d(0, 0), cv::Point2d(ir.width, 0), cv::Point2d(ir.width, ir.height),
                        cv::Point2d(0, ir.height)})
    q.push_back(cv::Point2f(calib::apply(h, p)));
  const double area = std::abs(cv::contourArea(q));
  return std::sqrt(area / (double(vis.width) * vis.height));
}

// Fraction of the visible frame that the IR frame covers under h.
double coverage(const Mat3& h, cv::Size ir, cv::Size vis) {
  const double step = std::max(vis.width, vis.height) / 40.0;
  const Mat3 inv = h.inv();
  int in = 0, all = 0;
  for (double y = step / 2; y < vis.height; y += step)
    for (double x = step / 2; x < vis.width; x += step) {
      const cv::Point2d p = calib::apply(inv, {x, y});
      ++all;
      if (p.x >= -0.5 && p.y >= -0.5 && p.x <= ir.width - 0.5 && p.y <= ir.height - 0.5) ++in;
    }
  return all ? double(in) / all : 0;
}

struct PairWork {
  std::string name;
  cv::Mat ir, vis;      // CV_32F intensity, kept for the joint refinement
  calib::Level finest;  // kept for the residual
  bool ok = false;
  std::string problem;
  Mat3 h = Mat3::eye();
  double correlation = 0;
};

// The structure maps of the pairs `used` at one level (visible reduction
// vis_factor, IR pixels of footprint foot): one pair's own, or the mean over
// the pairs, which all share the homography.
calib::Level rig_level(const std::vector<PairWork>& work, const std::vector<int>& used, double vis_factor, double foot,
                       int max_side) {
  calib::Level l = calib::make_level(work[used[0]].ir, work[used[0]].vis, vis_factor, foot, max_side);
  if (used.size() == 1) return l;
  for (size_t k = 1; k < used.size(); ++k) {
    const calib::Level m = calib::make_level(work[used[k]].ir, work[used[k]].vis, vis_factor, foot, max_side);
    l.ir += m.ir;
    l.vis += m.vis;
  }
  l.ir *= 1.0 / used.size();
  l.vis *= 1.0 / used.size();
  return l;
}

// The whole coarse-to-fine estimate on one pair.
void estimate_pair(const CalibrationPair& p, const CalibrationOptions& o, PairWork& w) {
  const cv::Mat ir = calib::gray_float(p.ir), vis = calib::gray_float(p.vis);
  if (calib::relative_contrast(ir, p.ir.depth()) < 0.01) {
    w.problem = frame_text(p, true) + " is nearly uniform (no structure)";
    return;
  }
  if (calib::relative_contrast(vis, p.vis.depth()) < 0.01) {
    w.problem = frame_text(p, false) + " is nearly uniform (no structure)";
    return;
  }
  const std::vector<calib::Level> levels = calib::build_pyramid(ir, vis, o.max_side, kCoarseSide);
  const int top = int(levels.size()) - 1;
  check_cancel(o);
  std::vector<calib::Candidate> cands = calib::coarse_search(levels[top], ir.size(), vis.size(), o);
  if (cands.empty()) {
    w.problem = "no placement of the IR frame correlates with the visible frame";
    return;
  }
  if (int(cands.size()) > kCandidates) cands.resize(kCandidates);

  // Each candidate: affine ECC on the two coarsest levels; keep the best.
  double best_corr = -2;
  Mat3 best = Mat3::eye();
  const int mid = std::max(0, top - 1);
  for (const auto& c : cands) {
    check_cancel(o);
    Mat3 h = c.h;
    try {
      // The two coarsest levels again with the IR frame at this candidate's
      // scale (cheap: small maps).
      const double foot = std::clamp(calib::ir_footprint(h, ir.size()), 0.05, 20.0);
      const calib::Level lt = calib::make_level(ir, vis, levels[top].vis_factor, foot, o.max_side);
      const calib::Level lm = calib::make_level(ir, vis, levels[mid].vis_factor, foot, o.max_side);
      calib::refine(lt, h, cv::MOTION_AFFINE, 60, 1e-4);
      const double corr = calib::refine(lm, h, cv::MOTION_AFFINE, 60, 1e-4);
      if (corr > best_corr) {
        best_corr = corr;
        best = h;
      }
    } catch (const cv::Exception&) {
      // ECC diverged from this start: try the next one.
    }
  }
  if (best_corr < -1) {
    w.problem = "the alignment did not converge from any start";
    return;
  }
  // Affine coarse to fine first: with 6 parameters ECC holds on to the
  // basin on weak cross-modal structure, where a homography's perspective
  // terms wander off (seen: 25 px drift from the truth on TNO at the middle
  // level). The homography is added on the two finest levels only, and kept
  // only when it stays near the affine estimate.
  double corr = best_corr;
  // The finer levels with the IR frame at the estimate's scale.
  const std::vector<calib::Level> fine = calib::build_pyramid(
      ir, vis, o.max_side, kCoarseSide, std::clamp(calib::ir_footprint(best, ir.size()), 0.05, 20.0));
  const int fine_mid = std::min(mid, int(fine.size()) - 1);
  try {
    for (int k = fine_mid - 1; k >= 0; --k) {
      check_cancel(o);
      corr = calib::refine(fine[k], best, cv::MOTION_AFFINE, 60, 1e-4);
    }
  } catch (const cv::Exception&) {
    w.problem = "the affine refinement did not converge";
    return;
  }
  Mat3 hh = best;
  double ch = corr;
  try {
    check_cancel(o);
    ch = fine.size() > 1
             ? calib::refine_last_two(fine[1], fine[0], hh)
             : calib::refine(fine[0], hh, cv::MOTION_HOMOGRAPHY, calib::kFinestIterations, calib::kFinestEps);
    const double moved = reprojection_error(calib::to_homography(hh), calib::to_homography(best), p.ir.size(),
                                            p.vis.size());
    if (moved <= 0.03 * std::max(p.vis.cols, p.vis.rows)) {
      best = hh;
      corr = ch;
    }
  } catch (const cv::Exception&) {
    // Keep the affine estimate.
  }
  w.finest = fine.front();
  w.ir = ir;
  w.vis = vis;
  w.ok = true;
  w.h = best;
  w.correlation = corr;
}

}  // namespace

Homography resolution_guess(cv::Size ir, cv::Size vis) { return calib::to_homography(calib::resize_map(ir, vis)); }

double reprojection_error(const Homography& a, const Homography& b, cv::Size ir, cv::Size vis, int grid) {
  const Mat3 ha = calib::to_mat3(a), hb = calib::to_mat3(b);
  // Lattice over the visible frame, kept where b's IR frame covers it, taken
  // back to IR pixels by b: the points both cameras see.
  const Mat3 hb_inv = hb.inv();
  double sum = 0;
  int n = 0;
  for (int gy = 0; gy < grid; ++gy)
    for (int gx = 0; gx < grid; ++gx) {
      const cv::Point2d v((gx + 0.5) * vis.width / grid - 0.5, (gy + 0.5) * vis.height / grid - 0.5);
      const cv::Point2d p = calib::apply(hb_inv, v);
      if (p.x < -0.5 || p.y < -0.5 || p.x > ir.width - 0.5 || p.y > ir.height - 0.5) continue;
      const cv::Point2d d = calib::apply(ha, p) - v;
      sum += std::hypot(d.x, d.y);
      ++n;
    }
  if (n == 0) {
    // No overlap: compare the IR frame's corners instead.
    for (cv::Point2d p : {cv::Point2d(0, 0), cv::Point2d(ir.width - 1, 0), cv::Point2d(0, ir.height - 1),
                          cv::Point2d(ir.width - 1, ir.height - 1)}) {
      const cv::Point2d d = calib::apply(ha, p) - calib::apply(hb, p);
      sum += std::hypot(d.x, d.y);
      ++n;
    }
  }
  return sum / n;
}

std::string frame_text(const CalibrationPair& p, bool ir) {
  const std::string& file = ir ? p.ir_file : p.vis_file;
  return std::string(ir ? "the IR frame" : "the visible frame") + (file.empty() ? "" : " " + file);
}

namespace {

// All frames non-empty and of the first pair's sizes; a sane search range.
void check_inputs(const std::vector<CalibrationPair>& pairs, const CalibrationOptions& o) {
  if (pairs.empty()) throw Error("calibration needs at least one IR/visible frame pair");
  const cv::Size ir_size = pairs[0].ir.size(), vis_size = pairs[0].vis.size();
  for (const auto& p : pairs) {
    if (p.ir.empty() || p.vis.empty())
      throw Error("pair " + p.name + ": " + frame_text(p, p.ir.empty()) + " is empty");
    if (p.ir.size() != ir_size || p.vis.size() != vis_size)
      throw Error("pair " + p.name + ": IR " + size_str(p.ir.size()) + " / visible " + size_str(p.vis.size()) +
                  " differ from the first pair's " + size_str(ir_size) + " / " + size_str(vis_size) +
                  ": all frames must come from the same two cameras");
  }
  if (!(o.min_scale > 0 && o.max_scale >= o.min_scale && o.max_shift >= 0 && o.max_shift < 0.5))
    throw Error("calibration search range: need 0 < min-scale <= max-scale and 0 <= max-shift < 0.5");
}

// Each pair's own coarse-to-fine estimate.
std::vector<PairWork> estimate_pairs(const std::vector<CalibrationPair>& pairs, const CalibrationOptions& o) {
  std::vector<PairWork> work(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    check_cancel(o);
    work[i].name = pairs[i].name;
    estimate_pair(pairs[i], o, work[i]);
  }
  return work;
}

// The indices of the pairs with an estimate; a refusal naming each pair's
// problem when there is none.
std::vector<int> estimated_pairs(const std::vector<PairWork>& work) {
  std::vector<int> ok;
  for (size_t i = 0; i < work.size(); ++i)
    if (work[i].ok) ok.push_back(int(i));
  if (ok.empty()) {
    std::string why;
    for (const auto& w : work) why += (why.empty() ? "" : "; ") + w.name + ": " + w.problem;
    throw CalibrationRefused("not enough common structure (" + why + "): " + kPointAtEdges);
  }
  return ok;
}

// What the consensus steps share: the pair estimates, which of them have
// one, the frame sizes, the agreement radius and the finest level of the
// medoid's pyramid (whose reduction the joint levels use).
struct Consensus {
  const std::vector<PairWork>& work;
  const std::vector<int>& ok;
  const CalibrationOptions& o;
  cv::Size ir_size, vis_size;
  double agree_px = 0;
  calib::Level finest;

  double dist(const Mat3& a, const Mat3& b) const {
    return reprojection_error(calib::to_homography(a), calib::to_homography(b), ir_size, vis_size);
  }
  double foot_of(const Mat3& m) const { return std::clamp(calib::ir_footprint(m, ir_size), 0.05, 20.0); }
  // ECC of these pairs' structure (their mean maps when several) on the two
  // finest levels, from hh at its own footprint; returns the correlation.
  double refine_pairs(const std::vector<int>& pairs, Mat3& hh) const {
    const double foot = foot_of(hh);
    return calib::refine_last_two(rig_level(work, pairs, finest.vis_factor / 2, foot, o.max_side),
                                  rig_level(work, pairs, finest.vis_factor, foot, o.max_side), hh);
  }

  // The pair estimate closest (median distance) to all others.
  int medoid() const {
    int medoid = ok[0];
    double best_med = 1e300;
    for (int i : ok) {
      std::vector<double> d;
      for (int j : ok)
        if (j != i) d.push_back(dist(work[i].h, work[j].h));
      double med = 0;
      if (!d.empty()) {
        std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
        med = d[d.size() / 2];
      }
      // Ties (e.g. two pairs): the higher correlation wins.
      if (med < best_med - 1e-9 || (std::abs(med - best_med) <= 1e-9 && work[i].correlation > work[medoid].correlation)) {
        best_med = med;
        medoid = i;
      }
    }
    return medoid;
  }

  // Several pairs: one scene's weak structure often holds its own estimate in
  // a wrong basin while another scene's is right, so the medoid of the pair
  // estimates is no consensus when they scatter. Every distinct pair
  // estimate therefore also starts a joint refinement (the structure maps of
  // all pairs averaged: they share the homography) on the two finest levels;
  // the start with the best joint correlation that at least half the pairs
  // hold is the consensus. Measured with calibration_table.sh (3 pairs per
  // case): with the medoid, most refusals "the frame pairs disagree" were two
  // wrong pair estimates beside a right one. Returns the joint starts, best
  // correlation first, then the medoid `h` as it is (the last resort).
  std::vector<std::pair<double, Mat3>> starts(const Mat3& h) const {
    std::vector<std::pair<double, Mat3>> starts;  // joint correlation, joint estimate
    if (ok.size() > 1) {
      std::vector<Mat3> tried;
      for (int i : ok) {
        bool seen = false;
        for (const auto& t : tried) seen = seen || dist(t, work[i].h) <= agree_px;
        if (seen) continue;
        tried.push_back(work[i].h);
        check_cancel(o);
        Mat3 hj = work[i].h;
        try {
          const double cj = refine_pairs(ok, hj);
          starts.push_back({cj, hj});
        } catch (const cv::Exception&) {
          // This start diverged: the others decide.
        }
      }
      std::stable_sort(starts.begin(), starts.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    }
    starts.push_back({-2.0, h});
    return starts;
  }

  // A pair agrees when its own estimate lies near the consensus, or when its
  // own structure, refined from the consensus on its two finest levels, stays
  // there (its estimate was a wrong basin, not a different homography).
  std::vector<int> agreeing(const Mat3& start) const {
    std::vector<int> agree;
    for (int i : ok) {
      bool holds = dist(work[i].h, start) <= agree_px;
      if (!holds && ok.size() > 1) {
        check_cancel(o);
        Mat3 hi = start;
        try {
          refine_pairs({i}, hi);
          holds = dist(hi, start) <= agree_px;
        } catch (const cv::Exception&) {
        }
      }
      if (holds) agree.push_back(i);
    }
    return agree;
  }

  // The best joint start that at least half the pairs hold (a joint optimum
  // no pair's own structure holds is an artefact of the averaging); failing
  // that, the one most pairs hold. Sets `used` to the pairs that hold it.
  Mat3 choose(const std::vector<std::pair<double, Mat3>>& starts, const Mat3& h, std::vector<int>& used) const {
    Mat3 start = h;
    for (const auto& st : starts) {
      std::vector<int> agree = agreeing(st.second);
      if (agree.size() > used.size()) {
        used = agree;
        start = st.second;
      }
      if (!used.empty() && used.size() * 2 >= ok.size()) break;
    }
    return start;
  }

  // Joint refinement: every agreeing pair has the same homography, so the sum
  // of their IR structure maps aligns with the sum of their visible ones.
  // Sets h, its correlation and the level they were measured on.
  void refine_jointly(const Mat3& start, const std::vector<int>& used, Mat3& h, double& corr, calib::Level& level) const {
    const calib::Level joint = rig_level(work, used, finest.vis_factor, foot_of(start), o.max_side);
    Mat3 hj = start;
    h = start;
    level = joint;
    try {
      check_cancel(o);
      const double cj = calib::refine(joint, hj, cv::MOTION_HOMOGRAPHY, calib::kFinestIterations, calib::kFinestEps);
      if (dist(hj, start) <= agree_px) {
        h = hj;
        corr = cj;
      } else {
        corr = calib::correlation_at(joint, start);
      }
    } catch (const cv::Exception&) {
      corr = calib::correlation_at(joint, start);
    }
  }

  // Stability: the finest level and the one above it at the estimate's
  // scale, over the pairs used; restarts 3 pixels of the coarser level away.
  double stability(const Mat3& h, const std::vector<int>& used, double vis_factor) const {
    const double foot = foot_of(h);
    const calib::Level l0 = rig_level(work, used, vis_factor, foot, o.max_side);
    const calib::Level l1 = rig_level(work, used, vis_factor / 2, foot, o.max_side);
    return calib::restart_spread(l1, l0, h, ir_size, vis_size, 3.0 / (vis_factor / 2));
  }

  // Each pair's line of the report: its estimate, problem and distance to h.
  std::vector<PairReport> reports(const Mat3& h, const std::vector<int>& used) const {
    std::vector<PairReport> out;
    for (size_t i = 0; i < work.size(); ++i) {
      PairReport r;
      r.name = work[i].name;
      r.estimated = work[i].ok;
      r.problem = work[i].problem;
      r.correlation = work[i].correlation;
      if (work[i].ok) r.distance_px = dist(work[i].h, h);
      r.used = std::find(used.begin(), used.end(), int(i)) != used.end();
      out.push_back(r);
    }
    return out;
  }
};

// Acceptance: refuses (CalibrationRefused, naming the failed check) an
// estimate that is no usable homography, implausible in scale or coverage,
// too weakly or indistinctly correlated, unstable, or held by too few pairs.
void accept_or_refuse(const Calibration& c, const Mat3& h, const CalibrationOptions& o, double vis_factor,
                      size_t n_ok, size_t n_used, double agree_px) {
  try {
    c.h.validate();
  } catch (const Error& e) {
    throw CalibrationRefused(std::string("the estimate is not a usable homography (") + e.what() + "): " +
                             kPointAtEdges);
  }
  const double scale = relative_scale(h, c.ir_size, c.vis_size);
  if (scale < o.min_scale / 1.3 || scale > o.max_scale * 1.3)
    throw CalibrationRefused("the estimate scales the IR frame by " + fmt(scale) +
                             " relative to the resolution guess, outside the search range " + fmt(o.min_scale) +
                             ".." + fmt(o.max_scale) + ": " + kPointAtEdges);
  if (coverage(h, c.ir_size, c.vis_size) < 0.1)
    throw CalibrationRefused("the estimate leaves the IR frame covering under 10 % of the visible frame: " +
                             std::string(kPointAtEdges));
  if (c.correlation < o.min_correlation)
    throw CalibrationRefused("not enough common structure: structure correlation " + fmt(c.correlation) + " < " +
                             fmt(o.min_correlation) + " required; " + kPointAtEdges);
  if (c.distinctness < o.min_distinctness)
    throw CalibrationRefused("not enough common structure: the alignment is not distinct (distinctness " +
                             fmt(c.distinctness) + " < " + fmt(o.min_distinctness) +
                             " required: shifting it hardly lowers the correlation, so broad regions rather than "
                             "edges coincide); " + kPointAtEdges);
  if (o.max_stability_px >= 0 && c.stability_px > o.max_stability_px)
    throw CalibrationRefused("not enough common structure: the alignment is not stable (restarted " +
                             fmt(3.0 / (vis_factor / 2), 1) + " px away, the refinement ends up to " +
                             fmt(c.stability_px) + " px from it, more than the " + fmt(o.max_stability_px) +
                             " px allowed: the edges the cameras share are too weak or all run one way); " +
                             kPointAtEdges);
  if (n_ok >= 3 && n_used * 2 < n_ok)
    throw CalibrationRefused("the frame pairs disagree: only " + std::to_string(n_used) + " of " +
                             std::to_string(n_ok) + " pairs hold the joint estimate to within " + fmt(agree_px, 1) +
                             " px (a moving camera or a scene with repeated patterns?); " +
                             kPointAtEdges);
}

// Confidence: distinctness margin over the threshold, agreement across
// pairs, and the residual (4 px halves it; not measurable: x 0.75).
double confidence(const Calibration& c, const CalibrationOptions& o, size_t n_ok, size_t n_used) {
  const double c_part =
      std::clamp((c.distinctness - o.min_distinctness) / std::max(1e-6, 0.45 - o.min_distinctness), 0.0, 1.0);
  const double agree = double(n_used) / n_ok;
  const double res_part = c.residual_px < 0 ? 0.75 : 1.0 / (1.0 + std::pow(c.residual_px / 4.0, 2));
  return c_part * agree * res_part;
}

}  // namespace

Calibration calibrate(const std::vector<CalibrationPair>& pairs, const CalibrationOptions& o) {
  check_inputs(pairs, o);
  const std::vector<PairWork> work = estimate_pairs(pairs, o);
  Calibration c;
  c.ir_size = pairs[0].ir.size();
  c.vis_size = pairs[0].vis.size();
  const std::vector<int> ok = estimated_pairs(work);

  Consensus cons{work, ok, o, c.ir_size, c.vis_size};
  cons.agree_px = std::max(3.0, 0.01 * std::max(c.vis_size.width, c.vis_size.height));
  const int medoid = cons.medoid();
  Mat3 h = work[medoid].h;
  double corr = work[medoid].correlation;
  cons.finest = work[medoid].finest;
  calib::Level finest = cons.finest;  // becomes the joint level when several pairs are refined together

  std::vector<int> used;
  const Mat3 start = cons.choose(cons.starts(h), h, used);
  std::vector<double> spreads;
  if (ok.size() > 1)
    for (int i : ok) spreads.push_back(cons.dist(work[i].h, start));
  if (used.empty())
    throw CalibrationRefused("the frame pairs disagree: no pair's structure holds the joint estimate (a moving "
                             "camera or a scene with repeated patterns?); " + std::string(kPointAtEdges));

  if (ok.size() > 1) cons.refine_jointly(start, used, h, corr, finest);
  check_cancel(o);
  c.stability_px = cons.stability(h, used, finest.vis_factor);
  check_cancel(o);

  c.h = calib::to_homography(h);
  c.correlation = corr;
  c.residual_px = calib::local_residual(finest, h);
  c.distinctness = calib::distinctness(finest, h, c.vis_size);
  if (!spreads.empty()) {
    std::nth_element(spreads.begin(), spreads.begin() + spreads.size() / 2, spreads.end());
    c.spread_px = spreads[spreads.size() / 2];
  }
  c.pairs = cons.reports(h, used);
  accept_or_refuse(c, h, o, finest.vis_factor, ok.size(), used.size(), cons.agree_px);
  c.confidence = confidence(c, o, ok.size(), used.size());
  return c;
}

}  // namespace timfusion
