// Properties that need no oracle (METRICS.md, last paragraph) and the identities
// that follow from the definitions when the fused image copies its sources.
#include <gtest/gtest.h>

#include <cmath>

#include "helpers.h"

using mtest::constant;
using mtest::gray;
using mtest::metric;

TEST(MetricProperties, EntropyOfConstantIsZero) {
  cv::Mat c = constant(7, 9, 123);
  EXPECT_EQ(metric("en", c, c, c), 0.0);
}

TEST(MetricProperties, EntropyOfAll256LevelsEquallyOftenIsEightBits) {
  // 16x16 holds each level once; 32x16 holds each level twice.
  EXPECT_NEAR(metric("en", constant(16, 16, 0), constant(16, 16, 0), gray(16, 16, [](int i, int j) { return 16 * i + j; })),
              8.0, 1e-12);
  cv::Mat twice = gray(32, 16, [](int i, int j) { return (16 * i + j) % 256; });
  EXPECT_NEAR(metric("en", twice, twice, twice), 8.0, 1e-12);
}

TEST(MetricProperties, SdSfAgEiOfConstantAreZero) {
  cv::Mat c = constant(12, 10, 77), x = mtest::tno("ir", "03");
  cv::Mat cf = constant(x.rows, x.cols, 200);
  for (const char* name : {"sd", "sf", "ag", "ei"}) {
    EXPECT_EQ(metric(name, c, c, c), 0.0) << name;
    EXPECT_EQ(metric(name, x, x, cf), 0.0) << name << " ignores the sources";
  }
}

TEST(MetricProperties, OneSidedMutualInformationOfImageWithItselfIsItsEntropyInNats) {
  // MI(IR,F) vanishes for a constant IR, leaving MI(X,X) = H(X); EN gives H(X) in bits.
  cv::Mat x = mtest::tno("vis", "05");
  ASSERT_FALSE(x.empty());
  cv::Mat c = constant(x.rows, x.cols, 40);
  const double h_bits = metric("en", c, x, x);
  EXPECT_GT(h_bits, 5.0);
  EXPECT_NEAR(metric("mi", c, x, x), h_bits * std::log(2.0), 1e-9);
  // Both sides: 2 H(X).
  EXPECT_NEAR(metric("mi", x, x, x), 2 * h_bits * std::log(2.0), 1e-9);
}

TEST(MetricProperties, SsimOfImageWithItselfIsOne) {
  cv::Mat x = mtest::tno("ir", "04"), y = mtest::tno("vis", "04");
  EXPECT_NEAR(metric("ssim", x, x, x), 2.0, 1e-12);  // SSIM(A,F) + SSIM(B,F) with both = 1
  // One side alone: SSIM(VIS=F) = 1 plus SSIM(IR,F) < 1.
  const double s = metric("ssim", y, x, x);
  EXPECT_GT(s, 1.0);
  EXPECT_LT(s, 2.0);
  EXPECT_NEAR(s - 1.0, metric("ssim", y, y, x) / 2, 1e-12);
}

TEST(MetricProperties, ScdIsSymmetricInTheSources) {
  cv::Mat a = mtest::tno("ir", "06"), b = mtest::tno("vis", "06"), f = mtest::tno("fused/DenseFuse", "06");
  const double ab = metric("scd", a, b, f), ba = metric("scd", b, a, f);
  EXPECT_NEAR(ab, ba, 1e-12);
  EXPECT_GT(ab, 0.5);  // DenseFuse keeps both sources
}

TEST(MetricProperties, AllSymmetricMetricsAreSymmetricInTheSources) {
  // Every two-source metric in the table treats IR and VIS alike (VIFB sums or averages both).
  cv::Mat a = mtest::tno("ir", "09"), b = mtest::tno("vis", "09"), f = mtest::tno("fused/IFCNN", "09");
  auto ab = timfusion::compute_all({a, b, f}), ba = timfusion::compute_all({b, a, f});
  for (const auto& name : timfusion::metric_names())
    EXPECT_NEAR(ab[name], ba[name], 1e-9 * (1 + std::abs(ab[name]))) << name;
}

TEST(MetricProperties, QabfOfSourceCopyIsFarAboveConstant) {
  cv::Mat a = mtest::tno("ir", "01"), b = mtest::tno("vis", "01");
  const double copy = metric("qabf", a, b, a);
  // Black: gF = 0 everywhere, so Q^AF <= Tg / (1 + e^7.5) ~ 5.5e-4.
  const double black = metric("qabf", a, b, constant(a.rows, a.cols, 0));
  // Mid-gray: VIFB's zero-padded conv2 sees a frame of strong edges around any
  // non-black image, where sources and F agree in angle; the frame alone gives ~0.04.
  const double gray = metric("qabf", a, b, constant(a.rows, a.cols, 128));
  EXPECT_GT(copy, 0.3);
  EXPECT_LT(black, 1e-3);
  EXPECT_LT(gray, 0.1);
  EXPECT_GT(copy, 100 * black);
  EXPECT_GT(copy, 5 * gray);
}

TEST(MetricProperties, FusedEqualToBothSourcesIsPerfectWhereDefined) {
  cv::Mat x = mtest::tno("vis", "10");
  EXPECT_NEAR(metric("vif", x, x, x), 2.0, 1e-6);  // g = 1, sv^2 clamped to 1e-10
  EXPECT_NEAR(metric("qcb", x, x, x), 1.0, 1e-12);  // every contrast ratio is 1
  EXPECT_EQ(metric("qcv", x, x, x), 0.0);          // no difference to filter
  EXPECT_EQ(metric("nabf", x, x, x), 0.0);         // gF never exceeds both sources
  EXPECT_EQ(metric("ce", x, x, x), 0.0);
  EXPECT_EQ(metric("rmse", x, x, x), 0.0);
  EXPECT_EQ(metric("rmse_vifb", x, x, x), 0.0);
  EXPECT_TRUE(std::isinf(metric("psnr", x, x, x)));
}

TEST(MetricProperties, VifOfConstantFusedIsZero) {
  cv::Mat a = mtest::tno("ir", "11"), b = mtest::tno("vis", "11");
  EXPECT_EQ(metric("vif", a, b, constant(a.rows, a.cols, 90)), 0.0);
}

TEST(MetricProperties, PublishedFusionOutputsScoreInTheUsualRanges) {
  // DenseFuse on TNO pair 13: loose bounds that catch a scale or log-base slip
  // (MI in bits would be 1.44x, SF on [0,1] 1/255, VIFB's PSNR ~60 dB).
  cv::Mat a = mtest::tno("ir", "13"), b = mtest::tno("vis", "13"), f = mtest::tno("fused/DenseFuse", "13");
  auto v = timfusion::compute_all({a, b, f});
  EXPECT_GT(v["en"], 5.5);
  EXPECT_LT(v["en"], 8.0);
  EXPECT_GT(v["sf"], 2.0);
  EXPECT_LT(v["sf"], 40.0);
  EXPECT_GT(v["mi"], 0.3);
  EXPECT_LT(v["mi"], 5.0);
  EXPECT_GT(v["ssim"], 1.0);
  EXPECT_LT(v["ssim"], 2.0);
  EXPECT_GT(v["qabf"], 0.1);
  EXPECT_LT(v["qabf"], 0.9);
  EXPECT_GT(v["psnr_vifb"], 50.0);
  EXPECT_LT(v["psnr_vifb"], 70.0);
  EXPECT_GT(v["psnr"], 8.0);
  EXPECT_LT(v["psnr"], 30.0);
  EXPECT_NEAR(v["psnr"], 20 * std::log10(255 / v["rmse"]), 1e-9);
}
