// timfusion: the grid network's stem input built in one pass on CPU at
// inference (space-to-depth of both inputs and the image-mean planes, written
// channels-last).
// Internal header: includes LibTorch.
//
// Why: as LibTorch ops this is cat + pixel_unshuffle (NCHW) + cat of the mean
// planes, then the stem's reflection padding falls back to its NCHW kernel and
// the NHWC convolution reorders the padded input again: five passes over the
// frame, about 15 % of ivif-rt's frame time on one core (`timfusion-bench
// --profile 1`). Written channels-last here, the padding takes its
// channels-last path and the convolution reads it as it is. Same values in
// the same channel order as the LibTorch ops (a test holds them equal).
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace timfusion::nn {

// Whether stem_input_cpu applies: inference (autograd off), float32 [N,1,H,W]
// contiguous CPU inputs of the same shape, H and W multiples of downscale.
bool stem_input_cpu_applies(const torch::Tensor& a, const torch::Tensor& b, int64_t downscale);

// [N, 2 s² (+2), H/s, W/s] float32, channels-last: channel k*s² + i*s + j is
// input k (a, b) at (y*s + i, x*s + j), as pixel_unshuffle(cat({a, b}, 1), s)
// orders them; with means (both defined, [N,1,1,1] or [N]), two more constant
// planes: mean_a, mean_b.
torch::Tensor stem_input_cpu(const torch::Tensor& a, const torch::Tensor& b, int64_t downscale,
                             const torch::Tensor& mean_a, const torch::Tensor& mean_b);

}  // namespace timfusion::nn
