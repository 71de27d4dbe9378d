#include "losses/fusion_losses.h"

#include <cmath>

#include "timfusion/error.h"

namespace F = torch::nn::functional;

namespace timfusion::train {

namespace {

IntensityTarget target_named(const std::string& key, const std::string& name) {
  if (name == "max") return IntensityTarget::Max;
  if (name == "salient") return IntensityTarget::Salient;
  throw Error(key + ": unknown target \"" + name + "\" (max or salient)");
}

}  // namespace

FusionLossWeights fusion_loss_weights(const Config& cfg) {
  FusionLossWeights w;
  w.intensity = cfg.loss.intensity;
  w.gradient = cfg.loss.gradient;
  w.ssim = cfg.loss.ssim;
  w.ssim_window = static_cast<int>(cfg.loss.ssim_window);
  w.gradient_gain = cfg.loss.gradient_gain;
  w.intensity_target = target_named("loss.intensity_target", cfg.loss.intensity_target);
  w.salient_window = static_cast<int>(cfg.loss.salient_window);
  w.salient_softness = cfg.loss.salient_softness / 255.0;
  w.contrast = cfg.loss.contrast;
  w.contrast_window = static_cast<int>(cfg.loss.contrast_window);
  // "intensity" (unset): L_con's reference is L_int's target.
  if (cfg.loss.contrast_target != "intensity")
    w.contrast_target = target_named("loss.contrast_target", cfg.loss.contrast_target);
  w.edge = cfg.loss.edge;
  return w;
}

ImageMeans image_means(const Batch& b) {
  ImageMeans m;
  if (b.ir_mean.size() != static_cast<size_t>(b.n) || b.vis_mean.size() != static_cast<size_t>(b.n)) return m;
  auto opts = torch::TensorOptions().dtype(torch::kFloat32);
  m.ir = torch::from_blob(const_cast<float*>(b.ir_mean.data()), {b.n, 1, 1, 1}, opts).clone();
  m.vis = torch::from_blob(const_cast<float*>(b.vis_mean.data()), {b.n, 1, 1, 1}, opts).clone();
  return m;
}

namespace {

// Box mean over k x k, reflect-padded so H x W is kept (any k >= 1).
torch::Tensor box_mean(const torch::Tensor& x, int k) {
  const int64_t lo = k / 2, hi = (k - 1) / 2;
  auto p = F::pad(x, F::PadFuncOptions({lo, hi, lo, hi}).mode(torch::kReflect));
  return F::avg_pool2d(p, F::AvgPool2dFuncOptions(k).stride(1));
}

}  // namespace

torch::Tensor intensity_target(const torch::Tensor& ir, const torch::Tensor& vis, const FusionLossWeights& w,
                               const ImageMeans& means) {
  return intensity_target(ir, vis, w.intensity_target, w, means);
}

torch::Tensor intensity_target(const torch::Tensor& ir, const torch::Tensor& vis, IntensityTarget kind,
                               const FusionLossWeights& w, const ImageMeans& means) {
  torch::NoGradGuard no_grad;
  if (kind == IntensityTarget::Max) return torch::max(ir, vis);
  auto ir_ref = means.ir.defined() ? means.ir.to(ir.device(), ir.scalar_type()) : ir.mean({2, 3}, true);
  auto vis_ref = means.vis.defined() ? means.vis.to(vis.device(), vis.scalar_type()) : vis.mean({2, 3}, true);
  // Reflect padding needs the window to fit inside the crop.
  const int k = static_cast<int>(std::min<int64_t>(w.salient_window, std::min(ir.size(2), ir.size(3))));
  auto ir_dev = (box_mean(ir, k) - ir_ref).abs(), vis_dev = (box_mean(vis, k) - vis_ref).abs();
  auto weight = box_mean(torch::sigmoid((ir_dev - vis_dev) / w.salient_softness), k);
  return weight * ir + (1 - weight) * vis;
}

torch::Tensor contrast_floor(const torch::Tensor& fused, const torch::Tensor& target, int window) {
  // The epsilon keeps sqrt's gradient finite on flat crops (padding, sky).
  const double eps = 1e-6;
  auto sd = [&](const torch::Tensor& x) {
    if (window <= 0) return (x.var({2, 3}, /*unbiased=*/false, /*keepdim=*/true) + eps).sqrt();
    const int k = static_cast<int>(std::min<int64_t>(window, std::min(x.size(2), x.size(3))));
    auto m = box_mean(x, k);
    return (box_mean(x * x, k) - m * m).clamp_min(0).add(eps).sqrt();
  };
  return torch::relu(sd(target) - sd(fused)).mean();
}

SobelGradients sobel_gradients(const torch::Tensor& x) {
  static const float kx[9] = {-1, 0, 1, -2, 0, 2, -1, 0, 1};
  static const float ky[9] = {-1, -2, -1, 0, 0, 0, 1, 2, 1};
  // The kernels on x's device and in its type (CUDA, mixed precision).
  auto wx = torch::from_blob(const_cast<float*>(kx), {1, 1, 3, 3}, torch::kFloat32).to(x.device(), x.scalar_type());
  auto wy = torch::from_blob(const_cast<float*>(ky), {1, 1, 3, 3}, torch::kFloat32).to(x.device(), x.scalar_type());
  auto p = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
  return {F::conv2d(p, wx), F::conv2d(p, wy)};
}

torch::Tensor sobel_magnitude(const torch::Tensor& x) {
  auto g = sobel_gradients(x);
  return g.x.abs() + g.y.abs();
}

torch::Tensor edge_preservation(const torch::Tensor& fused, const torch::Tensor& ir, const torch::Tensor& vis,
                                double gain) {
  SobelGradients gi, gv;
  torch::Tensor ir_wins;
  {
    torch::NoGradGuard no_grad;
    gi = sobel_gradients(ir), gv = sobel_gradients(vis);
    ir_wins = (gi.x.abs() + gi.y.abs()) > (gv.x.abs() + gv.y.abs());
  }
  auto gf = sobel_gradients(fused);
  auto tx = torch::where(ir_wins, gi.x, gv.x) * gain, ty = torch::where(ir_wins, gi.y, gv.y) * gain;
  return ((gf.x - tx).abs() + (gf.y - ty).abs()).mean();
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
                           const FusionLossWeights& w, const ImageMeans& means) {
  FusionLosses l;
  auto zero = torch::zeros({}, fused.options());
  auto target_intensity = intensity_target(ir, vis, w, means);
  l.intensity = (fused - target_intensity).abs().mean();
  if (w.contrast > 0) {
    const auto reference = !w.contrast_target || *w.contrast_target == w.intensity_target
                               ? target_intensity
                               : intensity_target(ir, vis, *w.contrast_target, w, means);
    l.contrast = contrast_floor(fused, reference, w.contrast_window);
  } else {
    l.contrast = zero;
  }
  if (w.gradient > 0) {
    auto target = torch::max(sobel_magnitude(ir), sobel_magnitude(vis));
    if (w.gradient_gain != 1.0) target = target * w.gradient_gain;
    l.gradient = (sobel_magnitude(fused) - target).abs().mean();
  } else {
    l.gradient = zero;
  }
  l.edge = w.edge > 0 ? edge_preservation(fused, ir, vis, w.gradient_gain) : zero;
  if (w.ssim > 0)
    l.ssim = 1 - (ssim(fused, ir, w.ssim_window) + ssim(fused, vis, w.ssim_window)) / 2;
  else
    l.ssim = zero;
  l.total = w.intensity * l.intensity + w.gradient * l.gradient + w.ssim * l.ssim + w.contrast * l.contrast +
            w.edge * l.edge;
  return l;
}

}  // namespace timfusion::train
