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

// noise_model = lowlight models the cameras of a rig at night instead:
// - visible: a colour camera at high gain. Per crop a noise level s uniform
//   in [0, max] grey levels (at mid-grey), split into shot noise (variance
//   proportional to the signal, a share uniform in [0.3, 1]) and read noise;
//   the result is quantised to whole grey levels, as the camera's 8-bit
//   output is. Dark regions get less noise than bright ones, but relatively
//   more: what a fixed Gaussian model misses.
// - IR: a microbolometer: Gaussian temporal noise uniform in [0, max_ir] and
//   fixed-pattern noise, a random offset per column (sigma up to max_ir / 2)
//   and a weaker one per row (up to max_ir / 4), also quantised.
// All draws are pure functions of (seed, step, stream).

// x: [B,1,H,W] in [0,1]. A pure function of (seed, step, stream), so a
// resumed run sees the same noise. max_sigma_grey <= 0 returns x.
torch::Tensor add_sensor_noise(const torch::Tensor& x, double max_sigma_grey, uint64_t seed, int64_t step, int stream);

// The low-light camera models above: visible (max_sigma_grey at mid-grey)
// and IR (max_sigma_grey of the temporal noise). <= 0 returns x.
torch::Tensor add_lowlight_visible_noise(const torch::Tensor& x, double max_sigma_grey, uint64_t seed, int64_t step,
                                         int stream);
torch::Tensor add_lowlight_ir_noise(const torch::Tensor& x, double max_sigma_grey, uint64_t seed, int64_t step,
                                    int stream);

}  // namespace timfusion::train
