// timfusion-train: unsupervised fusion losses (no reference fused image).
// Internal header: includes LibTorch. All images are [B,1,H,W] in [0,1];
// F is the fused image, I the infrared, V the visible luma.
//
//   L_int  = mean | F - max(I, V) |                                  (L1)
//   L_grad = mean | |∇F| - k max(|∇I|, |∇V|) |,  |∇x| = |Sx * x| + |Sy * x|
//            (k = loss.gradient_gain, default 1: the stronger source edge)
//            (Sobel kernels Sx, Sy; replicate padding, so H x W is kept)
//   L_ssim = 1 - (SSIM(F, I) + SSIM(F, V)) / 2
//            SSIM over an 11x11 Gaussian window (sigma 1.5), valid region,
//            C1 = 0.01², C2 = 0.03² (dynamic range 1), averaged over pixels
//   L      = w_int L_int + w_grad L_grad + w_ssim L_ssim
#pragma once
#include <torch/torch.h>

#include "run/config.h"

namespace timfusion::train {

struct FusionLossWeights {
  double intensity = 1.0, gradient = 10.0, ssim = 1.0;
  int ssim_window = 11;
  double gradient_gain = 1.0;
};

// The weights of the loss.* keys.
FusionLossWeights fusion_loss_weights(const Config& cfg);

struct FusionLosses {
  torch::Tensor total, intensity, gradient, ssim;  // scalars
};

FusionLosses fusion_losses(const torch::Tensor& fused, const torch::Tensor& ir, const torch::Tensor& vis,
                           const FusionLossWeights& w);

// |Sx * x| + |Sy * x| per pixel, same size as x.
torch::Tensor sobel_magnitude(const torch::Tensor& x);
// Mean SSIM of two [B,1,H,W] images (H, W >= window).
torch::Tensor ssim(const torch::Tensor& a, const torch::Tensor& b, int window = 11);

}  // namespace timfusion::train
