// timfusion-train search: implicit architecture search (TIM's IAS) with a
// latency budget. Internal header: includes LibTorch.
//
// Step k (after search.alpha_start warm-up steps that train omega only):
//   f = fusion loss of the supernet on a crop batch of split A (lower level:
//       the weights omega are trained on it),
//   F = fusion loss on a batch of split B + lambda * E[latency](alpha)
//       (upper level: the architecture alpha is chosen on it),
//   alpha <- Adam(alpha, grad_a F - c grad_a f)      (hypergradient.h)
//   omega <- Adam(omega, grad_w f)                   (the same grad_w f)
// E[latency] = fixed + cells * sum_e sum_k softmax(alpha_e)_k lat_k, with the
// per-op table measured on this machine (supernet.h). The latency term does
// not depend on omega, so it is kept out of f: with the Gauss-Newton
// surrogate H_aw f ~ grad_a f grad_w f^T, a latency term inside f would
// leak into grad_a f although it has no cross-derivative with omega.
#pragma once
#include <memory>
#include <string>

#include "losses/fusion_losses.h"
#include "run/command_config.h"
#include "search/hypergradient.h"
#include "search/search_config.h"
#include "search/supernet.h"
#include "timfusion/safetensors.h"

namespace timfusion::train {

struct SearchBatch {
  torch::Tensor ir, vis;
};

struct IasStep {
  HyperGradient h;
  double F = 0, F_fusion = 0, f = 0, latency_ms = 0;
};

// The three-gradient IAS evaluation at the supernet's current (omega, alpha).
// lambda = 0 or lat == nullptr: no latency term. The latency term is
// lambda * max(0, E[latency] - budget_ms): with a budget, architectures that
// fit are not pushed further down (budget 0: plain lambda * E[latency]).
IasStep ias_hypergradient(SuperNetImpl& net, const LatencyTable* lat, double lambda, const SearchBatch& train,
                          const SearchBatch& val, const FusionLossWeights& w, bool first_order = false,
                          double budget_ms = 0);

struct SearchStats {
  double f = NAN, F_fusion = NAN, latency_ms = NAN, c = NAN, g_alpha_norm = NAN, lr = 0;
};

// The `search` command's keys (section "search") and defaults.
const CommandSpec& search_spec();

class Searcher {
 public:
  // Loads the data, builds the supernet from the seed, and measures the
  // latency table or reads it from <run_dir>/latency.json when that holds
  // the same configuration.
  Searcher(const CommandConfig& config, const std::string& run_dir, bool quiet = true);
  ~Searcher();

  int run(long stop_at, bool resume, const std::string& command_line);
  SearchStats step(int64_t k);  // for tests

  SuperNetImpl& supernet();
  const LatencyTable& latency() const;
  ArchSpec genotype() const;
  // Markdown and CSV of alpha (raw and softmax per edge) with per-op latency.
  std::string alpha_markdown() const;
  std::string alpha_csv() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};


}  // namespace timfusion::train
