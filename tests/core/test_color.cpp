// Colour handling: fuse the luma, keep the chroma.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "test_support.h"
#include "timfusion/color.h"
#include "timfusion/error.h"
#include "timfusion/pairs.h"

using namespace timfusion;

namespace {
cv::Mat roadscene_vis() { return read_image(tftest::data("roadscene/vis/FLIR_00006.png"), cv::IMREAD_COLOR); }
}  // namespace

TEST(Color, LumaIsOpenCvsBt601) {
  // The reference reads visible images with cv2.imread(path, 0), i.e. BGR2GRAY;
  // YCrCb's Y uses the same weights with other rounding (off by at most 1).
  cv::Mat vis = read_image(tftest::data("msrs_sample/vis/00032N.png"), cv::IMREAD_COLOR);
  cv::Mat gray, ycrcb, y;
  cv::cvtColor(vis, gray, cv::COLOR_BGR2GRAY);
  cv::cvtColor(vis, ycrcb, cv::COLOR_BGR2YCrCb);
  cv::extractChannel(ycrcb, y, 0);
  EXPECT_EQ(cv::norm(luma_of(vis, ChannelOrder::BGR), gray, cv::NORM_INF), 0);
  EXPECT_LE(cv::norm(luma_of(vis, ChannelOrder::BGR), y, cv::NORM_INF), 1);
  // The same pixels in RGB order give the same luma when told so.
  cv::Mat rgb;
  cv::cvtColor(vis, rgb, cv::COLOR_BGR2RGB);
  EXPECT_EQ(cv::norm(luma_of(rgb, ChannelOrder::RGB), gray, cv::NORM_INF), 0);
  EXPECT_GT(cv::norm(luma_of(rgb, ChannelOrder::BGR), gray, cv::NORM_INF), 0);
}

TEST(Color, ReplacingLumaWithItselfIsExact) {
  cv::Mat vis = roadscene_vis();
  cv::Mat y = luma_of(vis, ChannelOrder::BGR), out;
  replace_luma(vis, y, y, out);
  EXPECT_EQ(cv::norm(out, vis, cv::NORM_INF), 0);
}

TEST(Color, NewLumaLandsAndChromaIsKept) {
  cv::Mat vis = roadscene_vis();
  cv::Mat y = luma_of(vis, ChannelOrder::BGR);
  cv::Mat brighter = y + 20;  // a "fused" luma
  cv::Mat out;
  replace_luma(vis, y, brighter, out);
  cv::Mat in_ycc, out_ycc;
  cv::cvtColor(vis, in_ycc, cv::COLOR_BGR2YCrCb);
  cv::cvtColor(out, out_ycc, cv::COLOR_BGR2YCrCb);
  std::vector<cv::Mat> a, b;
  cv::split(in_ycc, a);
  cv::split(out_ycc, b);
  // Where no channel saturates, luma is the new one and chroma is unchanged (to rounding).
  cv::Mat ok = (vis < cv::Scalar(230, 230, 230));
  cv::Mat ok1;
  cv::cvtColor(ok, ok1, cv::COLOR_BGR2GRAY);
  ok1 = ok1 == 255;
  cv::Mat dy, dcr, dcb;
  cv::absdiff(b[0], brighter, dy);
  cv::absdiff(a[1], b[1], dcr);
  cv::absdiff(a[2], b[2], dcb);
  double m;
  cv::minMaxLoc(dy, nullptr, &m, nullptr, nullptr, ok1);
  EXPECT_LE(m, 1);
  cv::minMaxLoc(dcr, nullptr, &m, nullptr, nullptr, ok1);
  EXPECT_LE(m, 1);
  cv::minMaxLoc(dcb, nullptr, &m, nullptr, nullptr, ok1);
  EXPECT_LE(m, 1);
  EXPECT_GT(cv::countNonZero(ok1), static_cast<int>(ok1.total() / 2));
}

TEST(Color, AlphaAndGrayArePreserved) {
  cv::Mat vis = roadscene_vis(), bgra;
  cv::cvtColor(vis, bgra, cv::COLOR_BGR2BGRA);
  std::vector<cv::Mat> ch;
  cv::split(bgra, ch);
  ch[3] = cv::Mat(vis.size(), CV_8U, cv::Scalar(77));
  cv::merge(ch, bgra);
  cv::Mat y = luma_of(bgra, ChannelOrder::BGR), out;
  cv::Mat fused = 255 - y;
  replace_luma(bgra, y, fused, out);
  ASSERT_EQ(out.type(), CV_8UC4);
  cv::Mat alpha;
  cv::extractChannel(out, alpha, 3);
  EXPECT_EQ(cv::countNonZero(alpha != 77), 0);

  cv::Mat gray = y.clone(), gout;
  replace_luma(gray, gray, fused, gout);
  EXPECT_EQ(gout.type(), CV_8UC1);
  EXPECT_EQ(cv::norm(gout, fused, cv::NORM_INF), 0);
}

TEST(Color, PreallocatedOutputIsWrittenInPlace) {
  cv::Mat vis = roadscene_vis();
  cv::Mat y = luma_of(vis, ChannelOrder::BGR);
  std::vector<uint8_t> frame(vis.total() * 3);
  cv::Mat out(vis.rows, vis.cols, CV_8UC3, frame.data());
  replace_luma(vis, y, y, out);
  EXPECT_EQ(out.data, frame.data());
  EXPECT_EQ(frame[123], vis.data[123]);
  cv::Mat wrong(vis.rows, vis.cols, CV_8UC1);
  EXPECT_THROW(replace_luma(vis, y, y, wrong), Error);
}

TEST(Color, IrScalesBothBitDepthsToUnitRange) {
  cv::Mat ir = read_image(tftest::data("msrs_sample/ir/00032N.png"), cv::IMREAD_GRAYSCALE);
  cv::Mat ir16;
  ir.convertTo(ir16, CV_16U, 257.0);  // how real radiometric frames arrive
  cv::Mat a = ir_to_unit(ir, ChannelOrder::BGR), b = ir_to_unit(ir16, ChannelOrder::BGR);
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0);  // bit-identical, so 16-bit cameras fuse exactly like 8-bit
  double mx;
  cv::minMaxLoc(a, nullptr, &mx);
  EXPECT_LE(mx, 1.0);
}
