#include "timfusion/output_guard.h"

#include <filesystem>
#include <system_error>

#include "timfusion/error.h"

namespace fs = std::filesystem;

namespace timfusion {

void refuse_output_over_inputs(const std::string& output, const std::vector<std::string>& inputs,
                               const std::string& what) {
  for (const auto& input : inputs) {
    std::error_code ec;
    // equivalent() is false (with ec set) when either does not exist: an output
    // not written yet cannot be an existing input.
    if (!fs::equivalent(output, input, ec) || ec) continue;
    throw Error(output + ": the " + what + " is the input " + input +
                " (it would be overwritten): choose another " + what);
  }
}

}  // namespace timfusion
