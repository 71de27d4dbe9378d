// timfusion: JSON from files that users did not write themselves.
//
// nlohmann::json accepts any nesting depth (a 100 MB "[[[[..." header costs
// gigabytes) and silently keeps the last of two equal keys (a second
// "__metadata__" or tensor entry would override the first unseen). This parse
// rejects both, and caps the number of entries, while parsing: it stops at the
// first offending token instead of building the whole document first.
// Internal header (src/): nlohmann::json is not part of the public API.
#pragma once
#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace timfusion {

struct JsonLimits {
  int max_depth = 8;                   // nested objects/arrays, the outermost counts 1
  size_t max_top_level_keys = 65536;   // members of the outermost object
  size_t max_items = size_t{1} << 20;  // keys plus scalar values in the whole document
};

// Throws Error("<problem>") (no path: callers prefix it).
nlohmann::json parse_strict_json(const char* begin, const char* end, const JsonLimits& limits = {});
inline nlohmann::json parse_strict_json(const std::string& text, const JsonLimits& limits = {}) {
  return parse_strict_json(text.data(), text.data() + text.size(), limits);
}

}  // namespace timfusion
