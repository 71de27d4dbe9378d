// Each metric on images small enough to work out by hand; the arithmetic is in the
// comments. Together they pin the VIFB conventions (divisors, log bases, quirks).
#include <gtest/gtest.h>

#include <cmath>

#include "helpers.h"

using mtest::constant;
using mtest::gray;
using mtest::metric;

namespace {
// 2x2 images are written row by row.
cv::Mat m22(int a, int b, int c, int d) { return (cv::Mat_<uchar>(2, 2) << a, b, c, d); }
}  // namespace

TEST(MetricHandValues, EntropyOfTwoEqualHalvesIsOneBit) {
  // p = (1/2, 1/2): -2 * 1/2 log2 1/2 = 1.
  cv::Mat f = gray(4, 6, [](int, int j) { return j < 3 ? 0 : 255; });
  EXPECT_NEAR(metric("en", f, f, f), 1.0, 1e-15);
}

TEST(MetricHandValues, StandardDeviationIsThePopulationOne) {
  // {0, 0, 100, 100}: mean 50, every deviation 50 -> sqrt(4*2500/4) = 50 (the sample SD would be 57.7).
  cv::Mat f = m22(0, 0, 100, 100);
  EXPECT_NEAR(metric("sd", f, f, f), 50.0, 1e-12);
}

TEST(MetricHandValues, SpatialFrequencyDividesByMN) {
  // [0 10; 20 30]: RF = (10^2 + 10^2)/4 = 50, CF = (20^2 + 20^2)/4 = 200, SF = sqrt(250) = 15.8113883.
  cv::Mat f = m22(0, 10, 20, 30);
  EXPECT_NEAR(metric("sf", f, f, f), 15.811388300841896, 1e-12);
}

TEST(MetricHandValues, AverageGradientDividesByMMinus1TimesNMinus1) {
  // 3x4 ramp F = 2j: MATLAB gradient gives Gx = 2 everywhere (central (2(j+1)-2(j-1))/2 inside,
  // one-sided at the ends), Gy = 0; each term sqrt((4+0)/2) = sqrt 2; 12 terms over (3-1)(4-1) = 6
  // -> 2 sqrt 2 = 2.8284271 (a plain mean would give sqrt 2).
  cv::Mat f = gray(3, 4, [](int, int j) { return 2 * j; });
  EXPECT_NEAR(metric("ag", f, f, f), 2.8284271247461903, 1e-12);
}

TEST(MetricHandValues, EdgeIntensityUsesReplicatedBorders) {
  // 3x4 ramp F = 2j, Sobel rows (1,2,1): horizontal response 4 * (F(j+1) - F(j-1)).
  // Inside: 4 * 4 = 16; at j = 0 the replicated F(-1) = 0 gives 4 * 2 = 8, likewise at j = 3.
  // Vertical response 0. Mean over columns (8 + 16 + 16 + 8) / 4 = 12.
  cv::Mat f = gray(3, 4, [](int, int j) { return 2 * j; });
  EXPECT_NEAR(metric("ei", f, f, f), 12.0, 1e-12);
}

TEST(MetricHandValues, MutualInformationIsInNats) {
  // F = VIS with four equally frequent levels, IR constant: MI = H = ln 4 = 1.3862944 nats.
  cv::Mat x = gray(4, 4, [](int i, int) { return 85 * i; });
  EXPECT_NEAR(metric("mi", constant(4, 4, 9), x, x), 1.3862943611198906, 1e-12);
  // VIS split left/right, F split top/bottom: independent halves, MI = 0.
  cv::Mat lr = gray(4, 4, [](int, int j) { return j < 2 ? 0 : 200; });
  cv::Mat tb = gray(4, 4, [](int i, int) { return i < 2 ? 30 : 60; });
  EXPECT_NEAR(metric("mi", constant(4, 4, 9), lr, tb), 0.0, 1e-12);
  // IR = VIS = F two-level: 2 ln 2.
  EXPECT_NEAR(metric("mi", lr, lr, lr), 2 * 0.6931471805599453, 1e-12);
}

TEST(MetricHandValues, CrossEntropyIsTheMeanKullbackLeiblerDivergenceInBits) {
  // VIS {0,0,255,255}: P = (1/2, 1/2); F {0,255,255,255}: P = (1/4, 3/4).
  // KL(VIS||F) = 1/2 log2(2) + 1/2 log2(2/3) = 0.2075187; IR = F gives 0; mean 0.1037594.
  cv::Mat f = m22(0, 255, 255, 255);
  EXPECT_NEAR(metric("ce", f, m22(0, 0, 255, 255), f), 0.10375937481971093, 1e-12);
}

TEST(MetricHandValues, VifbRmseAndPsnrAndTheStandardOnes) {
  // Sources 0, F = 10 on 2x2. VIFB "mse" = sqrt(4 * 100) / 4 = 5 for each source -> rmse_vifb = 5,
  // psnr_vifb = 20 log10(255 / sqrt 5) = 41.1411036. Standard: MSE = 100, RMSE = 10,
  // PSNR = 10 log10(65025 / 100) = 28.1308036.
  cv::Mat z = constant(2, 2, 0), f = constant(2, 2, 10);
  EXPECT_NEAR(metric("rmse_vifb", z, z, f), 5.0, 1e-12);
  EXPECT_NEAR(metric("psnr_vifb", z, z, f), 41.141103565318915, 1e-12);
  EXPECT_NEAR(metric("rmse", z, z, f), 10.0, 1e-12);
  EXPECT_NEAR(metric("psnr", z, z, f), 28.130803608679106, 1e-12);
}

TEST(MetricHandValues, ScdOfTheSumOfTheSourcesIsTwo) {
  // F = A + B: F - B = A and F - A = B, so SCD = corr2(A, A) + corr2(B, B) = 2.
  cv::Mat a = m22(0, 10, 20, 40), b = m22(30, 0, 15, 5);
  EXPECT_NEAR(metric("scd", a, b, a + b), 2.0, 1e-12);
  // F = A: the second term corr2(F - A, B) = corr2(0, B) is 0/0, NaN as in MATLAB.
  EXPECT_TRUE(std::isnan(metric("scd", a, b, a)));
}

TEST(MetricHandValues, SsimOfConstantsIsTheLuminanceTerm) {
  // 11x11 constants leave one 'valid' window with no variance: SSIM = (2 mu_a mu_b + C1)/(mu_a^2 + mu_b^2 + C1)
  // with C1 = (0.01*255)^2 = 6.5025: (30000 + 6.5025) / (32500 + 6.5025) = 0.9230923; twice = 1.8461846.
  cv::Mat s = constant(11, 11, 100), f = constant(11, 11, 150);
  EXPECT_NEAR(metric("ssim", s, s, f), 1.846184621061586, 1e-12);
}

TEST(MetricHandValues, QabfOfAPerfectCopyShowsVifbsEqualStrengthQuirk) {
  // A = B = F: wherever gA > 0, gA == gF and VIFB sets G^AF = gF (on its 255x scale, >= 255), so
  // Qg = Tg / (1 + e^(-15 (gF - 0.5))) = Tg exactly; A^AF = 1 gives Qa = Ta / (1 + e^(-22 * 0.2)).
  // Qabf = 0.9994 * 0.9879 / (1 + e^-4.4) = 0.9753328 for any non-constant image (with G = 1 it
  // would be 0.9747683).
  cv::Mat x = (cv::Mat_<uchar>(3, 4) << 10, 200, 30, 40, 50, 60, 70, 90, 100, 0, 120, 130);
  EXPECT_NEAR(metric("qabf", x, x, x), 0.975332768087588, 1e-12);
}

TEST(MetricHandValues, NabfOfARampWithDoubledContrast) {
  // IR = VIS = 8j, F = 16j on 4x6. Kumar's Sobel/8 with mirrored borders: gA = 4/8 * 16 = 8 inside,
  // 0 in the two edge columns (F(-1) = F(1)); gF = 16 inside. Inside: gF > gA, gAF = 1/2, same angle:
  // QAF = sqrt(0.9999/2 * 0.9995/(1 + e^-11)) = 0.7068887, weights 8^1.5 = 22.627417 per source;
  // edge pixels weigh 0.001 each and have no artefact.
  // Nabf = 16*2*22.627417*(1 - 0.7068887) / (16*2*22.627417 + 16*0.001) = 0.2931048.
  cv::Mat a = gray(4, 6, [](int, int j) { return 8 * j; }), f = gray(4, 6, [](int, int j) { return 16 * j; });
  EXPECT_NEAR(metric("nabf", a, a, f), 0.29310479132953804, 1e-12);
}

TEST(MetricHandValues, VifbPsnrIsComputedFromItsOwnRmse) {
  // VIFB publishes per-image values (output/evaluation_metrics_single/): for carLight_CBF
  // Rmse = 0.083579 and Psnr = 58.91, and 20 log10(255 / sqrt(0.083579)) = 58.9098 reproduces
  // the latter: PSNR takes the square root of the already-rooted "mse". Same relation here.
  EXPECT_NEAR(20 * std::log10(255 / std::sqrt(0.083579)), 58.91, 0.005);
  cv::Mat a = mtest::tno("ir", "08"), b = mtest::tno("vis", "08"), f = mtest::tno("fused/DenseFuse", "08");
  const double r = metric("rmse_vifb", a, b, f);
  EXPECT_NEAR(metric("psnr_vifb", a, b, f), 20 * std::log10(255 / std::sqrt(r)), 1e-12);
  EXPECT_GT(metric("psnr_vifb", a, b, f), 50.0);  // the ~60 dB scale of VIFB's tables
}
