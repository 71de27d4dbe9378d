// timfusion: per-image sensor-noise estimate, the detail head's noise floor.
// Internal header: includes LibTorch.
//
// Why per frame: a camera's noise follows its gain, which rises at dusk; a
// fixed coring threshold (detail_coring) either lets night noise through as
// "detail" (and the gains then amplify it into flicker) or erases daytime
// texture. Immerkaer's estimator on the finest band: the 3x3 mask
//   M = [1 -2 1; -2 4 -2; 1 -2 1]
// is zero on constant, linear and (separably) quadratic patches, so on
// natural images it mostly sees noise; for white noise of std s, M*x has std
// 6 s. The median of |M*x| (0.6745 of the std for a Gaussian) instead of the
// mean keeps edges, which are a minority of positions, from counting.
// Evaluated 'valid' at every second row and column: a quarter of the work,
// still 77k samples at 640x480, plenty for a median.
#pragma once
#include <torch/torch.h>

namespace timfusion::nn {

// x: [B,1,H,W] in [0,1] units; returns [B,1,1,1] float32, the estimated
// noise standard deviation of each image in the same units. Images smaller
// than 3x3 get 0. No gradient flows through it.
torch::Tensor noise_sigma(const torch::Tensor& x);

// The CPU frame path takes the same estimate without LibTorch:
// noise_level_unit (timfusion/noise_level.h), one loop and a selection.

}  // namespace timfusion::nn
