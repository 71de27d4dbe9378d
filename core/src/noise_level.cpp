#include "timfusion/noise_level.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cmath>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include "timfusion/error.h"

namespace timfusion {

namespace {

constexpr double kMadToSigma = 0.6745 * 6.0;  // median |M*x| of white noise of sigma s: 0.6745 * 6 s

// Calls visit(|M*x|) at every second row and column ('valid'): whole
// numbers for 8- and 16-bit images, float for float ones (summed row by row,
// the order the float result is defined by).
template <class Pixel, class Visit>
void for_each_response(const cv::Mat& image, Visit&& visit) {
  using Value = std::conditional_t<std::is_floating_point_v<Pixel>, float, int32_t>;
  for (int y = 0; y + 2 < image.rows; y += 2) {
    const Pixel* r0 = image.ptr<Pixel>(y);
    const Pixel* r1 = image.ptr<Pixel>(y + 1);
    const Pixel* r2 = image.ptr<Pixel>(y + 2);
    for (int x = 0; x + 2 < image.cols; x += 2) {
      const Value v = (Value(r0[x]) - 2 * Value(r0[x + 1]) + Value(r0[x + 2])) -
                      2 * (Value(r1[x]) - 2 * Value(r1[x + 1]) + Value(r1[x + 2])) +
                      (Value(r2[x]) - 2 * Value(r2[x + 1]) + Value(r2[x + 2]));
      visit(std::abs(v));
    }
  }
}

// 8 bit: |M*x| is a whole number in 0..4080, so the median comes from a
// histogram, one pass and no sort. The lower median, as torch's median() in
// the networks' version.
double noise_level_8(const cv::Mat& gray8) {
  std::array<int64_t, 4081> histogram{};
  int64_t count = 0;
  for_each_response<uint8_t>(gray8, [&](int32_t m) {
    ++histogram[static_cast<size_t>(m)];
    ++count;
  });
  const int64_t rank = (count - 1) / 2;
  int64_t seen = 0;
  for (size_t v = 0; v < histogram.size(); ++v) {
    seen += histogram[v];
    if (seen > rank) return static_cast<double>(v) / kMadToSigma;
  }
  return 0;
}

// 16 bit (thermal cameras): the magnitudes do not fit a small histogram,
// nth_element instead; in grey levels of 255 (value / 257, the scale 16-bit
// IR is read with).
double noise_level_16(const cv::Mat& gray16) {
  std::vector<int32_t> magnitudes;
  magnitudes.reserve(static_cast<size_t>((gray16.rows / 2) * (gray16.cols / 2)));
  for_each_response<uint16_t>(gray16, [&](int32_t m) { magnitudes.push_back(m); });
  if (magnitudes.empty()) return 0;
  auto mid = magnitudes.begin() + static_cast<std::ptrdiff_t>((magnitudes.size() - 1) / 2);
  std::nth_element(magnitudes.begin(), mid, magnitudes.end());
  return static_cast<double>(*mid) / 257.0 / kMadToSigma;
}

// float (the networks' inputs, 0..1): nth_element over magnitudes kept per
// thread, so a frame path allocates nothing after its first frame.
double noise_level_float(const cv::Mat& gray32f) {
  thread_local std::vector<float> magnitudes;
  magnitudes.clear();
  for_each_response<float>(gray32f, [&](float m) { magnitudes.push_back(m); });
  if (magnitudes.empty()) return 0;
  auto mid = magnitudes.begin() + static_cast<std::ptrdiff_t>((magnitudes.size() - 1) / 2);
  std::nth_element(magnitudes.begin(), mid, magnitudes.end());
  return static_cast<double>(static_cast<float>(*mid / kMadToSigma));
}

}  // namespace

double noise_level_unit(const cv::Mat& gray32f) {
  if (gray32f.type() != CV_32FC1) throw Error("noise level: needs a float single-channel image");
  if (gray32f.rows < 3 || gray32f.cols < 3) return 0;
  return noise_level_float(gray32f);
}

double noise_level(const cv::Mat& gray) {
  if (gray.type() != CV_8UC1 && gray.type() != CV_16UC1)
    throw Error("noise level: needs an 8- or 16-bit single-channel image");
  if (gray.rows < 3 || gray.cols < 3) return 0;
  return gray.type() == CV_8UC1 ? noise_level_8(gray) : noise_level_16(gray);
}

}  // namespace timfusion
