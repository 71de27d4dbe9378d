// The "meta" section of `timfusion-train meta` as typed members; the keys,
// defaults, bounds and help are meta_spec()'s table (meta_command.cpp),
// fields() binds each to its member (run/typed_fields.h). No LibTorch here.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace timfusion::train {

struct MetaConfig {
  nlohmann::json tasks = nlohmann::json::array();  // [{"name", "data": [entries]}], resolved by load_tasks()
  int64_t inner_steps = 1;
  double epsilon = 0, epsilon_min = 0;  // Reptile outer step size at the first and the last step
  std::string task_order;               // round-robin | random

  template <typename Self, typename Visit>
  static void fields(Self& s, Visit&& v) {
    v("tasks", s.tasks);
    v("inner_steps", s.inner_steps);
    v("epsilon", s.epsilon);
    v("epsilon_min", s.epsilon_min);
    v("task_order", s.task_order);
  }
};

}  // namespace timfusion::train
