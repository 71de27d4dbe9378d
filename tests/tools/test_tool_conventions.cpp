// Every timfusion tool follows one command-line convention (core/tools/tool_cli.h):
// --help and --version on stdout with exit 0, a usage error as one line on stderr
// naming the option with exit 2, numbers validated.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_support.h"
#include "timfusion/version.h"

namespace {

struct Tool {
  std::string name, path, command;  // command: what precedes the options (a subcommand)
  std::string numeric_option;       // an option that takes a number
};

std::vector<Tool> tools() {
  const std::string b = tftest::build_dir() + "/";
  return {
      {"timfusion-fuse", b + "core/timfusion-fuse", "", "--threads"},
      {"timfusion-eval", b + "core/timfusion-eval", "", ""},
      {"timfusion-bench", b + "core/timfusion-bench", "", "--frames"},
      {"timfusion-gst-bench", b + "gst-plugin/timfusion-gst-bench", "", "--frames"},
      {"timfusion-train", b + "training/timfusion-train", " train", "--steps"},
  };
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// Exit status, stdout and stderr separately.
int run(const std::string& cmd, std::string* out, std::string* err) {
  const std::string dir = tftest::temp_dir("tool-cli");
  // In a shell of its own: tftest::run appends "2>&1", which would send the
  // tool's stderr into the out file.
  const int rc = tftest::run("sh -c '(" + cmd + ") >" + dir + "/out 2>" + dir + "/err'");
  tftest::run("cat " + dir + "/out", out);
  tftest::run("cat " + dir + "/err", err);
  return rc;
}

}  // namespace

TEST(ToolConventions, HelpExitsZeroOnStdout) {
  for (const auto& t : tools()) {
    std::string out, err;
    EXPECT_EQ(run(t.path + t.command + " --help", &out, &err), 0) << t.name << ": " << err;
    EXPECT_NE(out.find("sage"), std::string::npos) << t.name << " --help: " << out;  // "Usage:" / "usage:"
    EXPECT_NE(out.find("--version"), std::string::npos) << t.name << " --help lists --version: " << out;
  }
}

TEST(ToolConventions, VersionIsTheProjectVersion) {
  for (const auto& t : tools()) {
    std::string out, err;
    EXPECT_EQ(run(t.path + " --version", &out, &err), 0) << t.name << ": " << err;
    EXPECT_EQ(out, t.name + " " + TIMFUSION_VERSION + "\n") << t.name;
  }
  std::string out, err;  // after a subcommand too
  EXPECT_EQ(run(tftest::build_dir() + "/training/timfusion-train train --version", &out, &err), 0) << err;
  EXPECT_EQ(out, std::string("timfusion-train ") + TIMFUSION_VERSION + "\n");
}

TEST(ToolConventions, UnknownOptionIsOneLineAndExitTwo) {
  for (const auto& t : tools()) {
    std::string out, err;
    EXPECT_EQ(run(t.path + t.command + " --frobnicate", &out, &err), 2) << t.name << ": " << err;
    ASSERT_EQ(lines(err).size(), 1u) << t.name << ": " << err;
    EXPECT_EQ(err.rfind(t.name, 0), 0u) << t.name << " names itself first: " << err;
    EXPECT_NE(err.find("--frobnicate"), std::string::npos) << t.name << ": " << err;
    EXPECT_TRUE(out.empty()) << t.name << ": " << out;
  }
}

TEST(ToolConventions, NumbersAreValidated) {
  for (const auto& t : tools()) {
    if (t.numeric_option.empty()) continue;
    std::string out, err;
    EXPECT_EQ(run(t.path + t.command + " " + t.numeric_option + " abc", &out, &err), 2) << t.name << ": " << err;
    ASSERT_EQ(lines(err).size(), 1u) << t.name << ": " << err;
    EXPECT_NE(err.find(t.numeric_option.substr(2)), std::string::npos) << t.name << " names the option: " << err;
    EXPECT_NE(err.find("abc"), std::string::npos) << t.name << " quotes the value: " << err;
  }
}

TEST(ToolConventions, RuntimeFailureIsOneLineAndExitOne) {
  // A model file that is not a safetensors file: the loader's error, one line, exit 1.
  const std::string dir = tftest::temp_dir("tool-fail");
  ASSERT_EQ(tftest::run("echo 'not a model' > " + dir + "/bad.safetensors"), 0);
  std::string out, err;
  EXPECT_EQ(run(tftest::build_dir() + "/core/timfusion-bench --quick --frames 1 --model " + dir + "/bad.safetensors",
                &out, &err),
            1)
      << err;
  ASSERT_EQ(lines(err).size(), 1u) << err;
  EXPECT_EQ(err.rfind("timfusion-bench: ", 0), 0u) << err;
  EXPECT_NE(err.find("bad.safetensors"), std::string::npos) << err;
}
