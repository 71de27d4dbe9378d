#include "data/sensor_noise.h"

#include <ATen/CPUGeneratorImpl.h>

namespace timfusion::train {

namespace {

// splitmix-style mixing of (seed, step, stream): independent streams per step.
at::Generator generator_for(uint64_t seed, int64_t step, int stream) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step) * 0xBF58476D1CE4E5B9ull +
               static_cast<uint64_t>(stream + 1) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return at::detail::createCPUGenerator(z);
}

// What an 8-bit camera delivers: whole grey levels in [0, 255].
torch::Tensor quantised(const torch::Tensor& x) { return x.mul(255).round_().clamp_(0, 255).div_(255); }

}  // namespace

torch::Tensor add_lowlight_visible_noise(const torch::Tensor& x, double max_sigma_grey, uint64_t seed, int64_t step,
                                         int stream) {
  if (max_sigma_grey <= 0) return x;
  auto gen = generator_for(seed, step, stream);
  const int64_t B = x.size(0);
  auto level = torch::rand({B, 1, 1, 1}, gen, x.options()) * (max_sigma_grey / 255.0);
  auto shot_share = 0.3 + 0.7 * torch::rand({B, 1, 1, 1}, gen, x.options());
  // variance(x) = shot * x + read, equal to level^2 at x = 0.5.
  auto shot = shot_share * level.square() / 0.5, read = (1 - shot_share) * level.square();
  auto sigma = (shot * x.clamp_min(0) + read).sqrt_();
  return quantised(x + sigma * torch::randn(x.sizes(), gen, x.options()));
}

torch::Tensor add_lowlight_ir_noise(const torch::Tensor& x, double max_sigma_grey, uint64_t seed, int64_t step,
                                    int stream) {
  if (max_sigma_grey <= 0) return x;
  auto gen = generator_for(seed, step, stream);
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  const double max_unit = max_sigma_grey / 255.0;
  auto temporal = torch::rand({B, 1, 1, 1}, gen, x.options()) * max_unit;
  auto columns = torch::rand({B, 1, 1, 1}, gen, x.options()) * (max_unit / 2);
  auto rows = torch::rand({B, 1, 1, 1}, gen, x.options()) * (max_unit / 4);
  auto noisy = x + temporal * torch::randn(x.sizes(), gen, x.options()) +
               columns * torch::randn({B, 1, 1, W}, gen, x.options()) + rows * torch::randn({B, 1, H, 1}, gen, x.options());
  return quantised(noisy);
}

torch::Tensor add_sensor_noise(const torch::Tensor& x, double max_sigma_grey, uint64_t seed, int64_t step, int stream) {
  if (max_sigma_grey <= 0) return x;
  auto gen = generator_for(seed, step, stream);
  auto sigma = torch::rand({x.size(0), 1, 1, 1}, gen, x.options()) * (max_sigma_grey / 255.0);
  return (x + sigma * torch::randn(x.sizes(), gen, x.options())).clamp(0, 1);
}

}  // namespace timfusion::train
