// timfusion: the detail head's inference kernel on CPU, one pass from the
// network's grid output to the fused 8-bit luma.
// Internal header: includes LibTorch.
//
// Why: at 640x480 the head runs at full resolution, and as LibTorch ops it is
// ~25 separate passes over the frame (pixel shuffle, padding, four cumsums,
// three strided sigmoids, subtractions, addcmuls, then clamp, scale, round and
// the copy to 8 bit): measured by `timfusion-bench --profile 1` at ~40 % of
// the default model's frame time on one core. Here the grid is read in the
// layout the last convolution left it (no NHWC->NCHW copy), the sigmoids run
// as one vectorised LibTorch call over the dense grid, and everything else is
// one row-parallel pass whose inner loops vectorise.
// Training keeps the autograd version (networks.cpp apply_head); a test holds
// the two to the same output.
#pragma once
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <vector>

namespace timfusion::nn {

// The head's per-frame settings besides the grid (arch.h's detail head).
struct DetailKernelOptions {
  std::array<double, 2> coring{0, 0};  // soft threshold of the first and second input's detail, [0,1] units
  bool select = false;                 // max-abs detail instead of the sum
  bool residual = true;                // add the residual r
  const float* prior = nullptr;        // H*W salient prior of the first input (salient_prior), or none
};

// The salient prior's weight of the first input (networks.h salient_prior)
// into prior (H*W floats), from the two planes and their whole-image means,
// softness in [0,1] units: the same function in row-parallel passes on
// LibTorch's threads (box sums in another order than the autograd version's
// running sums). Needs H, W >= 8.
void salient_prior_cpu(const float* first, const float* second, int64_t height, int64_t width, float mean_first,
                       float mean_second, double softness, float* prior);

// raw_grid: the last conv's output before the pixel shuffle, [1, 4 s², H/s,
// W/s] float32 on CPU, any memory format (channel groups z, r, g1, g2 as in
// arch.h's detail head). first/second: [H, W] float planes (the head's first
// and second inputs, i.e. ArchSpec::inputs order). Writes round(clamp(F, 0, 1) * 255) to out (H*W bytes, row-major).
// `scratch` is grown to 2*H*W floats once and reused. Needs H, W >= 3 and
// multiples of s.
void detail_head_to_u8(const torch::Tensor& raw_grid, int64_t downscale, const float* first, const float* second,
                       int64_t height, int64_t width, const DetailKernelOptions& options, uint8_t* out,
                       std::vector<float>& scratch);

}  // namespace timfusion::nn
