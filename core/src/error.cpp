// Exceptions from the libraries core uses, as one clean line for users.
#include "timfusion/error_message.h"

#include "timfusion/error.h"

#include <c10/util/Exception.h>
#include <opencv2/core.hpp>

#include <filesystem>
#include <new>

namespace timfusion {

namespace {

// One line, bounded: LibTorch messages can span lines (and quote tensors).
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  if (s.size() > 400) s = s.substr(0, 400) + "...";
  return s;
}

}  // namespace

std::string current_exception_message() {
  try {
    throw;
  } catch (const Error& e) {
    return e.what();
  } catch (const c10::Error& e) {
    // what() appends a C++ backtrace ("Exception raised from ... frame #0"): users get the message.
    return one_line(e.what_without_backtrace());
  } catch (const cv::Exception& e) {
    // what() carries OpenCV's source file and line; err is the message itself.
    return one_line("OpenCV: " + e.err + (e.func.empty() ? "" : " (in " + e.func + ")"));
  } catch (const std::bad_alloc&) {
    return "out of memory";
  } catch (const std::filesystem::filesystem_error& e) {
    return one_line(e.what());
  } catch (const std::exception& e) {
    return one_line(e.what());
  } catch (...) {
    return "unknown error";
  }
}

void rethrow_as_error(const std::string& prefix) {
  try {
    throw;
  } catch (const Error& e) {
    if (prefix.empty()) throw;
    throw Error(prefix + e.what());
  } catch (...) {
    throw Error(prefix + current_exception_message());
  }
}

}  // namespace timfusion
