#include "nn/stem_input_cpu.h"

#include <ATen/Parallel.h>

#include "timfusion/error.h"

namespace timfusion::nn {

bool stem_input_cpu_applies(const torch::Tensor& a, const torch::Tensor& b, int64_t downscale) {
  // Training keeps the LibTorch ops (and their NCHW layout): only under
  // InferenceMode / NoGradGuard.
  if (downscale < 1 || torch::GradMode::is_enabled()) return false;
  auto plane_ok = [&](const torch::Tensor& t) {
    return t.dim() == 4 && t.size(1) == 1 && t.is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous();
  };
  return plane_ok(a) && plane_ok(b) && a.sizes() == b.sizes() && a.size(2) % downscale == 0 &&
         a.size(3) % downscale == 0 && a.size(2) > 0 && a.size(3) > 0;
}

torch::Tensor stem_input_cpu(const torch::Tensor& a, const torch::Tensor& b, int64_t downscale,
                             const torch::Tensor& mean_a, const torch::Tensor& mean_b) {
  if (!stem_input_cpu_applies(a, b, downscale)) throw Error("internal: stem_input_cpu on inputs it does not take");
  const int64_t N = a.size(0), H = a.size(2), W = a.size(3), s = downscale, s2 = s * s;
  const int64_t Hg = H / s, Wg = W / s;
  const bool means = mean_a.defined() && mean_b.defined();
  const int64_t C = 2 * s2 + (means ? 2 : 0);
  auto x = torch::empty({N, C, Hg, Wg}, a.options().memory_format(at::MemoryFormat::ChannelsLast));
  float* dst = x.data_ptr<float>();
  const float* src[2] = {a.data_ptr<float>(), b.data_ptr<float>()};
  std::vector<float> mean_values;
  if (means) {
    auto ma = mean_a.to(torch::kFloat32).reshape({N}).contiguous(), mb = mean_b.to(torch::kFloat32).reshape({N}).contiguous();
    for (int64_t n = 0; n < N; ++n) mean_values.insert(mean_values.end(), {ma.data_ptr<float>()[n], mb.data_ptr<float>()[n]});
  }
  at::parallel_for(0, N * Hg, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / Hg, gy = r % Hg;
      float* row = dst + r * Wg * C;  // channels-last: pixel (n, gy, gx) is C consecutive values
      for (int k = 0; k < 2; ++k) {
        for (int64_t i = 0; i < s; ++i) {
          const float* in = src[k] + (n * H + gy * s + i) * W;
          for (int64_t gx = 0; gx < Wg; ++gx)
            for (int64_t j = 0; j < s; ++j) row[gx * C + k * s2 + i * s + j] = in[gx * s + j];
        }
      }
      if (means)
        for (int64_t gx = 0; gx < Wg; ++gx) {
          row[gx * C + 2 * s2] = mean_values[2 * n];
          row[gx * C + 2 * s2 + 1] = mean_values[2 * n + 1];
        }
    }
  });
  return x;
}

}  // namespace timfusion::nn
