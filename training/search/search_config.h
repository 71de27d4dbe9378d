// The "search" section of `timfusion-train search` as typed members; the
// keys, defaults, bounds and help are search_spec()'s table
// (search_command.cpp), fields() binds each to its member (run/typed_fields.h).
// No LibTorch in this header.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace timfusion::train {

struct SearchConfig {
  std::string name;  // written into the genotype
  int64_t downscale = 2, cells = 2;
  std::string head;  // image | blend | detail
  std::vector<std::string> candidates;
  double alpha_lr = 0, val_fraction = 0.5, latency_weight = 0, latency_budget = 0;
  int64_t alpha_start = 0, latency_width = 0, latency_height = 0, latency_threads = 1, latency_reps = 1;
  std::string hypergradient;  // implicit | first-order

  template <typename Self, typename Visit>
  static void fields(Self& s, Visit&& v) {
    v("name", s.name);
    v("downscale", s.downscale);
    v("head", s.head);
    v("cells", s.cells);
    v("candidates", s.candidates);
    v("alpha_lr", s.alpha_lr);
    v("alpha_start", s.alpha_start);
    v("val_fraction", s.val_fraction);
    v("latency_weight", s.latency_weight);
    v("latency_budget", s.latency_budget);
    v("latency_width", s.latency_width);
    v("latency_height", s.latency_height);
    v("latency_threads", s.latency_threads);
    v("latency_reps", s.latency_reps);
    v("hypergradient", s.hypergradient);
  }
};

}  // namespace timfusion::train
