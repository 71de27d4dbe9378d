// timfusion: errors reported to users.
#pragma once
#include <stdexcept>
#include <string>

namespace timfusion {

// Every failure that a user can cause (bad file, bad argument, bad image)
// is reported as an Error whose what() is a complete, plain sentence.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace timfusion
