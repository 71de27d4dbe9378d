#include "task/seg_net.h"

#include <cmath>

namespace F = torch::nn::functional;

namespace timfusion::train {

namespace {

torch::nn::Sequential block(int64_t in, int64_t out) {
  auto conv = [](int64_t i, int64_t o) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(i, o, 3).padding(1).bias(false));
  };
  return torch::nn::Sequential(conv(in, out), torch::nn::BatchNorm2d(out), torch::nn::ReLU(),
                               conv(out, out), torch::nn::BatchNorm2d(out), torch::nn::ReLU());
}

torch::Tensor up_to(const torch::Tensor& x, const torch::Tensor& like) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{like.size(2), like.size(3)})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

}  // namespace

SegNetImpl::SegNetImpl(int64_t in_channels, int64_t width, int64_t classes) {
  enc1 = register_module("enc1", block(in_channels, width));
  enc2 = register_module("enc2", block(width, 2 * width));
  enc3 = register_module("enc3", block(2 * width, 4 * width));
  dec2 = register_module("dec2", block(6 * width, 2 * width));
  dec1 = register_module("dec1", block(3 * width, width));
  head = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(width, classes, 1)));
}

torch::Tensor SegNetImpl::forward(const torch::Tensor& x) {
  auto e1 = enc1->forward(x);
  auto e2 = enc2->forward(F::max_pool2d(e1, F::MaxPool2dFuncOptions(2).ceil_mode(true)));
  auto e3 = enc3->forward(F::max_pool2d(e2, F::MaxPool2dFuncOptions(2).ceil_mode(true)));
  auto d2 = dec2->forward(torch::cat({up_to(e3, e2), e2}, 1));
  auto d1 = dec1->forward(torch::cat({up_to(d2, e1), e1}, 1));
  return head->forward(d1);
}

torch::Tensor task_loss(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& weight) {
  if (!weight.defined()) return F::cross_entropy(logits, labels);
  return F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().weight(weight));
}

torch::Tensor balanced_class_weights(const std::vector<int64_t>& counts) {
  const int64_t n = static_cast<int64_t>(counts.size());
  auto w = torch::ones({n}, torch::kFloat32);
  double total = 0, sum = 0;
  int present = 0;
  for (auto c : counts) total += static_cast<double>(c);
  if (total <= 0) return w;
  for (int64_t i = 0; i < n; ++i)
    if (counts[i] > 0) {
      double v = 1.0 / std::sqrt(static_cast<double>(counts[i]) / total);
      w[i] = v;
      sum += v, ++present;
    }
  for (int64_t i = 0; i < n; ++i)
    if (counts[i] > 0) w[i] = w[i].item<float>() * static_cast<float>(present / sum);
  return w;
}

void Confusion::add(const torch::Tensor& logits, const torch::Tensor& labels) {
  auto pred = logits.argmax(1).reshape({-1}).to(torch::kCPU);
  auto gt = labels.reshape({-1}).to(torch::kCPU);
  auto idx = gt * n + pred;
  auto bins = torch::bincount(idx, {}, static_cast<int64_t>(n) * n).to(torch::kInt64).contiguous();
  const int64_t* b = bins.data_ptr<int64_t>();
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += b[i];
}

double Confusion::miou(std::vector<double>* per_class) const {
  double sum = 0;
  int present = 0;
  if (per_class) per_class->assign(n, NAN);
  for (int c = 0; c < n; ++c) {
    int64_t tp = counts[c * n + c], gt = 0, pr = 0;
    for (int k = 0; k < n; ++k) gt += counts[c * n + k], pr += counts[k * n + c];
    if (gt == 0) continue;
    double iou = static_cast<double>(tp) / static_cast<double>(gt + pr - tp);
    if (per_class) (*per_class)[c] = iou;
    sum += iou;
    ++present;
  }
  return present ? sum / present : NAN;
}

double Confusion::pixel_accuracy() const {
  int64_t tp = 0, all = 0;
  for (int c = 0; c < n; ++c) tp += counts[c * n + c];
  for (auto v : counts) all += v;
  return all ? static_cast<double>(tp) / all : NAN;
}

}  // namespace timfusion::train
