// What a test expects of a failure: the message of the timfusion::Error a
// call throws. Header-only: the support library does not link the core.
#pragma once
#include <string>

#include "timfusion/error.h"

namespace tftest {

// The message of the timfusion::Error that f throws, or "(no error)".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const timfusion::Error& e) {
    return e.what();
  }
  return "(no error)";
}

inline bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace tftest
