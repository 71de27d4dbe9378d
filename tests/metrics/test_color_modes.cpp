// Colour handling (VIFB per-channel versus luma), the metric table and input checks.
#include <gtest/gtest.h>

#include <cmath>

#include <opencv2/imgproc.hpp>

#include "helpers.h"
#include "timfusion/error.h"

using mtest::metric;
using timfusion::ColorMode;

namespace {

// MATLAB rgb2gray of an 8-bit BGR image, written out independently of the library.
cv::Mat matlab_gray(const cv::Mat& bgr) {
  cv::Mat g(bgr.size(), CV_8U);
  for (int i = 0; i < bgr.rows; ++i)
    for (int j = 0; j < bgr.cols; ++j) {
      cv::Vec3b p = bgr.at<cv::Vec3b>(i, j);
      g.at<uchar>(i, j) = static_cast<uchar>(std::lround(0.298936021293775 * p[2] + 0.587043074451121 * p[1] +
                                                         0.114020904255103 * p[0]));
    }
  return g;
}

// An MSRS pair: colour visible and a colour fused image (PIAFusion's published output).
struct Msrs {
  cv::Mat ir, vis, fused;
};
Msrs msrs() {
  const std::string d = tftest::data("msrs_sample/");
  return {cv::imread(d + "ir/00537D.png", cv::IMREAD_UNCHANGED), cv::imread(d + "vis/00537D.png", cv::IMREAD_UNCHANGED),
          cv::imread(d + "fused/PIAFusion/00537D.png", cv::IMREAD_UNCHANGED)};
}

}  // namespace

TEST(MetricColour, MetricNamesAreTheDocumentedList) {
  const std::vector<std::string> want = {"en",  "sd",   "sf", "ag", "mi",  "scd", "vif",       "qabf",      "nabf",
                                         "ssim", "ce", "ei", "qcb", "qcv", "psnr_vifb", "rmse_vifb", "psnr", "rmse"};
  EXPECT_EQ(timfusion::metric_names(), want);
  for (const auto& n : want) {
    EXPECT_TRUE(timfusion::is_metric(n));
    EXPECT_FALSE(timfusion::metric_convention(n).empty());
  }
  EXPECT_FALSE(timfusion::higher_is_better("nabf"));
  EXPECT_TRUE(timfusion::higher_is_better("qabf"));
  EXPECT_EQ(timfusion::parse_metric_list("en, qabf,mi"), (std::vector<std::string>{"en", "qabf", "mi"}));
  EXPECT_THROW(timfusion::parse_metric_list("en,entropy"), timfusion::Error);
  EXPECT_EQ(timfusion::parse_color_mode("luma"), ColorMode::Luma);
  EXPECT_STREQ(timfusion::color_mode_name(ColorMode::PerChannel), "per-channel");
  EXPECT_THROW(timfusion::parse_color_mode("rgb"), timfusion::Error);
}

TEST(MetricColour, GrayImagesScoreTheSameInBothModes) {
  cv::Mat a = mtest::tno("ir", "12"), b = mtest::tno("vis", "12"), f = mtest::tno("fused/U2Fusion", "12");
  auto per = timfusion::compute_all({a, b, f}, ColorMode::PerChannel);
  auto luma = timfusion::compute_all({a, b, f}, ColorMode::Luma);
  EXPECT_EQ(per, luma);
}

TEST(MetricColour, PerChannelAveragesEachFusedChannelAgainstTheVisibleChannel) {
  Msrs m = msrs();
  ASSERT_EQ(m.vis.channels(), 3);
  ASSERT_EQ(m.fused.channels(), 3);
  std::vector<cv::Mat> v, f;
  cv::split(m.vis, v);
  cv::split(m.fused, f);
  for (const char* name : {"mi", "qabf", "ssim", "en", "vif"}) {
    double mean = 0;
    for (int k = 0; k < 3; ++k) mean += metric(name, m.ir, v[k], f[k]) / 3;
    EXPECT_NEAR(metric(name, m.ir, m.vis, m.fused, ColorMode::PerChannel), mean, 1e-12) << name;
  }
}

TEST(MetricColour, LumaScoresTheMatlabGrayOfEachColourImage) {
  Msrs m = msrs();
  cv::Mat vy = matlab_gray(m.vis), fy = matlab_gray(m.fused);
  for (const char* name : {"mi", "qabf", "sf", "qcb"})
    EXPECT_EQ(metric(name, m.ir, m.vis, m.fused, ColorMode::Luma), metric(name, m.ir, vy, fy)) << name;
  // The modes really differ on colour data.
  EXPECT_NE(metric("qabf", m.ir, m.vis, m.fused, ColorMode::Luma),
            metric("qabf", m.ir, m.vis, m.fused, ColorMode::PerChannel));
}

TEST(MetricColour, SpatialFrequencyOfColourSeesTheChannelsSideBySide) {
  // VIFB's size() folds the channels into columns: SF runs over [R | G | B] as one plane.
  Msrs m = msrs();
  std::vector<cv::Mat> bgr;
  cv::split(m.fused, bgr);
  cv::Mat side;
  cv::hconcat(std::vector<cv::Mat>{bgr[2], bgr[1], bgr[0]}, side);
  cv::Mat ir3, vis3;
  cv::hconcat(std::vector<cv::Mat>{m.ir, m.ir, m.ir}, ir3);
  cv::hconcat(std::vector<cv::Mat>{bgr[2], bgr[2], bgr[2]}, vis3);
  EXPECT_NEAR(metric("sf", m.ir, m.vis, m.fused), metric("sf", ir3, vis3, side), 1e-12);
}

TEST(MetricColour, GrayVisibleWithColourFusedReusesTheVisibleForEveryChannel) {
  // SeAFusion's TNO outputs are RGB with a little chroma, the sources gray.
  cv::Mat a = mtest::tno("ir", "01"), b = mtest::tno("vis", "01"), f = mtest::tno("fused/SeAFusion", "01");
  ASSERT_EQ(f.channels(), 3);
  std::vector<cv::Mat> fc;
  cv::split(f, fc);
  double mean = 0;
  for (int k = 0; k < 3; ++k) mean += metric("qabf", a, b, fc[k]) / 3;
  EXPECT_NEAR(metric("qabf", a, b, f), mean, 1e-12);
}

TEST(MetricColour, ColourInfraredIsReducedToGray) {
  // A 3-channel IR file with R = G = B (as TNO ships them) scores like the gray one.
  cv::Mat a = mtest::tno("ir", "14"), b = mtest::tno("vis", "14"), f = mtest::tno("fused/IFCNN", "14"), a3;
  cv::cvtColor(a, a3, cv::COLOR_GRAY2BGR);
  EXPECT_EQ(metric("mi", a3, b, f), metric("mi", a, b, f));
}

TEST(MetricColour, BadInputsThrowTimfusionError) {
  cv::Mat a = mtest::constant(8, 8, 1), small = mtest::constant(8, 7, 1), deep(8, 8, CV_16U, cv::Scalar(3));
  EXPECT_THROW(metric("en", a, a, small), timfusion::Error);
  EXPECT_THROW(metric("en", a, a, deep), timfusion::Error);
  EXPECT_THROW(metric("en", cv::Mat(), a, a), timfusion::Error);
  EXPECT_THROW(metric("entropy", a, a, a), timfusion::Error);
  try {
    metric("en", a, small, a);
    FAIL() << "no exception";
  } catch (const timfusion::Error& e) {
    EXPECT_NE(std::string(e.what()).find("7x8"), std::string::npos) << e.what();
  }
}
