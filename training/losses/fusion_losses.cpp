#include "losses/fusion_losses.h"

#include <cmath>

namespace F = torch::nn::functional;

namespace timfusion::train {

FusionLossWeights fusion_loss_weights(const Config& cfg) {
  FusionLossWeights w;
  w.intensity = cfg.d("loss.intensity");
  w.gradient = cfg.d("loss.gradient");
  w.ssim = cfg.d("loss.ssim");
  w.ssim_window = static_cast<int>(cfg.i("loss.ssim_window"));
  w.gradient_gain = cfg.d("loss.gradient_gain");
  return w;
}

torch::Tensor sobel_magnitude(const torch::Tensor& x) {
  auto opts = x.options().requires_grad(false);
  static const float kx[9] = {-1, 0, 1, -2, 0, 2, -1, 0, 1};
  static const float ky[9] = {-1, -2, -1, 0, 0, 0, 1, 2, 1};
  // The kernels on x's device and in its type (CUDA, mixed precision).
  auto wx = torch::from_blob(const_cast<float*>(kx), {1, 1, 3, 3}, torch::kFloat32).to(x.device(), x.scalar_type());
  auto wy = torch::from_blob(const_cast<float*>(ky), {1, 1, 3, 3}, torch::kFloat32).to(x.device(), x.scalar_type());
  auto p = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
  return F::conv2d(p, wx).abs() + F::conv2d(p, wy).abs();
}

torch::Tensor ssim(const torch::Tensor& a, const torch::Tensor& b, int window) {
  const double sigma = 1.5;
  auto r = torch::arange(window, a.options().requires_grad(false)) - (window - 1) / 2.0;
  auto g = torch::exp(-(r * r) / (2 * sigma * sigma));
  g = g / g.sum();
  auto w = (g.unsqueeze(1) * g.unsqueeze(0)).view({1, 1, window, window});
  auto blur = [&](const torch::Tensor& t) { return F::conv2d(t, w); };
  const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;
  auto mu_a = blur(a), mu_b = blur(b);
  auto mu_aa = mu_a * mu_a, mu_bb = mu_b * mu_b, mu_ab = mu_a * mu_b;
  auto s_aa = blur(a * a) - mu_aa, s_bb = blur(b * b) - mu_bb, s_ab = blur(a * b) - mu_ab;
  auto map = ((2 * mu_ab + C1) * (2 * s_ab + C2)) / ((mu_aa + mu_bb + C1) * (s_aa + s_bb + C2));
  return map.mean();
}

FusionLosses fusion_losses(const torch::Tensor& fused, const torch::Tensor& ir, const torch::Tensor& vis,
                           const FusionLossWeights& w) {
  FusionLosses l;
  auto zero = torch::zeros({}, fused.options());
  l.intensity = (fused - torch::max(ir, vis)).abs().mean();
  if (w.gradient > 0) {
    auto target = torch::max(sobel_magnitude(ir), sobel_magnitude(vis));
    if (w.gradient_gain != 1.0) target = target * w.gradient_gain;
    l.gradient = (sobel_magnitude(fused) - target).abs().mean();
  } else {
    l.gradient = zero;
  }
  if (w.ssim > 0)
    l.ssim = 1 - (ssim(fused, ir, w.ssim_window) + ssim(fused, vis, w.ssim_window)) / 2;
  else
    l.ssim = zero;
  l.total = w.intensity * l.intensity + w.gradient * l.gradient + w.ssim * l.ssim;
  return l;
}

}  // namespace timfusion::train
