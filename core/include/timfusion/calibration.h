// timfusion: rig calibration. Estimates the homography that maps IR pixel
// coordinates to visible pixel coordinates from the cameras' own frames.
//
// Thermal and visible intensities differ (a warm object may be dark or bright,
// a painted line is invisible in IR), so the estimate works on structure:
// locally normalised gradient-magnitude maps, which both cameras share
// wherever the scene has edges. It starts from the scale-only guess given by
// the two resolutions, searches scale x rotation x translation on a coarse
// level (normalised cross-correlation), then refines an affine map and
// finally a homography coarse to fine with OpenCV's enhanced correlation
// coefficient (cv::findTransformECC).
#pragma once
#include <atomic>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "timfusion/error.h"
#include "timfusion/registration.h"

namespace timfusion {

// One IR/visible frame pair taken at the same moment. Any depth (8/16-bit,
// float) and 1, 3 (BGR) or 4 channels; all pairs of one calibration must
// have the same IR size and the same visible size (one rig).
struct CalibrationPair {
  std::string name;  // reported back (file name, frame number)
  cv::Mat ir, vis;
  // The frames' files when they were read from files: a problem with one
  // frame names that frame's file (issue 27: a uniform visible frame was
  // reported under the IR file's name).
  std::string ir_file, vis_file;
};

// "the IR frame" / "the visible frame", followed by its file when known.
std::string frame_text(const CalibrationPair& p, bool ir);

struct CalibrationOptions {
  // Search range around the resolution guess (IR frame scaled onto the whole
  // visible frame): IR-to-visible scale factor, and the offset of the IR
  // frame's centre as a fraction of the visible width / height.
  double min_scale = 0.5, max_scale = 2.0;
  double max_shift = 0.15;
  // Refuse when the final structure correlation (ECC, -1..1) is below this,
  // or when the part of it owed to the exact alignment (Calibration::
  // distinctness) is below min_distinctness. Chosen on the shared data
  // (scripts/calibration_table.sh): right estimates have correlation 0.22+
  // and distinctness 0.18+, wrong ones mostly below both.
  double min_correlation = 0.20;
  double min_distinctness = 0.17;
  // Refuse when the refinement restarted about 1 % of the frame away ends
  // more than this far from the estimate (Calibration::stability_px, visible
  // pixels). Chosen on the shared data: estimates that hold to within 3 px
  // of the structure's own optimum restart to 0.01-0.43 px, looser ones to
  // 1.3-10 px. Negative: no check.
  double max_stability_px = 1.0;
  // Frames are registered at most at this size (longer side, pixels); larger
  // frames are reduced first (the homography is still in full-size pixels).
  int max_side = 1024;
  // Polled between steps; when it becomes true calibrate() throws
  // CalibrationCancelled.
  const std::atomic<bool>* cancel = nullptr;
};

struct PairReport {
  std::string name;
  bool estimated = false;     // this pair gave an estimate on its own
  std::string problem;        // why not, when !estimated
  double correlation = 0;     // of its own estimate
  double distance_px = 0;     // mean distance of its estimate to the result (visible pixels)
  bool used = false;          // agrees with the result and was used for it
};

struct Calibration {
  std::string method = "structure";  // or "checkerboard" (calibrate_checkerboard)
  Homography h;  // IR pixel -> visible pixel
  cv::Size ir_size, vis_size;
  // Enhanced correlation coefficient of the structure maps under h, at the
  // finest level (1 = identical structure). Cross-modal pairs with plenty of
  // edges reach 0.25-0.7 (same-camera frames 0.9+).
  double correlation = 0;
  // The part of the correlation owed to the exact alignment: correlation
  // minus its mean with the estimate shifted by 3 % of the frame (0..1). A
  // wrong placement that overlaps broad bright regions scores near 0.
  double distinctness = 0;
  // Local misalignment left under h: median length of the shifts that
  // re-align small patches (visible pixels); an estimate of the error. -1
  // when too few patches have structure in two directions to measure it.
  double residual_px = -1;
  // How firmly the structure holds h: the ECC refinement restarted from h
  // moved by about 1 % of the frame ends at most this far from it (visible
  // pixels). Sharp shared edges give a fraction of a pixel; weak or
  // ambiguous structure lets each start end elsewhere.
  double stability_px = -1;
  // Agreement across pairs: median distance of the pairs' own estimates to
  // the result (visible pixels); 0 with one pair.
  double spread_px = 0;
  // 0..1, from the distinctness, the residual and the agreement across pairs.
  double confidence = 0;
  std::vector<PairReport> pairs;
};

// Thrown when the frames do not determine the homography well enough; the
// message says why and what to do ("not enough common structure: ...").
class CalibrationRefused : public Error {
 public:
  using Error::Error;
};
class CalibrationCancelled : public Error {
 public:
  using Error::Error;
};

// Estimates the IR->visible homography. Throws Error for unusable input
// (empty frames, mixed sizes), CalibrationRefused when the result is not good
// enough.
Calibration calibrate(const std::vector<CalibrationPair>& pairs, const CalibrationOptions& options = {});

// A checkerboard seen by both cameras: the classic rig target, for scenes
// without enough shared edges and for the best accuracy. For the thermal
// camera the board must show its squares: heat it (a lamp, the sun, a warm
// plate behind a board with cut-out squares). The homography is exact for
// the board's plane only: hold it at the working distance (a scene far
// from the cameras is nearly planar for a rig whose lenses are close).
struct CheckerboardOptions {
  // Inner corners (where four squares meet) per row and per column: a board
  // of 10 x 7 squares has 9 x 6.
  cv::Size inner_corners{9, 6};
  // Refuse when the corners of all pairs fit the homography worse than this
  // (RMS, visible pixels): a blurred frame, a board far off the plane, or a
  // rig that moved between pairs.
  double max_rms_px = 2.0;
};

// "COLSxROWS" (inner corners, each 3 to 100, e.g. "9x6") as a size; throws
// Error naming the text and the expected form.
cv::Size parse_checkerboard(const std::string& text);

// Estimates the IR->visible homography from the board's inner corners, found
// in each pair's two frames (OpenCV's findChessboardCornersSB; either
// polarity, small thermal frames enlarged for the search). Pairs where the
// board is not found in both frames are reported and skipped; the homography
// is the least-squares fit to the corners of all the others (several board
// positions spread over the view fit it best). Calibration::residual_px is
// the corners' RMS error, spread_px the median distance of the pairs' own
// fits; correlation, distinctness and stability are -1 (not measured).
// Throws Error for unusable input, CalibrationRefused when no pair shows the
// board in both frames or the fit is worse than max_rms_px.
Calibration calibrate_checkerboard(const std::vector<CalibrationPair>& pairs, const CheckerboardOptions& options = {});

// The scale-only guess: the IR frame stretched onto the whole visible frame
// (what the identity homography means to the element).
Homography resolution_guess(cv::Size ir, cv::Size vis);

// Mean distance, in visible pixels, between where a and b put the IR points
// of a grid x grid lattice over the part of the IR frame that truth maps
// inside the visible frame (all of the IR frame when truth is null).
double reprojection_error(const Homography& a, const Homography& b, cv::Size ir, cv::Size vis, int grid = 5);

// Writes the element's calibration file (JSON): "ir-homography" plus the
// sizes, correlation, residual, confidence and the frames used. The loader
// (Homography::load) reads "ir-homography" and ignores the other keys.
// Written to a temporary file and renamed, so a reader never sees half a file.
void write_calibration(const std::string& path, const Calibration& c, const std::string& tool_version = "");

}  // namespace timfusion
