// The "downstream" section of `timfusion-train downstream` as typed members;
// the keys, defaults, bounds and help are downstream_spec()'s table
// (downstream_command.cpp), fields() binds each to its member
// (run/typed_fields.h). No LibTorch here.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace timfusion::train {

struct DownstreamConfig {
  nlohmann::json inputs = nlohmann::json::array();  // rows: "NAME=SPEC" or "SPEC" strings (checked when parsed)
  int64_t seeds = 1;
  double scale = 1;
  std::string reference;  // the row paired differences are taken to

  template <typename Self, typename Visit>
  static void fields(Self& s, Visit&& v) {
    v("inputs", s.inputs);
    v("seeds", s.seeds);
    v("scale", s.scale);
    v("reference", s.reference);
  }
};

}  // namespace timfusion::train
