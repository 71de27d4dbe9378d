// Rig calibration on a heated checkerboard (calibrate_checkerboard and
// timfusion-calibrate --checkerboard): a rendered board seen by a visible
// camera and, with the opposite polarity, lower resolution, blur and noise,
// by a thermal camera under a known homography.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "test_support.h"
#include "timfusion/calibration.h"
#include "timfusion/pairs.h"

using namespace timfusion;

namespace {

const cv::Size kInner(9, 6);  // a board of 10 x 7 squares
const cv::Size kVis(640, 480), kIr(320, 240);

// The scene as the visible camera sees it: a textured wall with the board
// (squares of 30 px, mildly turned and tilted) whose top-left outer corner
// is at `at`.
cv::Mat visible_scene(cv::Point2f at, double deg) {
  cv::Mat wall(kVis, CV_8UC1);
  cv::randu(wall, 60, 190);
  cv::GaussianBlur(wall, wall, cv::Size(0, 0), 6);
  const int sq = 30;
  cv::Mat board((kInner.height + 3) * sq, (kInner.width + 3) * sq, CV_8UC1, cv::Scalar(235));  // white margin
  for (int r = 0; r <= kInner.height; ++r)
    for (int c = 0; c <= kInner.width; ++c)
      if ((r + c) % 2 == 0) cv::rectangle(board, cv::Rect((c + 1) * sq, (r + 1) * sq, sq, sq), cv::Scalar(25), -1);
  const double th = deg * CV_PI / 180;
  const cv::Matx33d place(std::cos(th), -std::sin(th), at.x, std::sin(th), std::cos(th), at.y, 0.0002, 0.0001, 1);
  cv::Mat mask(board.size(), CV_8UC1, cv::Scalar(255)), warped, wmask;
  cv::warpPerspective(board, warped, cv::Mat(place), kVis, cv::INTER_AREA);
  cv::warpPerspective(mask, wmask, cv::Mat(place), kVis, cv::INTER_NEAREST);
  warped.copyTo(wall, wmask);
  return wall;
}

// The IR camera (half the resolution, scene scaled by 1.1, turned 2 degrees,
// shifted): truth maps IR pixels to visible pixels.
cv::Matx33d ir_truth() {
  const double s = 1.1, th = 2.0 * CV_PI / 180, cx = (kVis.width - 1) / 2.0, cy = (kVis.height - 1) / 2.0;
  const double f = double(kVis.width) / kIr.width;
  const cv::Matx33d res(f, 0, 0.5 * f - 0.5, 0, f, 0.5 * f - 0.5, 0, 0, 1);
  const cv::Matx33d a(s * std::cos(th), -s * std::sin(th), cx + 0.04 * kVis.width, s * std::sin(th),
                      s * std::cos(th), cy - 0.03 * kVis.height, 0, 0, 1);
  return a * cv::Matx33d(1, 0, -cx, 0, 1, -cy, 0, 0, 1) * res;
}

// What the thermal camera sees of the same scene: the heated board's dark
// squares are the warm ones (opposite polarity), softer, noisier.
cv::Mat thermal_view(const cv::Mat& vis_scene, const cv::Matx33d& truth) {
  cv::Mat inverted = 255 - vis_scene, blurred, ir;
  cv::GaussianBlur(inverted, blurred, cv::Size(0, 0), 1.2);  // the IR optics and the 2x coarser pixels
  cv::warpPerspective(blurred, ir, cv::Mat(truth), kIr, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                      cv::BORDER_REFLECT_101);
  cv::Mat noise(ir.size(), CV_16SC1);
  cv::randn(noise, 0, 3);
  cv::Mat out;
  cv::add(ir, noise, out, cv::noArray(), CV_8U);
  return out;
}

Homography as_homography(const cv::Matx33d& m) {
  Homography h;
  for (int i = 0; i < 9; ++i) h.m[i] = m.val[i];
  return h;
}

CalibrationPair board_pair(const std::string& name, cv::Point2f at, double deg) {
  cv::Mat vis = visible_scene(at, deg);
  return {name, thermal_view(vis, ir_truth()), vis};
}

}  // namespace

TEST(CheckerboardCalibration, OneHeatedBoardGivesTheHomographyToAFractionOfAPixel) {
  CheckerboardOptions o;
  o.inner_corners = kInner;
  const Calibration c = calibrate_checkerboard({board_pair("one", {190, 150}, 3)}, o);
  EXPECT_EQ("checkerboard", c.method);
  const double err = reprojection_error(c.h, as_homography(ir_truth()), kIr, kVis);
  EXPECT_LT(err, 0.35) << "mean error over the IR frame, visible px";
  EXPECT_LT(c.residual_px, 0.5);
  EXPECT_GT(c.confidence, 0.5);
  ASSERT_EQ(1u, c.pairs.size());
  EXPECT_TRUE(c.pairs[0].used);
}

TEST(CheckerboardCalibration, BoardPositionsSpreadOverTheViewAreFittedTogether) {
  CheckerboardOptions o;
  o.inner_corners = kInner;
  const Calibration c = calibrate_checkerboard(
      {board_pair("left", {150, 130}, -4), board_pair("right", {300, 190}, 5), board_pair("empty wall", {2000, 2000}, 0)},
      o);
  const double err = reprojection_error(c.h, as_homography(ir_truth()), kIr, kVis);
  EXPECT_LT(err, 0.3);
  ASSERT_EQ(3u, c.pairs.size());
  EXPECT_TRUE(c.pairs[0].used);
  EXPECT_TRUE(c.pairs[1].used);
  EXPECT_FALSE(c.pairs[2].used) << "no board in that pair";
  EXPECT_NE(std::string::npos, c.pairs[2].problem.find("no 9x6 checkerboard")) << c.pairs[2].problem;
  EXPECT_LT(c.spread_px, 1.0);
}

TEST(CheckerboardCalibration, NoBoardOrAColdBoardIsRefusedWithWhatToDo) {
  CheckerboardOptions o;
  o.inner_corners = kInner;
  CalibrationPair p = board_pair("cold", {190, 150}, 3);
  p.ir = cv::Mat(kIr, CV_8UC1, cv::Scalar(90));  // the board is not warmer than the wall: nothing to see
  try {
    calibrate_checkerboard({p}, o);
    FAIL() << "a board seen by one camera only was not refused";
  } catch (const CalibrationRefused& e) {
    const std::string what = e.what();
    EXPECT_NE(std::string::npos, what.find("IR frame")) << what;
    EXPECT_NE(std::string::npos, what.find("heat it")) << what;
  }
  o.inner_corners = cv::Size(2, 5);
  EXPECT_THROW(calibrate_checkerboard({p}, o), Error);
}

TEST(CheckerboardCalibration, ToolWritesTheElementsFileOrSaysWhatIsWrong) {
  const std::string dir = tftest::temp_dir("calib-board");
  const CalibrationPair p = board_pair("one", {190, 150}, 3);
  write_image(dir + "/ir.png", p.ir);
  write_image(dir + "/vis.png", p.vis);
  const std::string tool = tftest::build_dir() + "/core/timfusion-calibrate";
  std::string out;
  ASSERT_EQ(0, tftest::run(tool + " --checkerboard 9x6 --ir " + dir + "/ir.png --vis " + dir + "/vis.png -o " + dir +
                               "/rig.json",
                           &out))
      << out;
  EXPECT_NE(std::string::npos, out.find("checkerboard corners: RMS error")) << out;
  EXPECT_LT(reprojection_error(Homography::load(dir + "/rig.json"), as_homography(ir_truth()), kIr, kVis), 0.35);
  std::ifstream f(dir + "/rig.json");
  const auto j = nlohmann::json::parse(f);
  EXPECT_EQ("checkerboard", j.at("method").get<std::string>());

  EXPECT_EQ(2, tftest::run(tool + " --checkerboard 9 --ir a.png --vis b.png -o x.json", &out)) << out;
  EXPECT_NE(std::string::npos, out.find("COLSxROWS")) << out;
  EXPECT_EQ(1, tftest::run(tool + " --checkerboard 7x5 --ir " + dir + "/ir.png --vis " + dir + "/vis.png -o " + dir +
                               "/wrong.json",
                           &out))
      << out;
  EXPECT_NE(std::string::npos, out.find("no 7x5 checkerboard")) << out;
  EXPECT_FALSE(std::ifstream(dir + "/wrong.json").good()) << "a refused calibration must not write a file";
}
