// Binding of dotted configuration keys to the members of a typed settings
// struct. A struct lists its keys once, in a static `fields(self, visit)`
// that calls visit("loss.ssim", self.loss.ssim) for each member; these
// visitors then read, write or assign through that one list. Why: the key
// tables (run/config.cpp, the command sections) stay the single source of
// defaults, bounds and help, while the code reads `cfg.loss.ssim` - a
// misspelt member does not compile, and a key missing from either side is
// found by the first read (read_fields checks both directions).
// No LibTorch in this header.
#pragma once
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "timfusion/error.h"

namespace timfusion::train {

// The value at a dotted key ("loss.ssim") of a JSON object, or nullptr.
inline const nlohmann::json* find_dotted(const nlohmann::json& root, const std::string& key) {
  const nlohmann::json* cur = &root;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(part);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// Assigns `value` (already coerced to the key's type) to the member bound
// to `key`; `found` says whether one was.
struct AssignField {
  const std::string& key;
  const nlohmann::json& value;
  bool found = false;
  template <typename T>
  void operator()(const char* k, T& field) {
    if (found || key != k) return;
    field = value.get<T>();
    found = true;
  }
};

// Writes every member under its dotted key into a JSON object.
struct WriteFields {
  nlohmann::json& root;
  template <typename T>
  void operator()(const char* k, const T& field) {
    nlohmann::json* cur = &root;
    const std::string key = k;
    size_t start = 0;
    while (true) {
      size_t dot = key.find('.', start);
      std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      cur = &(*cur)[part];
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    *cur = field;
  }
};

// Collects the keys a struct binds (to check them against its key table).
struct CollectKeys {
  std::set<std::string> keys;
  template <typename T>
  void operator()(const char* k, const T&) {
    if (!keys.insert(k).second) throw Error(std::string("internal: config key \"") + k + "\" bound twice");
  }
};

// Reads a settings struct S from a resolved JSON object that holds every
// key (a command's section): an internal error names a key the struct binds
// but the object lacks, or one the object has but the struct does not bind.
template <typename S>
S read_fields(const nlohmann::json& root, const std::string& what) {
  S s;
  size_t bound = 0;
  S::fields(s, [&](const char* k, auto& field) {
    const nlohmann::json* v = find_dotted(root, k);
    if (!v) throw Error("internal: " + what + " key \"" + k + "\" missing");
    field = v->get<std::decay_t<decltype(field)>>();
    ++bound;
  });
  if (bound != root.size()) {
    CollectKeys c;
    S::fields(static_cast<const S&>(s), c);
    for (auto it = root.begin(); it != root.end(); ++it)
      if (!c.keys.count(it.key())) throw Error("internal: " + what + " key \"" + it.key() + "\" has no typed field");
  }
  return s;
}

}  // namespace timfusion::train
