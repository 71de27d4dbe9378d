// timfusion: exceptions from the libraries core uses, as one clean line.
#pragma once
#include <string>

namespace timfusion {

// For a catch (...) at a boundary (a tool's main(), the element, the Fuser):
// the exception in flight as one clean line. LibTorch errors lose their C++
// backtrace, OpenCV ones their source location, std::bad_alloc reads "out of
// memory", a timfusion::Error keeps its text. Call only inside a catch block.
std::string current_exception_message();

// Inside a catch block: throws Error(prefix + current_exception_message()).
[[noreturn]] void rethrow_as_error(const std::string& prefix = "");

}  // namespace timfusion
