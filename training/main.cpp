// timfusion-train: training tools for TIM fusion networks.
//
//   timfusion-train <command> [options]      (timfusion-train <command> --help)
//
// Commands are listed in kCommands; each lives in its own folder
// (train/ ...) and shares run/ (config, run folder, checkpoints, logs),
// data/ (pairs, crops), losses/ (fusion losses) and task/ (task networks).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "commands.h"
#include "meta/commands.h"
#include "search/commands.h"
#include "timfusion/error.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv, int first);  // nullptr: not implemented yet
};

const Command kCommands[] = {
    {"train", "train a fusion network with fusion losses, optionally task-guided (--task)", timfusion::train::cmd_train},
    {"search", "implicit architecture search with a latency budget (IAS)", timfusion::train::cmd_search},
    {"meta", "meta-initialisation over several fusion tasks (Reptile)", timfusion::train::cmd_meta},
    {"adapt", "fine-tune a (meta-)initialised network to one task; --compare runs", timfusion::train::cmd_adapt},
};

void usage(FILE* out) {
  std::fputs("Usage: timfusion-train <command> [options]   (timfusion-train <command> --help)\n\nCommands:\n", out);
  for (const auto& c : kCommands) std::fprintf(out, "  %-8s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    if (!c.run) {
      std::fprintf(stderr, "timfusion-train: \"%s\" is not implemented yet\n", c.name);
      return 2;
    }
    try {
      return c.run(argc, argv, 2);
    } catch (const timfusion::Error& e) {
      std::fprintf(stderr, "\ntimfusion-train %s: error: %s\n", c.name, e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "\ntimfusion-train %s: internal error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "timfusion-train: unknown command \"%s\"\n", argv[1]);
  usage(stderr);
  return 2;
}
