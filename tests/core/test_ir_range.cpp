// 16-bit IR range (issue 27): robust percentiles, smoothing over time, the stretch.
#include <gtest/gtest.h>

#include "timfusion/ir_range.h"

using namespace timfusion;

TEST(IrRange, PercentilesIgnoreAFewHotAndDeadPixels) {
  cv::Mat ir(100, 100, CV_16UC1);
  for (int y = 0; y < 100; ++y)
    for (int x = 0; x < 100; ++x) ir.at<uint16_t>(y, x) = static_cast<uint16_t>(7000 + (x * 10));  // 7000..7990
  ir.at<uint16_t>(0, 0) = 0;       // dead
  ir.at<uint16_t>(1, 1) = 65535;   // hot
  const IrRange r = robust_ir_range(ir);
  EXPECT_NEAR(7000, r.low, 10);
  EXPECT_NEAR(7990, r.high, 10);
  cv::Mat flat(10, 10, CV_16UC1, cv::Scalar(500));
  const IrRange f = robust_ir_range(flat);
  EXPECT_DOUBLE_EQ(kMinIrSpan, f.high - f.low) << "a uniform frame gets a minimum span";
}

TEST(IrRange, SmoothingDoesNotPump) {
  IrRangeSmoother s(0.05);
  EXPECT_DOUBLE_EQ(7000, s.update({7000, 8000}).low);  // the first frame sets it
  IrRange r{};
  for (int i = 0; i < 10; ++i) r = s.update({7000, 30000});  // a hot object enters for 10 frames
  EXPECT_LT(r.high, 8000 + 0.41 * 22000) << "moves only part of the way";
  EXPECT_GT(r.high, 8000);
}

TEST(IrRange, StretchMapsTheRangeOntoTheFullScale) {
  cv::Mat ir = (cv::Mat_<uint16_t>(1, 4) << 6000, 7000, 7500, 9000);
  cv::Mat out;
  stretch_ir(ir, {7000, 8000}, out);
  EXPECT_EQ(0, out.at<uint16_t>(0, 0));
  EXPECT_EQ(0, out.at<uint16_t>(0, 1));
  EXPECT_NEAR(32768, out.at<uint16_t>(0, 2), 1);
  EXPECT_EQ(65535, out.at<uint16_t>(0, 3));
}
