// timfusion-train meta / adapt: TIM's pretext meta-initialisation (PMI) and
// fast adaptation. Internal header: includes LibTorch.
//
// Meta-initialisation is first-order Reptile (Nichol et al. 2018) over
// pretext fusion tasks (IVIF, MRI-CT, MRI-SPECT by default): outer step k
// takes task t(k) (round robin), copies the initialisation theta to phi,
// runs meta.inner_steps Adam steps (fresh moments, the fusion losses of
// losses/fusion_losses.h) on that task's crops, and moves
//     theta <- theta + eps_k (phi - theta)
// (parameters and BN running statistics), eps_k decaying linearly from
// meta.epsilon to meta.epsilon_min. No second derivatives.
//
// Adaptation fine-tunes such an initialisation (or any weights, or a random
// init) on a new task's pairs for a few hundred Adam steps and evaluates the
// network on held-out pairs along the way (fusion-loss terms and fusion
// metrics of core's metrics library), for adaptation-speed comparisons.
//
// Files: meta_command.cpp (meta), adapt_command.cpp (adapt),
// adapt_compare.cpp (adapt --compare, no LibTorch) and fusion_tuning.cpp
// (the fusion-loss step and held-out evaluation both commands use).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "data/pair_dataset.h"
#include "losses/fusion_losses.h"
#include "meta/adapt_compare.h"
#include "meta/adapt_config.h"
#include "meta/meta_config.h"
#include "timfusion/torch/networks.h"
#include "run/checkpoint.h"
#include "run/command_config.h"
#include "timfusion/safetensors.h"

namespace timfusion::train {

// ------------------------------------------------ meta_command.cpp (Reptile)

struct MetaTask {
  std::string name;
  PairDataset data;
  nlohmann::json entries;  // the data entries as given (for provenance)
};

// meta.tasks = [{"name": str, "data": [entries]}] (entries as resolve_sources).
std::vector<MetaTask> load_tasks(const nlohmann::json& tasks, const std::string& work_dir);
// The default pretext tasks under the data folder.
nlohmann::json default_meta_tasks(const std::string& data_dir);
std::string shared_data_dir();

// dst <- src for every parameter and buffer (same architecture).
void copy_state(torch::nn::Module& dst, const torch::nn::Module& src);
// theta <- theta + eps (phi - theta) for parameters and floating-point
// buffers; integer buffers (BN counters) are taken from phi.
void reptile_update(torch::nn::Module& theta, const torch::nn::Module& phi, double epsilon);

// ------------------------------------------------ fusion_tuning.cpp (meta and adapt)

// One Adam step of the fusion losses on `batch` crops; returns the losses (before the step).
FusionLosses fusion_step(nn::TimNetImpl& net, Adam& opt, const Batch& batch, const FusionLossWeights& w, double lr,
                         double grad_clip);

struct EvalResult {
  size_t pairs = 0;
  double loss = 0, intensity = 0, gradient = 0, ssim = 0;  // means of the fusion-loss terms
  std::map<std::string, double> metrics;                  // means of core metrics (8-bit images)
};
// Re-estimates every BatchNorm's running mean and variance as the average of
// the batch statistics over `batches` training-shaped batches (`batch` random
// crops of `crop` px of `data`, fixed by `seed`): "precise BN". The EMA of the
// last few training batches (momentum 0.1) otherwise makes eval-mode outputs
// jump from one evaluation to the next. Parameters are not touched.
void recalibrate_bn(nn::TimNetImpl& net, const PairDataset& data, int batches, int batch, int crop, uint64_t seed);
// Whole images, one at a time, eval mode (BN running statistics), no grad.
EvalResult evaluate(nn::TimNetImpl& net, const PairDataset& data, const FusionLossWeights& w,
                    const std::vector<std::string>& metrics);

// ------------------------------------------------ meta_command.cpp (Reptile)

struct MetaStats {
  int task = 0;
  double epsilon = 0, lr = 0, inner_first = 0, inner_last = 0;
};

const CommandSpec& meta_spec();

class MetaLearner {
 public:
  MetaLearner(const CommandConfig& config, const std::string& run_dir, bool quiet = true);
  ~MetaLearner();
  int run(long stop_at, bool resume, const std::string& command_line);
  MetaStats step(int64_t k);
  double epsilon_at(int64_t k) const;
  SafetensorsFile theta_state() const;    // the meta-initialisation
  SafetensorsFile adapted_state() const;  // phi after the last step's inner loop
  const std::vector<MetaTask>& tasks() const;
  const ArchSpec& spec() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ------------------------------------------------ adapt_command.cpp

struct AdaptStats {
  double loss = 0, intensity = 0, gradient = 0, ssim = 0, lr = 0;
};

const CommandSpec& adapt_spec();

class Adapter {
 public:
  Adapter(const CommandConfig& config, const std::string& run_dir, bool quiet = true);
  ~Adapter();
  int run(long stop_at, bool resume, const std::string& command_line);
  AdaptStats step(int64_t k);
  EvalResult evaluate_now();
  SafetensorsFile state() const;
  const ArchSpec& spec() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace timfusion::train
