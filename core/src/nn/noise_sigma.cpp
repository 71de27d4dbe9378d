#include "nn/noise_sigma.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace timfusion::nn {

namespace F = torch::nn::functional;

torch::Tensor noise_sigma(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const int64_t B = x.size(0);
  auto opts = x.options().dtype(torch::kFloat32);
  if (x.size(2) < 3 || x.size(3) < 3) return torch::zeros({B, 1, 1, 1}, opts);
  static const float mask[9] = {1, -2, 1, -2, 4, -2, 1, -2, 1};
  auto kernel = torch::from_blob(const_cast<float*>(mask), {1, 1, 3, 3}, torch::kFloat32).to(opts.device());
  auto response = F::conv2d(x.to(torch::kFloat32).contiguous(), kernel, F::Conv2dFuncOptions().stride(2));
  // median over each image (lower median for an even count, as torch does).
  auto median = std::get<0>(response.abs_().reshape({B, -1}).median(/*dim=*/1));
  return median.div_(0.6745 * 6.0).reshape({B, 1, 1, 1});
}

float noise_sigma_cpu(const float* x, int64_t H, int64_t W) {
  if (H < 3 || W < 3) return 0.0f;
  const int64_t rows = (H - 3) / 2 + 1, cols = (W - 3) / 2 + 1;
  thread_local std::vector<float> magnitudes;  // kept between frames: no allocation per frame
  magnitudes.resize(static_cast<size_t>(rows * cols));
  float* m = magnitudes.data();
  for (int64_t i = 0; i < rows; ++i) {
    const float* r0 = x + 2 * i * W;
    const float *r1 = r0 + W, *r2 = r1 + W;
    for (int64_t j = 0, c = 0; j < cols; ++j, c += 2) {
      const float v = (r0[c] - 2 * r0[c + 1] + r0[c + 2]) - 2 * (r1[c] - 2 * r1[c + 1] + r1[c + 2]) +
                      (r2[c] - 2 * r2[c + 1] + r2[c + 2]);
      *m++ = std::fabs(v);
    }
  }
  // The lower median, as torch's median takes it for an even count.
  auto mid = magnitudes.begin() + static_cast<std::ptrdiff_t>((magnitudes.size() - 1) / 2);
  std::nth_element(magnitudes.begin(), mid, magnitudes.end());
  return static_cast<float>(*mid / (0.6745 * 6.0));
}

}  // namespace timfusion::nn
