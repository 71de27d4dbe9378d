// What meta and adapt share: one Adam step of the fusion losses on a batch of
// crops, and the evaluation of a network on held-out pairs.
#include <algorithm>

#include <opencv2/core.hpp>

#include "meta/meta.h"
#include "run/device.h"
#include "timfusion/torch/ops.h"
#include "timfusion/metrics.h"

namespace timfusion::train {

namespace {


cv::Mat to_u8(const torch::Tensor& t) {  // [1,1,H,W] -> CV_8UC1, round(clamp(y,0,1)*255)
  auto c = (t.detach().clamp(0, 1) * 255).round().to(torch::kUInt8).to(torch::kCPU).contiguous();
  cv::Mat m(static_cast<int>(c.size(2)), static_cast<int>(c.size(3)), CV_8UC1, c.data_ptr<uint8_t>());
  return m.clone();
}

cv::Mat as_u8(const cv::Mat& m) {
  if (m.depth() == CV_8U) return m;
  cv::Mat u;
  m.convertTo(u, CV_8U, 255.0);
  return u;
}


// The batch's whole-image means where the network is (undefined if the batch has none).
ImageMeans means_on(const Batch& b, const torch::Device& dev) {
  ImageMeans m = image_means(b);
  if (m.ir.defined()) m.ir = m.ir.to(dev), m.vis = m.vis.to(dev);
  return m;
}

}  // namespace

FusionLosses fusion_step(nn::TimNetImpl& net, Adam& opt, const Batch& b, const FusionLossWeights& w, double lr,
                         double grad_clip) {
  // The batch goes where the network is (run/device.h).
  const torch::Device dev = device_of(net);
  auto ir = planes_on(b.ir, b.n, b.h, b.w, dev), vis = planes_on(b.vis, b.n, b.h, b.w, dev);
  const ImageMeans m = means_on(b, dev);
  auto l = fusion_losses(net.forward(ir, vis, m.ir, m.vis), ir, vis, w, m);
  opt.zero_grad();
  l.total.backward();
  if (grad_clip > 0) clip_grad_norm(net, grad_clip);
  opt.step(lr);
  return l;
}

void recalibrate_bn(nn::TimNetImpl& net, const PairDataset& data, int batches, int batch, int crop, uint64_t seed) {
  std::vector<std::shared_ptr<nn::TimBatchNormImpl>> bns;
  for (const auto& m : net.modules(/*include_self=*/false))
    if (auto bn = std::dynamic_pointer_cast<nn::TimBatchNormImpl>(m)) bns.push_back(bn);
  if (bns.empty() || batches <= 0 || data.size() == 0) return;
  std::vector<double> momentum;
  torch::NoGradGuard ng;
  for (auto& bn : bns) {
    momentum.push_back(bn->momentum);
    bn->running_mean.zero_();
    bn->running_var.fill_(1.0);
  }
  const bool was_training = net.is_training();
  net.train();
  for (int k = 0; k < batches; ++k) {
    // momentum 1/(k+1): the running statistics become the plain average over the batches.
    for (auto& bn : bns) bn->momentum = 1.0 / static_cast<double>(k + 1);
    // Training-shaped batches (stream 7, apart from the training stream): the
    // network learnt with batch statistics of crops, not of whole images.
    Batch b = data.sample(seed, k, 7, batch, crop, false);
    const torch::Device dev = device_of(net);
    net.forward(planes_on(b.ir, b.n, b.h, b.w, dev), planes_on(b.vis, b.n, b.h, b.w, dev));
  }
  for (size_t i = 0; i < bns.size(); ++i) bns[i]->momentum = momentum[i];
  if (!was_training) net.eval();
}

EvalResult evaluate(nn::TimNetImpl& net, const PairDataset& data, const FusionLossWeights& w,
                    const std::vector<std::string>& metrics) {
  EvalResult r;
  const bool was_training = net.is_training();
  net.eval();
  torch::NoGradGuard ng;
  for (size_t i = 0; i < data.size(); ++i) {
    Batch b = data.center(i, 0);
    const torch::Device dev = device_of(net);
    auto ir = planes_on(b.ir, 1, b.h, b.w, dev), vis = planes_on(b.vis, 1, b.h, b.w, dev);
    const ImageMeans m = means_on(b, dev);
    auto fused = net.forward(ir, vis, m.ir, m.vis);
    auto l = fusion_losses(fused, ir, vis, w, m);
    r.loss += l.total.item<double>();
    r.intensity += l.intensity.item<double>();
    r.gradient += l.gradient.item<double>();
    r.ssim += l.ssim.item<double>();
    if (!metrics.empty()) {
      const Sample& s = data.at(i);
      cv::Mat f8 = to_u8(fused);
      for (const auto& m : metrics) r.metrics[m] += compute_metric(m, as_u8(s.ir), as_u8(s.vis_y), f8);
    }
    ++r.pairs;
  }
  if (was_training) net.train();
  const double n = std::max<double>(1.0, static_cast<double>(r.pairs));
  r.loss /= n, r.intensity /= n, r.gradient /= n, r.ssim /= n;
  for (auto& [k, v] : r.metrics) v /= n;
  return r;
}

}  // namespace timfusion::train
