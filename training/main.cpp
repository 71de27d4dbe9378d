// timfusion-train: training tools for TIM fusion networks.
//
//   timfusion-train <command> [options]      (timfusion-train <command> --help)
//
// Commands are listed in kCommands; each lives in its own folder
// (train/ ...) and shares run/ (config, run folder, checkpoints, logs),
// data/ (pairs, crops), losses/ (fusion losses) and task/ (task networks).
// The command line follows every timfusion tool (core/tools/tool_cli.h):
// --help and --version exit 0, a usage error is one line and exit 2, any other
// failure one line and exit 1. Each command parses its own options through the
// configuration layer (run/cli.h: JSON + --set + shorthands, with typo hints).
#include <c10/util/Exception.h>  // c10::Error, caught at the boundary

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "commands.h"
#include "meta/commands.h"
#include "run/cli.h"
#include "search/commands.h"
#include "timfusion/error.h"
#include "tool_cli.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv, int first);
};

const Command kCommands[] = {
    {"train", "train a fusion network with fusion losses, optionally task-guided (--task)", timfusion::train::cmd_train},
    {"search", "implicit architecture search with a latency budget (IAS)", timfusion::train::cmd_search},
    {"meta", "meta-initialisation over several fusion tasks (Reptile)", timfusion::train::cmd_meta},
    {"downstream", "the downstream protocol: segmentation mIoU of IR, visible, blends and fused images", timfusion::train::cmd_downstream},
    {"adapt", "fine-tune a (meta-)initialised network to one task; --compare runs", timfusion::train::cmd_adapt},
};

void usage(FILE* out) {
  std::fputs("Usage: timfusion-train <command> [options]   (timfusion-train <command> --help)\n\nCommands:\n", out);
  for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fputs("\nOptions:\n  -h,--help  this text\n  --version  print the version and exit\n", out);
}

bool has_arg(int argc, char** argv, int first, const char* arg) {
  for (int i = first; i < argc; ++i)
    if (!std::strcmp(argv[i], arg)) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  namespace tool = timfusion::tool;
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(stdout);
    return 0;
  }
  if (has_arg(argc, argv, 1, "--version")) {
    std::printf("%s\n", tool::version_line("timfusion-train").c_str());
    return 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    const std::string name = std::string("timfusion-train ") + c.name;
    try {
      return tool::guarded_main(name, [&] {
        try {
          return c.run(argc, argv, 2);
        } catch (const timfusion::train::UsageError& e) {
          tool::usage_error(name, e.what());
        }
      });
    } catch (...) {
      return 1;  // guarded_main catches everything; this only keeps the compiler sure of it
    }
  }
  if (argv[1][0] == '-') tool::usage_error("timfusion-train", std::string("unknown option \"") + argv[1] + "\"");
  std::fprintf(stderr, "timfusion-train: unknown command \"%s\" (see timfusion-train --help)\n", argv[1]);
  usage(stderr);
  return 2;
}
