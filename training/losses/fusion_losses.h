// timfusion-train: unsupervised fusion losses (no reference fused image).
// Internal header: includes LibTorch. All images are [B,1,H,W] in [0,1];
// F is the fused image, I the infrared, V the visible luma.
//
//   L_int  = mean | F - T |                                          (L1)
//            T = max(I, V) per pixel (loss.intensity_target = max), or
//            T = w I + (1 - w) V   (salient): with box means B_k over the
//            window k, s_x = |B_k(x) - mean of x's whole image|, and
//            w = B_k(sigmoid((s_I - s_V) / softness)): each region follows
//            the source that deviates more from its own image's mean. max()
//            lifts every dark visible region to the IR's level and flattens
//            contrast (TNO42: SD 38.6 for max(I, V) against 41.7 / 45.0 for
//            the inputs); the salient target keeps the dark visible regions
//            and the bright IR targets both.
//   L_grad = mean | |∇F| - k max(|∇I|, |∇V|) |,  |∇x| = |Sx * x| + |Sy * x|
//            (k = loss.gradient_gain, default 1: the stronger source edge)
//            (Sobel kernels Sx, Sy; replicate padding, so H x W is kept)
//   L_ssim = 1 - (SSIM(F, I) + SSIM(F, V)) / 2
//            SSIM over an 11x11 Gaussian window (sigma 1.5), valid region,
//            C1 = 0.01², C2 = 0.03² (dynamic range 1), averaged over pixels
//   L_con  = mean over crops of max(0, sd(T) - sd(F))  (loss.contrast > 0)
//            sd = standard deviation over the whole crop, or over k x k box
//            windows (k = loss.contrast_window > 0, then averaged): a floor on
//            the fused image's contrast at the intensity target's. L1 to T
//            alone does not pin it: runs of one recipe that differed only in
//            batch order ended at global SD 43 and 52 on one test set whose
//            salient target has SD 53 (docs/quality.md, "Contrast floor").
//            One-sided: contrast above T's (the texture gain) is not punished.
//            loss.contrast_target = salient: T is the salient target even when
//            L_int's is max(I, V) (copy a source's intensities, keep contrast).
//   L_edge = mean |Sx*F - k Sx*W| + |Sy*F - k Sy*W|            (loss.edge > 0)
//            W = per pixel, the source whose Sobel magnitude is larger: the
//            stronger source edge as a signed vector, so its polarity and
//            orientation are kept, not only its strength (L_grad is satisfied
//            by an edge of the wrong sign, or by a halo beside a real edge of
//            the right size). Qabf scores exactly this: strength and
//            orientation of each source edge in F.
//   L      = w_int L_int + w_grad L_grad + w_ssim L_ssim + w_con L_con + w_edge L_edge
#pragma once
#include <torch/torch.h>

#include <optional>

#include "data/pair_dataset.h"
#include "run/config.h"

namespace timfusion::train {

enum class IntensityTarget { Max, Salient };

struct FusionLossWeights {
  double intensity = 1.0, gradient = 10.0, ssim = 1.0;
  int ssim_window = 11;
  double gradient_gain = 1.0;
  IntensityTarget intensity_target = IntensityTarget::Max;
  int salient_window = 15;
  double salient_softness = 8.0 / 255.0;  // in [0,1] units
  double contrast = 0.0;                   // weight of L_con (0 = off)
  int contrast_window = 0;                 // 0 = the whole crop
  std::optional<IntensityTarget> contrast_target;  // L_con's reference T; unset: L_int's target
  double edge = 0.0;                       // weight of L_edge (0 = off)
};

// Each crop's whole-image means, [B,1,1,1] (the salient target's reference).
// Undefined tensors: the crops' own means are used instead.
struct ImageMeans {
  torch::Tensor ir, vis;
};
ImageMeans image_means(const Batch& b);

// The weights of the loss.* keys.
FusionLossWeights fusion_loss_weights(const Config& cfg);

struct FusionLosses {
  torch::Tensor total, intensity, gradient, ssim, contrast, edge;  // scalars
};

FusionLosses fusion_losses(const torch::Tensor& fused, const torch::Tensor& ir, const torch::Tensor& vis,
                           const FusionLossWeights& w, const ImageMeans& means = {});

// The intensity term's target T (no gradient flows through it).
torch::Tensor intensity_target(const torch::Tensor& ir, const torch::Tensor& vis, const FusionLossWeights& w,
                               const ImageMeans& means = {});
// The target of the given kind, with w's salient window and softness.
torch::Tensor intensity_target(const torch::Tensor& ir, const torch::Tensor& vis, IntensityTarget kind,
                               const FusionLossWeights& w, const ImageMeans& means = {});

// L_con of F against the intensity target T (see the top of this file).
torch::Tensor contrast_floor(const torch::Tensor& fused, const torch::Tensor& target, int window);

// Sx * x and Sy * x (signed), replicate-padded: same size as x.
struct SobelGradients {
  torch::Tensor x, y;
};
SobelGradients sobel_gradients(const torch::Tensor& x);
// L_edge (see the top of this file); gain = loss.gradient_gain.
torch::Tensor edge_preservation(const torch::Tensor& fused, const torch::Tensor& ir, const torch::Tensor& vis,
                                double gain);
// |Sx * x| + |Sy * x| per pixel, same size as x.
torch::Tensor sobel_magnitude(const torch::Tensor& x);
// Mean SSIM of two [B,1,H,W] images (H, W >= window).
torch::Tensor ssim(const torch::Tensor& a, const torch::Tensor& b, int window = 11);

}  // namespace timfusion::train
