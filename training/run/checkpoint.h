// timfusion-train: Adam with inspectable state, and checkpoints holding
// modules + optimiser moments in one safetensors file (written atomically).
// Includes LibTorch.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "timfusion/arch.h"
#include "timfusion/safetensors.h"

namespace timfusion::train {

// Adam (Kingma & Ba), the same update as torch.optim.Adam without weight
// decay: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
// p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps).
class Adam {
 public:
  explicit Adam(torch::nn::Module& module, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  void zero_grad();
  void step(double lr);
  int64_t t() const { return t_; }

  // Moments as "<prefix><param>.m" / ".v"; t as metadata "<prefix>t".
  void save(SafetensorsFile& out, const std::string& prefix) const;
  void load(const SafetensorsFile& in, const std::string& prefix);

 private:
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<torch::Tensor> m_, v_;
  double b1_, b2_, eps_;
  int64_t t_ = 0;
};

// Global L2 norm of all gradients, scaled down to max_norm when above it.
double clip_grad_norm(torch::nn::Module& module, double max_norm);

// Parameters and buffers of `module` under "<prefix><key>".
void save_module(SafetensorsFile& out, const torch::nn::Module& module, const std::string& prefix);
// Loads what save_module wrote (every key must be present).
void load_module(torch::nn::Module& module, const SafetensorsFile& in, const std::string& prefix, const std::string& what);

// A final weight file: the module's weights (CPU tensors, whatever the
// module's device) through core's write_model_file (the metadata's one writer).
void write_model_file(const std::string& path, const torch::nn::Module& net, const ArchSpec& arch,
                      const std::string& provenance_json);

// Every tensor's bytes equal (names, dtypes, shapes, data)? Metadata ignored.
bool same_tensors(const SafetensorsFile& a, const SafetensorsFile& b, std::string* first_difference = nullptr);

}  // namespace timfusion::train
