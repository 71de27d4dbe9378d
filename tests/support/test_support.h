// Paths and temporary folders for timfusion tests.
#pragma once
#include <string>

namespace tftest {

// ../shared/data (TIMFUSION_DATA_DIR); fails the test if it is missing.
std::string data_dir();
std::string data(const std::string& relative);  // data_dir()/relative
std::string fixtures(const std::string& relative);
std::string build_dir();
// A fresh empty folder under the system temp dir, removed at exit.
std::string temp_dir(const std::string& tag);
// Runs a shell command; returns its exit status and stdout+stderr.
int run(const std::string& command, std::string* output = nullptr);

// Runs a shell command in a child process: its exit status, stdout+stderr,
// peak RSS (MB, the child's own, from wait4) and wall seconds.
struct Measured {
  int rc = -1;
  std::string out;
  long max_rss_mb = 0;
  double seconds = 0;
};
Measured run_measured(const std::string& cmd);

}  // namespace tftest
