// timfusion-train: the task network of task-guided training: a small U-Net
// that segments a one-channel image (the fused image, or for the baseline
// the visible luma) into class ids. Internal header: includes LibTorch.
#pragma once
#include <vector>

#include <torch/torch.h>

namespace timfusion::train {

// enc(w) -> pool -> enc(2w) -> pool -> enc(4w) -> up + skip -> dec(2w)
// -> up + skip -> dec(w) -> 1x1 conv to `classes` logits. Each enc/dec is
// two conv3x3 + BN + ReLU. Any H x W (upsampling targets the skip's size).
class SegNetImpl : public torch::nn::Module {
 public:
  SegNetImpl(int64_t in_channels, int64_t width, int64_t classes);
  torch::Tensor forward(const torch::Tensor& x);  // [B,classes,H,W] logits

 private:
  torch::nn::Sequential enc1{nullptr}, enc2{nullptr}, enc3{nullptr}, dec2{nullptr}, dec1{nullptr};
  torch::nn::Conv2d head{nullptr};
};
TORCH_MODULE(SegNet);

// Pixel-wise cross-entropy of logits [B,C,H,W] against int64 ids [B,H,W],
// optionally with per-class weights [C] (weighted mean, as PyTorch's).
torch::Tensor task_loss(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& weight = {});
// 1/sqrt(frequency) per class present in `counts`, scaled to mean 1 over
// the present classes; absent classes get 1.
torch::Tensor balanced_class_weights(const std::vector<int64_t>& counts);

// Confusion counts, rows = ground truth, columns = prediction.
struct Confusion {
  explicit Confusion(int classes) : n(classes), counts(static_cast<size_t>(classes) * classes, 0) {}
  void add(const torch::Tensor& logits, const torch::Tensor& labels);
  // Mean IoU over the classes present in the ground truth; per-class IoU
  // (NaN for absent classes) in `per_class` when given.
  double miou(std::vector<double>* per_class = nullptr) const;
  double pixel_accuracy() const;
  int n;
  std::vector<int64_t> counts;
};

}  // namespace timfusion::train
