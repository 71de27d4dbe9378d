// timfusion-train: sensor-noise augmentation.
// Internal header: includes LibTorch.
//
// Live thermal and colour cameras deliver a new noise pattern every frame. A
// fusion network trained only on clean pairs learns to keep every fine
// gradient, noise included, and then makes video flicker (scripts/flicker_table.py).
// With `noise` > 0 each crop of a training batch gets Gaussian noise of a
// standard deviation drawn uniformly from [0, noise] grey levels (IR and visible
// independently, clamped to [0, 1]); the losses still compare with the clean
// crops, so passing the noise on costs loss.
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace timfusion::train {

// x: [B,1,H,W] in [0,1]. A pure function of (seed, step, stream), so a
// resumed run sees the same noise. max_sigma_grey <= 0 returns x.
torch::Tensor add_sensor_noise(const torch::Tensor& x, double max_sigma_grey, uint64_t seed, int64_t step, int stream);

}  // namespace timfusion::train
