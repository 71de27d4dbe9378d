#include "test_support.h"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <fstream>
#include <iterator>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

namespace fs = std::filesystem;

namespace tftest {

static std::string env_or_fail(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    ADD_FAILURE() << name << " is not set: run the tests through meson test";
    return ".";
  }
  return v;
}

std::string data_dir() {
  std::string d = env_or_fail("TIMFUSION_DATA_DIR");
  if (!fs::is_directory(d)) ADD_FAILURE() << "shared data not found at " << d;
  return d;
}

std::string data(const std::string& relative) { return data_dir() + "/" + relative; }
std::string fixtures(const std::string& relative) {
  return env_or_fail("TIMFUSION_FIXTURES_DIR") + "/" + relative;
}
std::string build_dir() { return env_or_fail("TIMFUSION_BUILD_DIR"); }

namespace {
std::mutex g_mu;
// Leaked on purpose: it must outlive g_cleaner, which empties it at exit.
std::vector<std::string>& dirs() {
  static auto* d = new std::vector<std::string>;
  return *d;
}
struct Cleaner {
  ~Cleaner() {
    std::error_code ec;
    for (auto& d : dirs()) fs::remove_all(d, ec);
  }
} g_cleaner;
}  // namespace

std::string temp_dir(const std::string& tag) {
  std::string templ = (fs::temp_directory_path() / ("timfusion-" + tag + "-XXXXXX")).string();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) {
    ADD_FAILURE() << "mkdtemp failed for " << templ;
    return "/tmp";
  }
  std::lock_guard<std::mutex> lock(g_mu);
  dirs().push_back(buf.data());
  return buf.data();
}

int run(const std::string& command, std::string* output) {
  std::string cmd = command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Measured run_measured(const std::string& cmd) {
  Measured r;
  const std::string log = temp_dir("measured-run") + "/log";
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", (cmd + " >'" + log + "' 2>&1").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.max_rss_mb = ru.ru_maxrss / 1024;
  std::ifstream f(log);
  r.out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return r;
}

}  // namespace tftest
