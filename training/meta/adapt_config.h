// The "adapt" section of `timfusion-train adapt` as typed members; the keys,
// defaults, bounds and help are adapt_spec()'s table (adapt_command.cpp),
// fields() binds each to its member (run/typed_fields.h). No LibTorch here.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace timfusion::train {

struct AdaptConfig {
  std::string split_dir;  // a task folder with split.txt ("" = none)
  // Data entries (resolve_sources()); empty: split_dir's parts or "data".
  nlohmann::json train = nlohmann::json::array(), eval = nlohmann::json::array();
  nlohmann::json eval_at = nlohmann::json::array();  // steps to evaluate after (non-integers are ignored)
  int64_t eval_every = 0, bn_recalibrate = 0;
  std::string metrics;  // timfusion-eval names, comma-separated

  template <typename Self, typename Visit>
  static void fields(Self& s, Visit&& v) {
    v("split_dir", s.split_dir);
    v("train", s.train);
    v("eval", s.eval);
    v("eval_at", s.eval_at);
    v("eval_every", s.eval_every);
    v("metrics", s.metrics);
    v("bn_recalibrate", s.bn_recalibrate);
  }
};

}  // namespace timfusion::train
