// timfusion: TIM cells (reference model_searched.py): Chain2 and Fusion.
// Training-facing API (includes LibTorch): see README.md in this folder.
#pragma once
#include <string>
#include <vector>

#include "timfusion/torch/ops.h"

namespace timfusion::nn {

// Holds one op under the name "_op", as the reference's MixedOp.
class MixedOpImpl : public torch::nn::Module {
 public:
  MixedOpImpl(int64_t C, const std::string& name) { _op = register_module("_op", make_op(name, C)); }
  torch::Tensor forward(const torch::Tensor& x) { return _op->forward(x); }
  std::shared_ptr<OpBase> _op;
};
TORCH_MODULE(MixedOp);

class CellBase : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  virtual void fold_bn() = 0;
};

// Chain2: ReLUConvBN 1x1, then the genotype's ops in sequence (no cell skip).
class Chain2Cell : public CellBase {
 public:
  Chain2Cell(int64_t C, const std::vector<std::string>& ops);
  torch::Tensor forward(const torch::Tensor& x) override;
  void fold_bn() override;

 private:
  ReLUConvBN preprocess1{nullptr};
  torch::nn::ModuleList ops_{nullptr};
};

// Fusion (3 scales + SKFF) lives in cells.cpp: nothing outside builds it directly.

std::shared_ptr<CellBase> make_cell(const std::string& type, int64_t C, const std::vector<std::string>& normal,
                                    const std::vector<std::string>& chain_fusion);

}  // namespace timfusion::nn
