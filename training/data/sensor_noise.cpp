#include "data/sensor_noise.h"

#include <ATen/CPUGeneratorImpl.h>

namespace timfusion::train {

torch::Tensor add_sensor_noise(const torch::Tensor& x, double max_sigma_grey, uint64_t seed, int64_t step, int stream) {
  if (max_sigma_grey <= 0) return x;
  // splitmix-style mixing of (seed, step, stream): independent streams per step.
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step) * 0xBF58476D1CE4E5B9ull +
               static_cast<uint64_t>(stream + 1) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  auto gen = at::detail::createCPUGenerator(z);
  auto sigma = torch::rand({x.size(0), 1, 1, 1}, gen, x.options()) * (max_sigma_grey / 255.0);
  return (x + sigma * torch::randn(x.sizes(), gen, x.options())).clamp(0, 1);
}

}  // namespace timfusion::train
