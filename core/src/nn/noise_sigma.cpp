#include "nn/noise_sigma.h"

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

}  // namespace timfusion::nn
