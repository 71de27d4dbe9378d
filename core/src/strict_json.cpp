#include "strict_json.h"

#include <set>
#include <vector>

#include "timfusion/error.h"

using nlohmann::json;

namespace timfusion {

json parse_strict_json(const char* begin, const char* end, const JsonLimits& limits) {
  std::vector<std::set<std::string>> keys;  // the keys seen in each open object
  size_t items = 0;
  auto check = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    using E = json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        if (depth >= limits.max_depth)
          throw Error("JSON nested more than " + std::to_string(limits.max_depth) + " levels deep");
        if (event == E::object_start) keys.emplace_back();
        break;
      case E::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case E::key: {
        if (keys.empty()) break;
        if (depth == 1 && keys.back().size() >= limits.max_top_level_keys)
          throw Error("more than " + std::to_string(limits.max_top_level_keys) + " entries");
        std::string k = parsed.get<std::string>();
        if (!keys.back().insert(k).second) {
          if (k.size() > 80) k = k.substr(0, 80) + "...";
          throw Error("the key \"" + k + "\" appears twice in one object");
        }
        [[fallthrough]];
      }
      case E::value:
        if (++items > limits.max_items)
          throw Error("more than " + std::to_string(limits.max_items) + " JSON values");
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(begin, end, check);
  } catch (const json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 5: ...": keep the readable part.
    std::string what = e.what();
    const size_t bracket = what.find("] ");
    throw Error("not valid JSON (" + (bracket == std::string::npos ? what : what.substr(bracket + 2)) + ")");
  }
}

}  // namespace timfusion
