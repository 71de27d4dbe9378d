// timfusion calibration internals: structure maps, pyramid, coarse search,
// ECC refinement. Not installed.
#pragma once
#include <vector>

#include <opencv2/core.hpp>

#include "timfusion/calibration.h"

namespace timfusion::calib {

using Mat3 = cv::Matx33d;

Mat3 to_mat3(const Homography& h);
Homography to_homography(const Mat3& m);  // normalised so that m(2,2) = 1
// Maps pixel centres of an image of size `from` onto one of size `to` (what
// cv::resize does): x' = (x + 0.5) * to/from - 0.5.
Mat3 resize_map(cv::Size from, cv::Size to);
cv::Point2d apply(const Mat3& h, cv::Point2d p);

// Any image -> one-channel CV_32F intensity (BGR/BGRA by their luma).
cv::Mat gray_float(const cv::Mat& image);
// The p-th quantile (0..1) of a CV_32F image (of a regular subsample when it
// is large).
float quantile(const cv::Mat& m, double p);
// Intensity spread between the 0.5th and 99.5th percentiles, relative to
// the image's value range (0 = flat).
double relative_contrast(const cv::Mat& gray32, int depth);
// Normalised gradient magnitude (CV_32F, 0..1): the structure both cameras
// share. Edge polarity and contrast differ between thermal and visible
// images; the magnitude, divided by its local mean and scaled by its 99th
// percentile, does not care.
// pre_blur: the Gaussian noise blur before the gradient, in pixels of
// gray32 (below 0.3: none).
cv::Mat structure_map(const cv::Mat& gray32, double pre_blur = 1.0);

// One pyramid level: the structure maps of both frames and the maps from
// full-size pixels to this level's pixels.
struct Level {
  cv::Mat ir, vis;
  Mat3 ir_from_full, vis_from_full;
  double vis_factor = 1;  // visible level size / full size
};
// A level at visible reduction vis_factor, the IR frame reduced to match
// when one IR pixel covers ir_foot visible pixels (see structure.cpp).
Level make_level(const cv::Mat& ir_gray, const cv::Mat& vis_gray, double vis_factor, double ir_foot, int max_side);
// levels[0] is the finest (longer visible side <= max_side), the last one has
// a longer visible side of about coarse_side. ir_foot <= 0: the resolution
// guess's footprint.
std::vector<Level> build_pyramid(const cv::Mat& ir_gray, const cv::Mat& vis_gray, int max_side, int coarse_side,
                                 double ir_foot = 0);
// Visible pixels covered by one IR pixel under h (square root of the area
// ratio of the IR frame's image).
double ir_footprint(const Mat3& h, cv::Size ir);

// A full-size-pixel homography expressed on a level, and back.
Mat3 to_level(const Level& l, const Mat3& h_full);
Mat3 to_full(const Level& l, const Mat3& h_level);

struct Candidate {
  Mat3 h;              // full-size IR pixel -> visible pixel
  double scale = 1;    // relative to the resolution guess
  double score = -1;   // normalised cross-correlation on the coarse level
};
// Scale x translation search on a coarse level around the resolution guess.
// Returns the local maxima over scale, best first.
std::vector<Candidate> coarse_search(const Level& coarse, cv::Size ir_full, cv::Size vis_full,
                                     const CalibrationOptions& o);

// Enhanced correlation alignment of the IR structure map onto the visible one
// on level l, starting from and updating h_full (MOTION_AFFINE or
// MOTION_HOMOGRAPHY). Returns the correlation; throws cv::Exception when ECC
// does not converge.
double refine(const Level& l, Mat3& h_full, int motion, int iterations, double eps);

// ECC on the finest level runs until the correlation changes by less than
// kFinestEps per iteration (at most kFinestIterations): OpenCV's ECC stops on
// the change of the correlation, and on weak cross-modal structure the optimum
// is so flat that 1e-5 stops it short (untouched TNO pairs 15, 19, 29:
// restarts 3 px away ended 0.04-0.61 px apart with 1e-5, 0.00-0.09 px with
// 1e-7).
constexpr int kFinestIterations = 300;
constexpr double kFinestEps = 1e-7;

// Homography ECC on the level above the finest (60 iterations, eps 1e-4),
// then on the finest (kFinestIterations, kFinestEps): the refinement the
// multi-pair consensus and the stability check both run. Returns the finest
// level's correlation.
double refine_last_two(const Level& coarser, const Level& finest, Mat3& h_full);

// Median length of the local shifts that re-align patches of the IR structure
// map (warped by h) onto the visible one, on level l, in full-size visible
// pixels; negative when no patch has enough structure.
double local_residual(const Level& l, const Mat3& h_full);

// Normalised cross-correlation of the IR structure map warped by h with the
// visible one over their overlap on level l (what ECC maximises, without
// moving h).
double correlation_at(const Level& l, const Mat3& h_full);
// How much of that correlation is owed to the exact alignment: the
// correlation at h minus its mean with h shifted by 3 % of the visible frame
// in 8 directions.
double distinctness(const Level& l, const Mat3& h_full, cv::Size vis_full);

// Homography ECC restarted on two levels (coarser, then finest) from h moved
// by d visible pixels in 4 diagonal directions: the largest distance between
// where it ends and h (full-size visible pixels; d for a start that does not
// converge).
double restart_spread(const Level& coarser, const Level& finest, const Mat3& h_full, cv::Size ir_full,
                      cv::Size vis_full, double d);

}  // namespace timfusion::calib
