// Rig calibration on a heated checkerboard (calibrate_checkerboard and
// timfusion-calibrate --checkerboard): a rendered board seen by a visible
// camera and, with the opposite polarity, lower resolution, blur and noise,
// by a thermal camera under a known homography.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "heated_board.h"
#include "test_support.h"
#include "timfusion/calibration.h"
#include "timfusion/pairs.h"

using namespace timfusion;

namespace {

using tftest::kBoardInner;
const cv::Size kIr = tftest::kBoardIrSize, kVis = tftest::kBoardVisSize;

Homography as_homography(const cv::Matx33d& m) {
  Homography h;
  for (int i = 0; i < 9; ++i) h.m[i] = m.val[i];
  return h;
}

struct BoardPair {
  CalibrationPair pair;
  Homography truth;
};

BoardPair board_pair(const std::string& name, cv::Point2f at, double deg) {
  const tftest::BoardView v = tftest::heated_board_view(at, deg);
  return {{name, v.ir, v.vis}, as_homography(v.truth)};
}

}  // namespace

TEST(CheckerboardCalibration, OneHeatedBoardGivesTheHomographyToAFractionOfAPixel) {
  CheckerboardOptions o;
  o.inner_corners = kBoardInner;
  const BoardPair b = board_pair("one", {190, 150}, 3);
  const Calibration c = calibrate_checkerboard({b.pair}, o);
  EXPECT_EQ("checkerboard", c.method);
  const double err = reprojection_error(c.h, b.truth, kIr, kVis);
  EXPECT_LT(err, 0.35) << "mean error over the IR frame, visible px";
  EXPECT_LT(c.residual_px, 0.5);
  EXPECT_GT(c.confidence, 0.5);
  ASSERT_EQ(1u, c.pairs.size());
  EXPECT_TRUE(c.pairs[0].used);
}

TEST(CheckerboardCalibration, BoardPositionsSpreadOverTheViewAreFittedTogether) {
  CheckerboardOptions o;
  o.inner_corners = kBoardInner;
  const BoardPair left = board_pair("left", {150, 130}, -4), right = board_pair("right", {300, 190}, 5),
                  empty = board_pair("empty wall", {2000, 2000}, 0);
  const Calibration c = calibrate_checkerboard({left.pair, right.pair, empty.pair}, o);
  const double err = reprojection_error(c.h, left.truth, kIr, kVis);
  EXPECT_LT(err, 0.3);
  ASSERT_EQ(3u, c.pairs.size());
  EXPECT_TRUE(c.pairs[0].used);
  EXPECT_TRUE(c.pairs[1].used);
  EXPECT_FALSE(c.pairs[2].used) << "no board in that pair";
  EXPECT_NE(std::string::npos, c.pairs[2].problem.find("no 9x6 checkerboard")) << c.pairs[2].problem;
  EXPECT_LT(c.spread_px, 1.0);
}

// A typical uncooled thermal camera: 160x120, a quarter of the visible
// resolution (the board's squares are about 8 IR pixels).
TEST(CheckerboardCalibration, QuarterResolutionThermalCamera) {
  CheckerboardOptions o;
  o.inner_corners = kBoardInner;
  const cv::Size small(160, 120);
  std::vector<CalibrationPair> pairs;
  tftest::BoardView v;
  for (auto [x, y, deg] : {std::tuple{150.f, 130.f, -4.0}, {300.f, 190.f, 5.0}, {190.f, 150.f, 3.0}}) {
    v = tftest::heated_board_view({x, y}, deg, small);
    pairs.push_back({"board", v.ir, v.vis});
  }
  const Calibration c = calibrate_checkerboard(pairs, o);
  EXPECT_LT(reprojection_error(c.h, as_homography(v.truth), small, kVis), 0.3);
  for (const auto& p : c.pairs) EXPECT_TRUE(p.used) << p.problem;
}

TEST(CheckerboardCalibration, NoBoardOrAColdBoardIsRefusedWithWhatToDo) {
  CheckerboardOptions o;
  o.inner_corners = kBoardInner;
  CalibrationPair p = board_pair("cold", {190, 150}, 3).pair;
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
  const BoardPair b = board_pair("one", {190, 150}, 3);
  write_image(dir + "/ir.png", b.pair.ir);
  write_image(dir + "/vis.png", b.pair.vis);
  const std::string tool = tftest::build_dir() + "/core/timfusion-calibrate";
  std::string out;
  ASSERT_EQ(0, tftest::run(tool + " --checkerboard 9x6 --ir " + dir + "/ir.png --vis " + dir + "/vis.png -o " + dir +
                               "/rig.json",
                           &out))
      << out;
  EXPECT_NE(std::string::npos, out.find("checkerboard corners: RMS error")) << out;
  EXPECT_LT(reprojection_error(Homography::load(dir + "/rig.json"), b.truth, kIr, kVis), 0.35);
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
