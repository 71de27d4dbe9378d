#include "timfusion/torch/ops.h"

#include <ATen/ops/mkldnn_convolution.h>

#include <algorithm>

#include "timfusion/arch.h"
#include "timfusion/error.h"

namespace F = torch::nn::functional;

namespace timfusion::nn {

// ---------------------------------------------------------------- building blocks

namespace {

// ReflectionPad2d (mirror without repeating the edge: OpenCV's REFLECT_101)
// that keeps a channels-last tensor channels-last. LibTorch 1.13's
// reflection_pad2d makes its input contiguous (NCHW), so each padded conv
// paid a conversion there and another one back inside the NHWC convolution:
// 30 % of ivif-rt's frame. Here: one interior copy and 4p edge copies, all
// plain copies of the same values (bit-identical to F::pad).
// The copies also serve bf16 on CPU, where LibTorch 1.13 has no
// reflection_pad2d kernel ("not implemented for 'BFloat16'").
torch::Tensor reflect_pad(const torch::Tensor& x, int64_t p) {
  const auto opts = F::PadFuncOptions({p, p, p, p}).mode(torch::kReflect);
  const bool no_kernel = x.is_cpu() && x.scalar_type() == torch::kBFloat16;
  if (x.dim() != 4 || x.requires_grad() ||
      (x.suggest_memory_format() != at::MemoryFormat::ChannelsLast && !no_kernel))
    return F::pad(x, opts);
  const int64_t H = x.size(2), W = x.size(3);
  if (p >= H || p >= W) return F::pad(x, opts);  // its error message
  auto out = torch::empty({x.size(0), x.size(1), H + 2 * p, W + 2 * p},
                          x.options().memory_format(x.suggest_memory_format()));
  auto rows = out.narrow(2, p, H);
  rows.narrow(3, p, W).copy_(x);
  for (int64_t i = 1; i <= p; ++i) {  // left/right columns of the interior rows
    rows.select(3, p - i).copy_(x.select(3, i));
    rows.select(3, p + W - 1 + i).copy_(x.select(3, W - 1 - i));
  }
  for (int64_t i = 1; i <= p; ++i) {  // top/bottom rows, corners included, from the padded rows
    out.select(2, p - i).copy_(out.select(2, p + i));
    out.select(2, p + H - 1 + i).copy_(out.select(2, p + H - 1 - i));
  }
  return out;
}

}  // namespace

TimBatchNormImpl::TimBatchNormImpl(int64_t channels, double momentum_, double eps_) : momentum(momentum_), eps(eps_) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
  running_mean = register_buffer("running_mean", torch::zeros({channels}));
  running_var = register_buffer("running_var", torch::ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
}

namespace {
CrossProcessSum& cross_process_sum() {
  static CrossProcessSum sum;
  return sum;
}

// Batch statistics over every process's share: per-channel sums and sums of
// squares (in float64: E[x^2] - E[x]^2 cancels) and the element count, summed
// across processes; then the same normalisation and running-average update
// as torch::batch_norm (biased variance to normalise, unbiased for running_var).
torch::Tensor global_batch_norm(TimBatchNormImpl& bn, const torch::Tensor& x, const CrossProcessSum& sum) {
  const int64_t C = x.size(1);
  auto xd = x.to(torch::kFloat64);
  auto local = torch::cat({xd.sum({0, 2, 3}), (xd * xd).sum({0, 2, 3}),
                           torch::full({1}, static_cast<double>(x.numel() / C), xd.options())});
  auto all = sum(local);
  auto n = all.narrow(0, 2 * C, 1);
  auto mean = all.narrow(0, 0, C) / n;
  auto var = all.narrow(0, C, C) / n - mean * mean;
  {
    torch::NoGradGuard ng;
    const double count = n.item<double>();
    bn.running_mean.mul_(1 - bn.momentum).add_(mean.to(bn.running_mean.scalar_type()), bn.momentum);
    bn.running_var.mul_(1 - bn.momentum)
        .add_((var * (count / std::max(1.0, count - 1))).to(bn.running_var.scalar_type()), bn.momentum);
  }
  auto scale = (bn.weight.to(torch::kFloat64) * torch::rsqrt(var + bn.eps)).to(x.scalar_type());
  auto shift = (bn.bias.to(torch::kFloat64) - mean * bn.weight.to(torch::kFloat64) * torch::rsqrt(var + bn.eps)).to(x.scalar_type());
  return x * scale.view({1, C, 1, 1}) + shift.view({1, C, 1, 1});
}
}  // namespace

void set_batch_norm_cross_process_sum(CrossProcessSum sum) { cross_process_sum() = std::move(sum); }

torch::Tensor TimBatchNormImpl::forward(const torch::Tensor& x) {
  if (is_training()) {
    torch::NoGradGuard ng;
    num_batches_tracked += 1;
  }
  if (is_training() && cross_process_sum()) return global_batch_norm(*this, x, cross_process_sum());
  if (batch_stats && !is_training())  // per-batch statistics, running stats untouched
    return torch::batch_norm(x, weight, bias, {}, {}, true, 0.0, eps, true);
  return torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps, true);
}

std::pair<torch::Tensor, torch::Tensor> TimBatchNormImpl::affine() const {
  auto scale = weight / torch::sqrt(running_var + eps);
  return {scale, bias - running_mean * scale};
}

namespace {

// torch::conv2d, except that a 1x1 convolution at inference on CPU goes to
// oneDNN. LibTorch 1.13 routes 1x1 convolutions of one image on one thread
// to its own slow_conv2d ("THNN is faster when single-threaded"), which on
// these layers (16 channels, NHWC input) ran at 3 GFLOP/s, 6 ms for the
// default model's 8 -> 64 head layer alone (`timfusion-bench --profile 1`);
// on two threads, or batch 16, LibTorch itself picks oneDNN. Training keeps
// LibTorch's choice (autograd).
torch::Tensor conv2d_fast(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  if (!torch::GradMode::is_enabled() && x.is_cpu() && x.dim() == 4 && w.dim() == 4 && w.size(2) == 1 &&
      w.size(3) == 1 && (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16) &&
      x.scalar_type() == w.scalar_type() && x.layout() == torch::kStrided)
    return at::mkldnn_convolution(x, w, b.defined() ? c10::optional<torch::Tensor>(b) : c10::nullopt, padding, stride,
                                  dilation, groups);
  return torch::conv2d(x, w, b, stride, padding, dilation, groups);
}

torch::Tensor conv2d_fast(torch::nn::Conv2dImpl& conv, const torch::Tensor& x) {
  const auto& o = conv.options;
  if (!c10::get_if<torch::ExpandingArray<2>>(&o.padding())) return conv.forward(x);  // "same"/"valid"
  return conv2d_fast(x, conv.weight, conv.bias, o.stride(), c10::get<torch::ExpandingArray<2>>(o.padding()),
                     o.dilation(), o.groups());
}

}  // namespace

torch::Tensor ConvBN::operator()(const torch::Tensor& x) {
  if (w.defined()) {
    const auto& o = conv->options;
    return conv2d_fast(x, w, b, o.stride(), c10::get<torch::ExpandingArray<2>>(o.padding()), o.dilation(), o.groups());
  }
  return bn(conv(x));
}

void ConvBN::fold() {
  if (bn->batch_stats) return;  // statistics come from the data: nothing to fold
  torch::NoGradGuard ng;
  // Fold in fp32 even for reduced-precision models, then cast once.
  const auto& cw = conv->weight;
  auto [scale, shift] = bn->affine();
  scale = scale.to(torch::kFloat32);
  shift = shift.to(torch::kFloat32);
  w = (cw.to(torch::kFloat32) * scale.view({-1, 1, 1, 1})).to(cw.dtype()).contiguous(cw.suggest_memory_format());
  b = (conv->bias.defined() ? conv->bias.to(torch::kFloat32) * scale + shift : shift).to(cw.dtype());
}

torch::nn::Conv2dOptions conv_opts(int64_t in, int64_t out, int64_t k, int64_t dilation, int64_t groups, bool bias) {
  // The reference's padding table ((3,1)->1, (3,2)->2, (5,1)->2, ...) is d*(k-1)/2.
  return torch::nn::Conv2dOptions(in, out, k).padding(dilation * (k - 1) / 2).dilation(dilation).groups(groups).bias(bias);
}

ConvLayerImpl::ConvLayerImpl(int64_t in, int64_t out, int64_t k, int64_t dilation) : pad(dilation * (k - 1) / 2) {
  conv2d = register_module("conv2d", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).dilation(dilation)));
}

torch::Tensor ConvLayerImpl::forward(const torch::Tensor& x) {
  if (pad == 0) return conv2d_fast(*conv2d, x);
  // ReflectionPad2d mirrors without repeating the edge (OpenCV's REFLECT_101).
  return conv2d(reflect_pad(x, pad));
}

BasicConvImpl::BasicConvImpl(int64_t in, int64_t out, int64_t k, int64_t dilation, int64_t groups) {
  conv = register_module("conv", torch::nn::Conv2d(conv_opts(in, out, k, dilation, groups)));
}

ReLUConvBNImpl::ReLUConvBNImpl(int64_t c_in, int64_t c_out, int64_t k) {
  auto op = register_module("op", torch::nn::Sequential());
  op->push_back(torch::nn::ReLU());
  op->push_back(cb.conv = torch::nn::Conv2d(conv_opts(c_in, c_out, k)));
  op->push_back(cb.bn = TimBatchNorm(c_out));
}

torch::Tensor ReLUConvBNImpl::forward(const torch::Tensor& x) { return cb(torch::relu(x)); }

BlurPoolImpl::BlurPoolImpl(int64_t channels) {
  auto a = torch::tensor({1.f, 2.f, 1.f});
  auto k = torch::outer(a, a) / 16.f;
  filt = register_buffer("filt", k.view({1, 1, 3, 3}).repeat({channels, 1, 1, 1}).contiguous());
}

torch::Tensor BlurPoolImpl::forward(const torch::Tensor& x) {
  auto p = reflect_pad(x, 1);
  const std::vector<int64_t> stride{2, 2}, pad{0, 0}, dil{1, 1};
  return torch::conv2d(p, filt, torch::Tensor(), stride, pad, dil, x.size(1));
}

// ---------------------------------------------------------------- searchable ops

namespace {

// 'Residualblocks_k_d': x + PReLU(BN(pw(dw3x3_d2(dw_kxk_d(x))))).
class ResidualModule : public OpBase {
 public:
  ResidualModule(int64_t C, int64_t k, int64_t d) {
    auto op = register_module("op", torch::nn::Sequential());
    op->push_back(dw1 = BasicConv(C, C, k, d, C));
    op->push_back(dw2 = torch::nn::Conv2d(conv_opts(C, C, 3, 2, C)));
    op->push_back(cb.conv = torch::nn::Conv2d(conv_opts(C, C, 1)));
    op->push_back(cb.bn = TimBatchNorm(C));
    op->push_back(act = torch::nn::PReLU());
  }
  torch::Tensor forward(const torch::Tensor& x) override { return x + act(cb(dw2(dw1(x)))); }
  void fold_bn() override { cb.fold(); }

 private:
  BasicConv dw1{nullptr};
  torch::nn::Conv2d dw2{nullptr};
  ConvBN cb;
  torch::nn::PReLU act{nullptr};
};

// 'Denseblocks_k_d': grouped dense connections, one shared PReLU, 0.333 residual.
class ResidualDenseBlock : public OpBase {
 public:
  ResidualDenseBlock(int64_t C, int64_t k, int64_t d) {
    conv1 = register_module("conv1", BasicConv(C, C, k, d, C));
    conv2 = register_module("conv2", BasicConv(2 * C, C, k, d, C));
    conv3 = register_module("conv3", BasicConv(3 * C, C, k, d, C));
    lrelu = register_module("lrelu", torch::nn::PReLU());
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    auto x1 = lrelu(conv1(x));
    auto x2 = lrelu(conv2(torch::cat({x, x1}, 1)));
    auto x3 = lrelu(conv3(torch::cat({x, x1, x2}, 1)));
    return x3 * 0.333 + x;
  }

 private:
  BasicConv conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::PReLU lrelu{nullptr};
};

// ECA channel attention: sigmoid(conv1d over the channel axis of the global
// average), zero-padded at the channel ends. Key: conv.weight [1,1,k].
class EcaLayer : public torch::nn::Module {
 public:
  EcaLayer(int64_t k) {
    conv = register_module("conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(1, 1, k).padding((k - 1) / 2).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto s = x.mean({2, 3}).unsqueeze(1);                 // [B,1,C]
    auto a = torch::sigmoid(conv(s)).squeeze(1);          // [B,C]
    return x * a.unsqueeze(-1).unsqueeze(-1);
  }
  torch::nn::Conv1d conv{nullptr};
};

// 'ECAattention_k': PReLU(conv3x3(eca(x))); no residual, no BN.
class EcaBasicBlock : public OpBase {
 public:
  EcaBasicBlock(int64_t C, int64_t k) {
    conv1 = register_module("conv1", torch::nn::Conv2d(conv_opts(C, C, 3)));
    se = register_module("se", std::make_shared<EcaLayer>(k));
    relu = register_module("relu", torch::nn::PReLU());
  }
  torch::Tensor forward(const torch::Tensor& x) override { return relu(conv1(se->forward(x))); }

 private:
  torch::nn::Conv2d conv1{nullptr};
  std::shared_ptr<EcaLayer> se;
  torch::nn::PReLU relu{nullptr};
};

// Spatial attention: x * sigmoid(conv([max_c x, mean_c x])). Key spatial.conv.weight.
class SpatialAttnLayer : public torch::nn::Module {
 public:
  SpatialAttnLayer(int64_t k) { spatial = register_module("spatial", BasicConv(2, 1, k)); }
  torch::Tensor forward(const torch::Tensor& x) {
    auto pooled = torch::cat({std::get<0>(x.max(1, true)), x.mean(1, true)}, 1);
    return x * torch::sigmoid(spatial(pooled));
  }
  BasicConv spatial{nullptr};
};

// 'SPAattention_k': the spatial attention alone (no residual).
class SpatialBasicBlock : public OpBase {
 public:
  SpatialBasicBlock(int64_t k) { se = register_module("se", std::make_shared<SpatialAttnLayer>(k)); }
  torch::Tensor forward(const torch::Tensor& x) override { return se->forward(x); }

 private:
  std::shared_ptr<SpatialAttnLayer> se;
};

// 'DilConv_k_d': BN(pw(dw_dilated(relu x))) + x; unlike DARTS, with a residual.
class DilConv : public OpBase {
 public:
  DilConv(int64_t C, int64_t k, int64_t d) {
    auto op = register_module("op", torch::nn::Sequential());
    op->push_back(torch::nn::ReLU());
    op->push_back(dw = BasicConv(C, C, k, d, C));
    op->push_back(cb.conv = torch::nn::Conv2d(conv_opts(C, C, 1)));
    op->push_back(cb.bn = TimBatchNorm(C));
  }
  torch::Tensor forward(const torch::Tensor& x) override { return cb(dw(torch::relu(x))) + x; }
  void fold_bn() override { cb.fold(); }

 private:
  BasicConv dw{nullptr};
  ConvBN cb;
};

// 'SepConv_k_1': two ReLU-dw-pw-BN rounds, no residual.
class SepConv : public OpBase {
 public:
  SepConv(int64_t C, int64_t k) {
    auto op = register_module("op", torch::nn::Sequential());
    op->push_back(torch::nn::ReLU());
    op->push_back(dw1 = torch::nn::Conv2d(conv_opts(C, C, k, 1, C)));
    op->push_back(cb1.conv = torch::nn::Conv2d(conv_opts(C, C, 1)));
    op->push_back(cb1.bn = TimBatchNorm(C));
    op->push_back(torch::nn::ReLU());
    op->push_back(dw2 = torch::nn::Conv2d(conv_opts(C, C, k, 1, C)));
    op->push_back(cb2.conv = torch::nn::Conv2d(conv_opts(C, C, 1)));
    op->push_back(cb2.bn = TimBatchNorm(C));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    auto y = cb1(dw1(torch::relu(x)));
    return cb2(dw2(torch::relu(y)));
  }
  void fold_bn() override {
    cb1.fold();
    cb2.fold();
  }

 private:
  torch::nn::Conv2d dw1{nullptr}, dw2{nullptr};
  ConvBN cb1, cb2;
};

class IdentityOp : public OpBase {
 public:
  torch::Tensor forward(const torch::Tensor& x) override { return x; }
};

}  // namespace

std::shared_ptr<OpBase> make_op(const std::string& name, int64_t C) {
  OpName op = OpName::parse(name);
  if (op.type == "Residualblocks") return std::make_shared<ResidualModule>(C, op.kernel, op.dilation);
  if (op.type == "Denseblocks") return std::make_shared<ResidualDenseBlock>(C, op.kernel, op.dilation);
  if (op.type == "ECAattention") return std::make_shared<EcaBasicBlock>(C, op.kernel);
  if (op.type == "SPAattention") return std::make_shared<SpatialBasicBlock>(op.kernel);
  if (op.type == "DilConv") return std::make_shared<DilConv>(C, op.kernel, op.dilation);
  if (op.type == "SepConv") return std::make_shared<SepConv>(C, op.kernel);
  if (op.type == "Identity") return std::make_shared<IdentityOp>();
  throw Error("operation \"" + name + "\" is not implemented");
}

}  // namespace timfusion::nn
