#include "timfusion/noise_level.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <vector>

#include "timfusion/error.h"

namespace timfusion {

namespace {

// 16-bit frames (thermal cameras): the same mask and median, through
// nth_element (the magnitudes do not fit a small histogram), in grey levels
// of 255 (value / 257, the scale 16-bit IR is read with).
double noise_level_16(const cv::Mat& gray16) {
  std::vector<int32_t> magnitudes;
  magnitudes.reserve(static_cast<size_t>((gray16.rows / 2) * (gray16.cols / 2)));
  for (int y = 0; y + 2 < gray16.rows; y += 2) {
    const uint16_t* r0 = gray16.ptr<uint16_t>(y);
    const uint16_t* r1 = gray16.ptr<uint16_t>(y + 1);
    const uint16_t* r2 = gray16.ptr<uint16_t>(y + 2);
    for (int x = 0; x + 2 < gray16.cols; x += 2) {
      const int32_t v = r0[x] - 2 * r0[x + 1] + r0[x + 2] - 2 * (r1[x] - 2 * r1[x + 1] + r1[x + 2]) + r2[x] -
                        2 * r2[x + 1] + r2[x + 2];
      magnitudes.push_back(std::abs(v));
    }
  }
  if (magnitudes.empty()) return 0;
  auto mid = magnitudes.begin() + static_cast<std::ptrdiff_t>((magnitudes.size() - 1) / 2);
  std::nth_element(magnitudes.begin(), mid, magnitudes.end());
  return static_cast<double>(*mid) / 257.0 / (0.6745 * 6.0);
}

}  // namespace

double noise_level(const cv::Mat& gray8) {
  if (gray8.type() == CV_16UC1 && gray8.rows >= 3 && gray8.cols >= 3) return noise_level_16(gray8);
  if (gray8.type() != CV_8UC1 && gray8.type() != CV_16UC1)
    throw Error("noise level: needs an 8- or 16-bit single-channel image");
  if (gray8.rows < 3 || gray8.cols < 3) return 0;
  // |M*x| of 8-bit pixels is a whole number in 0..4080: the median comes from
  // a histogram, one pass and no sort.
  std::array<int64_t, 4081> histogram{};
  int64_t count = 0;
  for (int y = 0; y + 2 < gray8.rows; y += 2) {
    const uint8_t* r0 = gray8.ptr<uint8_t>(y);
    const uint8_t* r1 = gray8.ptr<uint8_t>(y + 1);
    const uint8_t* r2 = gray8.ptr<uint8_t>(y + 2);
    for (int x = 0; x + 2 < gray8.cols; x += 2) {
      const int v = r0[x] - 2 * r0[x + 1] + r0[x + 2] - 2 * (r1[x] - 2 * r1[x + 1] + r1[x + 2]) + r2[x] -
                    2 * r2[x + 1] + r2[x + 2];
      ++histogram[static_cast<size_t>(std::abs(v))];
      ++count;
    }
  }
  // The lower median, as torch's median() in the networks' version.
  const int64_t rank = (count - 1) / 2;
  int64_t seen = 0;
  for (size_t v = 0; v < histogram.size(); ++v) {
    seen += histogram[v];
    if (seen > rank) return static_cast<double>(v) / (0.6745 * 6.0);
  }
  return 0;
}

}  // namespace timfusion
