#include "timfusion/noise_level.h"

#include <array>
#include <cstdlib>

#include "timfusion/error.h"

namespace timfusion {

double noise_level(const cv::Mat& gray8) {
  if (gray8.type() != CV_8UC1) throw Error("noise level: needs an 8-bit single-channel image");
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
