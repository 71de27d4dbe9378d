// timfusion: a terminal progress bar with ETA for long-running tools.
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

namespace timfusion {

// Draws "label [#####.....] 12/50 1.2 it/s ETA 00:31 <status>" on stderr,
// redrawn in place when stderr is a terminal, every ~10% otherwise.
class Progress {
 public:
  Progress(std::string label, long total, bool enabled = true);
  void update(long done, const std::string& status = "");
  void finish(const std::string& status = "");

 private:
  std::string label_;
  long total_;
  bool enabled_;
  bool tty_;
  long last_logged_ = -1;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace timfusion
