// timfusion: the TIM operator set as LibTorch modules.
//
// Module and parameter names follow the reference implementation
// (LiuZhu-CV/TIMFusion model/operations.py) exactly, so that its state
// dicts load one to one. Training-facing API (includes LibTorch): see README.md in this folder.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include <torch/torch.h>

namespace timfusion::nn {

// BatchNorm2d with the reference's parameter/buffer names, plus a mode the
// reference relies on at test time for one model: normalising with each
// batch's own statistics while in eval mode (without touching running stats).
class TimBatchNormImpl : public torch::nn::Module {
 public:
  explicit TimBatchNormImpl(int64_t channels, double momentum = 0.1, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);

  // y = x * scale + shift, valid in eval mode with running statistics.
  std::pair<torch::Tensor, torch::Tensor> affine() const;

  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  double momentum, eps;
  bool batch_stats = false;
};
TORCH_MODULE(TimBatchNorm);

// Data-parallel training (several processes, each on its share of a global
// batch): with a reducer set, TimBatchNorm in training mode normalises with
// the statistics of the global batch (as PyTorch's SyncBatchNorm), so N
// processes compute what one process with the whole batch would. `sum`
// returns its argument summed over all processes, differentiably (its
// backward sums the gradients the same way). Empty: per-process statistics.
// Process-wide; set by timfusion-train's run/distributed.cpp.
using CrossProcessSum = std::function<torch::Tensor(const torch::Tensor&)>;
void set_batch_norm_cross_process_sum(CrossProcessSum sum);

// A bias-free conv followed by a BN: the BN folds into the conv for
// inference (exact up to float rounding), saving a full pass over memory.
struct ConvBN {
  torch::nn::Conv2d conv{nullptr};
  TimBatchNorm bn{nullptr};
  torch::Tensor w, b;  // folded; undefined when not folded

  torch::Tensor operator()(const torch::Tensor& x);
  void fold();
};

// Conv2d options as the reference's BasicConv (zero "same" padding).
torch::nn::Conv2dOptions conv_opts(int64_t in, int64_t out, int64_t k, int64_t dilation = 1, int64_t groups = 1,
                                   bool bias = false);

// ReflectionPad2d + Conv2d with bias: the reference's ConvLayer.
class ConvLayerImpl : public torch::nn::Module {
 public:
  ConvLayerImpl(int64_t in, int64_t out, int64_t k, int64_t dilation = 1);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv2d{nullptr};
  int64_t pad;
};
TORCH_MODULE(ConvLayer);

// BasicConv: a module with one child named "conv" (no BN, no activation as used).
class BasicConvImpl : public torch::nn::Module {
 public:
  BasicConvImpl(int64_t in, int64_t out, int64_t k, int64_t dilation = 1, int64_t groups = 1);
  torch::Tensor forward(const torch::Tensor& x) { return conv(x); }
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(BasicConv);

// Every searchable operation: C channels in, C out, same H x W.
class OpBase : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  virtual void fold_bn() {}
};

// ReLU -> Conv(k, no bias) -> BN. Keys op.1.weight, op.2.*.
class ReLUConvBNImpl : public OpBase {
 public:
  ReLUConvBNImpl(int64_t c_in, int64_t c_out, int64_t k);
  torch::Tensor forward(const torch::Tensor& x) override;
  void fold_bn() override { cb.fold(); }
  ConvBN cb;
};
TORCH_MODULE(ReLUConvBN);

// Builds the op named as in the reference ("Residualblocks_3_1", ...).
std::shared_ptr<OpBase> make_op(const std::string& name, int64_t channels);

// Antialiased stride-2 blur pool ([1,2,1]^2/16, reflect pad). The filter is a
// registered buffer "filt" [C,1,3,3], as in the reference's state dicts.
class BlurPoolImpl : public torch::nn::Module {
 public:
  explicit BlurPoolImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor filt;
};
TORCH_MODULE(BlurPool);

}  // namespace timfusion::nn
