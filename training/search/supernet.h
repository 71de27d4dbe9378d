// timfusion-train search: the supernet of TIM's implicit architecture search
// and its per-op latency table. Internal header: includes LibTorch.
//
// The supernet is ivif-light's single-stage network (stem -> Chain2 cells ->
// stem_out, optional space-to-depth `downscale`) in which every op of a cell
// is a mixed edge: out = sum_k softmax(alpha_e)_k * op_k(x), over the
// candidate ops (core's make_op, so exactly the ops the final network uses).
// As in the reference, all Chain2 cells share one genotype (`normal`), so
// alpha is [edges x candidates], shared by every cell. Module names follow
// core's FusionNet (stem, cells.i.preprocess1, cells.i._ops.e.ops.k, stem_out).
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "timfusion/torch/ops.h"
#include "timfusion/arch.h"

namespace timfusion::train {

struct SuperNetOptions {
  int channels = 8;
  int downscale = 2;
  Head head = Head::Image;  // the derived network's output head (see arch.h)
  int cells = 2;
  int edges = 2;  // ops per Chain2 cell
  std::vector<std::string> candidates;

  static std::vector<std::string> default_candidates();
  void validate() const;  // throws Error
};

// One edge: all candidate ops, mixed by the weights given to forward().
class MixedEdgeImpl : public torch::nn::Module {
 public:
  MixedEdgeImpl(int64_t C, const std::vector<std::string>& candidates);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& weights);  // weights [K]
  std::vector<std::shared_ptr<nn::OpBase>> ops;
};
TORCH_MODULE(MixedEdge);

class SuperCellImpl : public torch::nn::Module {
 public:
  SuperCellImpl(int64_t C, int edges, const std::vector<std::string>& candidates);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& weights);  // weights [edges, K]
  nn::ReLUConvBN preprocess1{nullptr};
  std::vector<MixedEdge> edges;
};
TORCH_MODULE(SuperCell);

class SuperNetImpl : public torch::nn::Module {
 public:
  explicit SuperNetImpl(const SuperNetOptions& o);
  // f(ir, vis), [B,1,H,W] each (H, W divisible by downscale); uses alpha.
  torch::Tensor forward(const torch::Tensor& ir, const torch::Tensor& vis);
  // The architecture weights alpha [edges, K] (a leaf with requires_grad;
  // not a registered parameter: parameters() are the weights omega only).
  torch::Tensor& alpha() { return alpha_; }
  torch::Tensor probabilities() const { return torch::softmax(alpha_, 1); }
  // argmax per edge -> a genotype core builds (ArchSpec::from_json).
  ArchSpec derive(const std::string& name) const;
  const SuperNetOptions& options() const { return o_; }

  torch::nn::Sequential stem{nullptr}, stem_out{nullptr};
  torch::nn::ModuleList cells{nullptr};

 private:
  SuperNetOptions o_;
  torch::Tensor alpha_;
};
TORCH_MODULE(SuperNet);

// Per-op latency on this machine, for the supernet's configuration: each
// candidate alone on a [1, C, H/s, W/s] input (one cell edge of the final
// network at the target frame size), and the fixed part (stem, the cells'
// 1x1 preprocess, stem_out, pixel (un)shuffle: the network with Identity
// ops), all as timfusion-bench measures: eval, BN folded, NHWC,
// InferenceMode, `threads` threads. Milliseconds.
struct LatencyTable {
  int width = 640, height = 480, threads = 1, channels = 0, downscale = 1, cells = 2, edges = 2, reps = 0;
  std::vector<std::string> ops;  // the candidates, in order
  std::map<std::string, double> op_ms;         // best of `reps` runs (what the search uses)
  std::map<std::string, double> op_ms_median;  // median, for reference
  double fixed_ms = 0, fixed_ms_median = 0;
  std::string cpu, load_average, measured;

  nlohmann::json to_json() const;
  static LatencyTable from_json(const nlohmann::json& j);  // throws Error when malformed
  // Same configuration (everything but the measured numbers)?
  bool matches(const SuperNetOptions& o, int width, int height, int threads) const;
  // fixed + cells * sum_e lat(genotype[e]).
  double predict(const std::vector<std::string>& normal) const;
  // E[latency] = fixed + cells * sum_e sum_k p_ek lat_k (differentiable in p [edges, K]).
  torch::Tensor expected(const torch::Tensor& p) const;
  std::string markdown() const;
};

// Measures the table (takes seconds; sets and restores the thread count).
LatencyTable measure_latency(const SuperNetOptions& o, int width, int height, int threads, int reps);
// Forward time of a whole network (TimNet) built from `spec`, as timfusion-bench: best and median ms.
std::pair<double, double> time_network(const ArchSpec& spec, int width, int height, int threads, int reps);

// The genotype of a search as a JSON file core reads (ArchSpec::from_json).
std::string genotype_json(const ArchSpec& spec);

}  // namespace timfusion::train
