// Registration: the IR frame onto the visible grid.
#include <gtest/gtest.h>

#include <fstream>

#include <opencv2/imgproc.hpp>

#include "test_support.h"
#include "timfusion/error.h"
#include "timfusion/registration.h"

using namespace timfusion;

TEST(Registration, ParsesNineNumbersInAnyCommonNotation) {
  EXPECT_TRUE(Homography::parse("1,0,0, 0,1,0, 0,0,1").is_identity());
  auto h = Homography::parse("<1.0; 0; 5; 0; 1; -3; 0; 0; 1>");
  EXPECT_DOUBLE_EQ(h.m[2], 5);
  EXPECT_DOUBLE_EQ(h.m[5], -3);
  EXPECT_THROW(Homography::parse("1,0,0,0,1,0,0,0"), Error);
  EXPECT_THROW(Homography::parse("1,0,0,0,1,0,0,0,x"), Error);
}

TEST(Registration, RejectsSingularMirroredAndNonFinite) {
  EXPECT_THROW(Homography::parse("1,0,0,0,0,0,0,0,1"), Error);
  try {
    Homography::parse("-1,0,640,0,1,0,0,0,1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mirror"), std::string::npos);
  }
  EXPECT_THROW(Homography::parse("1,0,nan,0,1,0,0,0,1"), Error);
  // -H is the same mapping as H: not a mirror.
  EXPECT_NO_THROW(Homography::parse("-1,0,0,0,-1,0,0,0,-1"));
}

TEST(Registration, LoadsJsonAndKeyFiles) {
  std::string dir = tftest::temp_dir("calib");
  std::ofstream(dir + "/rig.json") << R"({"ir-homography": [1, 0, 4, 0, 1, 2, 0, 0, 1], "note": "bench rig"})";
  EXPECT_DOUBLE_EQ(Homography::load(dir + "/rig.json").m[2], 4);
  std::ofstream(dir + "/rig.conf") << "[timfusion]\nir-homography=1;0;4;0;1;2;0;0;1\n";
  EXPECT_DOUBLE_EQ(Homography::load(dir + "/rig.conf").m[5], 2);
  std::ofstream(dir + "/bad.json") << R"({"other": 1})";
  EXPECT_THROW(Homography::load(dir + "/bad.json"), Error);
  EXPECT_THROW(Homography::load(dir + "/missing.json"), Error);
}

TEST(Registration, IdentityAtTheSameSizeIsANoOp) {
  cv::Mat ir(48, 64, CV_8UC1, cv::Scalar(9));
  cv::Mat out = warp_ir(ir, Homography{}, ir.size());
  EXPECT_EQ(out.data, ir.data);  // no copy
}

TEST(Registration, IdentityScalesASmallerIrFrame) {
  cv::Mat ir(24, 32, CV_16UC1, cv::Scalar(1000));
  cv::Mat out = warp_ir(ir, Homography{}, cv::Size(64, 48));
  EXPECT_EQ(out.size(), cv::Size(64, 48));
  EXPECT_EQ(out.type(), CV_16UC1);
  EXPECT_EQ(out.at<uint16_t>(47, 63), 1000);
}

TEST(Registration, HomographyMapsIrPixelsToVisiblePixels) {
  cv::Mat ir(40, 40, CV_8UC1, cv::Scalar(0));
  ir.at<uint8_t>(10, 10) = 200;  // (x=10, y=10)
  auto h = Homography::parse("1,0,5, 0,1,3, 0,0,1");  // IR (x,y) -> visible (x+5, y+3)
  cv::Mat out = warp_ir(ir, h, cv::Size(50, 50));
  EXPECT_EQ(out.at<uint8_t>(13, 15), 200);
  EXPECT_EQ(out.at<uint8_t>(10, 10), 0);
}
