// Every metric against an independent NumPy implementation (reference_values.py in
// this folder: MATLAB code transcribed with NumPy sliding windows, np.pad and np.fft,
// no shared code). The constants below are its output, generated once with
// Debian's /usr/bin/python3 (NumPy 1.24) by `/usr/bin/python3 tests/metrics/reference_values.py`.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "helpers.h"

namespace {

constexpr int kRows = 51, kCols = 64;  // odd rows and even columns exercise both freqspace cases

struct Images {
  cv::Mat ir, vis, fused, vis_bgr, fused_bgr;
};

// The integer patterns of reference_values.py: test_images().
Images make_images() {
  using mtest::gray;
  Images im;
  auto ir = [](int i, int j) { return (40 + 3 * i + 2 * j + ((i * j) % 7) * 9) % 256; };
  auto vis = [](int i, int j) { return (200 - 2 * i + j + ((i + 2 * j) % 5) * 12 + (j > 30 ? 40 : 0)) % 256; };
  auto fused = [&](int i, int j) {
    int v = (ir(i, j) + vis(i, j)) / 2 * 5 / 4 - 32 + (3 * i + j) % 4;
    return std::min(255, std::max(0, v));
  };
  im.ir = gray(kRows, kCols, ir);
  im.vis = gray(kRows, kCols, vis);
  im.fused = gray(kRows, kCols, fused);
  cv::Mat vr = im.vis, vg = gray(kRows, kCols, [&](int i, int j) { return (vis(i, j) + 5 * i) % 256; });
  cv::Mat vb = gray(kRows, kCols, [&](int i, int j) { return (vis(i, j) / 2 + 3 * j) % 256; });
  cv::Mat fr = im.fused, fg = gray(kRows, kCols, [&](int i, int j) { return (fused(i, j) + 7) % 256; });
  cv::Mat fb = gray(kRows, kCols, [&](int i, int j) { return (fused(i, j) * 3 / 4 + i) % 256; });
  cv::merge(std::vector<cv::Mat>{vb, vg, vr}, im.vis_bgr);  // OpenCV order: B, G, R
  cv::merge(std::vector<cv::Mat>{fb, fg, fr}, im.fused_bgr);
  return im;
}

const std::map<std::string, double> kGray = {
    {"en", 7.40973397923},        {"sd", 58.7598900512},       {"sf", 94.7695185287},
    {"ag", 26.3674431842},        {"mi", 3.97914453927},       {"scd", 1.74431665642},
    {"vif", 0.266543230188},      {"qabf", 0.474608388199},    {"nabf", 0.000254086346051},
    {"ssim", 1.18285520241},      {"ce", 1.49482421838},       {"ei", 159.410498276},
    {"qcb", 0.538500759717},      {"qcv", 1632.98813441},      {"psnr_vifb", 47.7111523154},
    {"rmse_vifb", 1.10145086755}, {"psnr", 12.1508833662},     {"rmse", 62.9500402494},
};

const std::map<std::string, double> kColourPerChannel = {
    {"en", 7.4457586674},         {"sd", 57.5631229433},       {"sf", 89.1464111362},
    {"ag", 24.3774716573},        {"mi", 4.42507811786},       {"scd", 0.741071910156},
    {"vif", 0.18236877978},       {"qabf", 0.374489360023},    {"nabf", 0.0231939384721},
    {"ssim", 0.85408446175},      {"ce", 1.06047804961},       {"ei", 150.436952726},
    {"qcb", 0.526135902698},      {"qcv", 3303.99581113},      {"psnr_vifb", 46.8976491199},
    {"rmse_vifb", 1.35038346577}, {"psnr", 10.508105751},      {"rmse", 77.3356125983},
};

const std::map<std::string, double> kColourLuma = {
    {"en", 7.43409308725},       {"sd", 53.0248153507},      {"sf", 76.7176753798},
    {"ag", 21.8006326446},       {"mi", 4.96932505056},      {"scd", 1.01049410079},
    {"vif", 0.119187865825},     {"qabf", 0.341633434767},   {"nabf", 0.0432632521311},
    {"ssim", 0.761984035121},    {"ce", 0.338070857154},     {"ei", 138.958451035},
    {"qcb", 0.525993750851},     {"qcv", 3176.70811189},     {"psnr_vifb", 47.1799679327},
    {"rmse_vifb", 1.2447541062}, {"psnr", 11.0887885979},    {"rmse", 71.1378524864},
};

// The constants carry 12 significant digits.
void expect_matches(const std::map<std::string, double>& want, const std::map<std::string, double>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, value] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_NEAR(got.at(name), value, 2e-11 * std::abs(value) + 1e-14) << name;
  }
}

}  // namespace

TEST(MetricReferenceValues, GrayImagesMatchNumPy) {
  Images im = make_images();
  expect_matches(kGray, timfusion::compute_all({im.ir, im.vis, im.fused}));
}

TEST(MetricReferenceValues, ColourPerChannelMatchesNumPy) {
  Images im = make_images();
  expect_matches(kColourPerChannel,
                 timfusion::compute_all({im.ir, im.vis_bgr, im.fused_bgr}, timfusion::ColorMode::PerChannel));
}

TEST(MetricReferenceValues, ColourLumaMatchesNumPy) {
  Images im = make_images();
  expect_matches(kColourLuma, timfusion::compute_all({im.ir, im.vis_bgr, im.fused_bgr}, timfusion::ColorMode::Luma));
}
