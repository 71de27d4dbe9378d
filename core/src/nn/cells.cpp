#include "timfusion/torch/cells.h"

#include "timfusion/error.h"

namespace F = torch::nn::functional;

namespace timfusion::nn {

namespace {

torch::nn::Conv2d conv1x1(int64_t in, int64_t out) { return torch::nn::Conv2d(conv_opts(in, out, 1)); }

// Two branches summed: conv/PReLU/conv3x3/PReLU/blur-pool/conv1x1 and
// blur-pool/conv1x1; channels double, size halves. No biases.
class ResidualDownSample : public torch::nn::Module {
 public:
  explicit ResidualDownSample(int64_t c) {
    top = register_module("top", torch::nn::Sequential(conv1x1(c, c), torch::nn::PReLU(),
                                                       torch::nn::Conv2d(conv_opts(c, c, 3)), torch::nn::PReLU(),
                                                       BlurPool(c), conv1x1(c, 2 * c)));
    bot = register_module("bot", torch::nn::Sequential(BlurPool(c), conv1x1(c, 2 * c)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return top->forward(x) + bot->forward(x); }
  torch::nn::Sequential top{nullptr}, bot{nullptr};
};

// Transposed-conv branch + bilinear branch; channels halve, size doubles.
class ResidualUpSample : public torch::nn::Module {
 public:
  explicit ResidualUpSample(int64_t c) {
    top = register_module(
        "top", torch::nn::Sequential(
                   conv1x1(c, c), torch::nn::PReLU(),
                   torch::nn::ConvTranspose2d(
                       torch::nn::ConvTranspose2dOptions(c, c, 3).stride(2).padding(1).output_padding(1).bias(false)),
                   torch::nn::PReLU(), conv1x1(c, c / 2)));
    bot = register_module(
        "bot", torch::nn::Sequential(torch::nn::Upsample(torch::nn::UpsampleOptions()
                                                             .scale_factor(std::vector<double>{2.0, 2.0})
                                                             .mode(torch::kBilinear)
                                                             .align_corners(false)),
                                     conv1x1(c, c / 2)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return top->forward(x) + bot->forward(x); }
  torch::nn::Sequential top{nullptr}, bot{nullptr};
};

// n_steps of ResidualDownSample / ResidualUpSample under "body".
torch::nn::Sequential scale_body(int64_t c, int steps, bool down) {
  torch::nn::Sequential body;
  for (int i = 0; i < steps; ++i) {
    if (down) {
      body->push_back(std::make_shared<ResidualDownSample>(c));
      c *= 2;
    } else {
      body->push_back(std::make_shared<ResidualUpSample>(c));
      c /= 2;
    }
  }
  return body;
}

class Scaler : public torch::nn::Module {
 public:
  Scaler(int64_t c, int steps, bool down) { body = register_module("body", scale_body(c, steps, down)); }
  torch::Tensor forward(const torch::Tensor& x) { return body->forward(x); }
  torch::nn::Sequential body{nullptr};
};

// Selective kernel feature fusion over 3 branches (softmax across branches).
class Skff : public torch::nn::Module {
 public:
  explicit Skff(int64_t C, int64_t height = 3, int64_t reduction = 8) : height_(height) {
    int64_t d = std::max<int64_t>(C / reduction, 4);
    conv_du = register_module("conv_du", torch::nn::Sequential(conv1x1(C, d), torch::nn::PReLU()));
    fcs = register_module("fcs", torch::nn::ModuleList());
    for (int64_t i = 0; i < height; ++i) fcs->push_back(conv1x1(d, C));
  }
  torch::Tensor forward(const std::vector<torch::Tensor>& feats) {
    auto stacked = torch::stack(feats, 1);  // [B,3,C,H,W]
    auto u = stacked.sum(1);
    auto z = conv_du->forward(u.mean({2, 3}, true));
    std::vector<torch::Tensor> att;
    for (auto& fc : *fcs) att.push_back(fc->as<torch::nn::Conv2d>()->forward(z));
    auto a = torch::softmax(torch::stack(att, 1), 1);  // [B,3,C,1,1]
    return (stacked * a).sum(1);
  }
  torch::nn::Sequential conv_du{nullptr};
  torch::nn::ModuleList fcs{nullptr};
  int64_t height_;
};

torch::nn::ModuleList op_list(int64_t C, const std::vector<std::string>& ops) {
  torch::nn::ModuleList list;
  for (const auto& name : ops) list->push_back(MixedOp(C, name));
  return list;
}

torch::Tensor run_chain(torch::nn::ModuleList& ops, torch::Tensor x) {
  for (auto& m : *ops) x = m->as<MixedOp>()->forward(x);
  return x;
}

void fold_chain(torch::nn::ModuleList& ops) {
  for (auto& m : *ops) m->as<MixedOp>()->_op->fold_bn();
}

}  // namespace

Chain2Cell::Chain2Cell(int64_t C, const std::vector<std::string>& ops) {
  preprocess1 = register_module("preprocess1", ReLUConvBN(C, C, 1));
  ops_ = register_module("_ops", op_list(C, ops));
}

torch::Tensor Chain2Cell::forward(const torch::Tensor& x) { return run_chain(ops_, preprocess1(x)); }

void Chain2Cell::fold_bn() {
  preprocess1->fold_bn();
  fold_chain(ops_);
}

namespace {

// Fusion: the op chain at 3 scales (C@H, 2C@H/2, 4C@H/4), brought back up and
// merged by SKFF, plus the preprocessed input. H and W must divide by 4.
class FusionCell : public CellBase {
 public:
  FusionCell(int64_t C, const std::vector<std::string>& ops) {
    preprocess1 = register_module("preprocess1", ReLUConvBN(C, C, 1));
    down_2 = register_module("down_2", std::make_shared<Scaler>(C, 1, true));
    down_4 = register_module("down_4", std::make_shared<Scaler>(C, 2, true));
    upsample_2 = register_module("upsample_2", std::make_shared<Scaler>(2 * C, 1, false));
    upsample_4 = register_module("upsample_4", std::make_shared<Scaler>(4 * C, 2, false));
    skff = register_module("SKFF", std::make_shared<Skff>(C));
    ops_[0] = register_module("_ops", op_list(C, ops));
    ops_[1] = register_module("_ops_1", op_list(2 * C, ops));
    ops_[2] = register_module("_ops_2", op_list(4 * C, ops));
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    if (x.size(2) % 4 || x.size(3) % 4)
      throw Error("Fusion cell needs H and W divisible by 4, got " + std::to_string(x.size(2)) + "x" +
                  std::to_string(x.size(3)));
    auto s0 = preprocess1(x);
    auto s1 = down_2->forward(s0);
    auto s2 = down_4->forward(s0);
    auto r0 = run_chain(ops_[0], s0);
    auto r1 = upsample_2->forward(run_chain(ops_[1], s1));
    auto r2 = upsample_4->forward(run_chain(ops_[2], s2));
    return s0 + skff->forward({r0, r1, r2});
  }

  void fold_bn() override {
    preprocess1->fold_bn();
    for (auto& l : ops_) fold_chain(l);
  }

 private:
  ReLUConvBN preprocess1{nullptr};
  std::shared_ptr<Scaler> down_2, down_4, upsample_2, upsample_4;
  std::shared_ptr<Skff> skff;
  torch::nn::ModuleList ops_[3] = {nullptr, nullptr, nullptr};
};

}  // namespace

std::shared_ptr<CellBase> make_cell(const std::string& type, int64_t C, const std::vector<std::string>& normal,
                                    const std::vector<std::string>& chain_fusion) {
  if (type == "Chain2") return std::make_shared<Chain2Cell>(C, normal);
  if (type == "Fusion") return std::make_shared<FusionCell>(C, chain_fusion);
  throw Error("unknown cell type \"" + type + "\"");
}

}  // namespace timfusion::nn
