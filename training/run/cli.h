// timfusion-train: command-line options shared by the subcommands.
//
//   --config FILE       JSON configuration (applied first)
//   --set KEY=VALUE     any config key (dotted for nested: loss.ssim=0.5)
//   shorthand flags     --steps N, --batch N, --crop N, --lr X, ... = --set
//   --data DIR          a dataset folder with ir/ and vis/ (repeatable; the
//                       first --data replaces the config's list)
//   --exclude FILE      names to leave out of the preceding --data
//   --out DIR           run folder; --resume DIR continues one
#pragma once
#include <string>
#include <vector>

#include "run/config.h"
#include "timfusion/error.h"

namespace timfusion::train {

// A mistake on the command line (unknown option, missing or bad value, a bad
// --set): timfusion-train reports it in one line and exits 2, like every tool.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Data-parallel training (`train` only): this process is rank `rank` of
// `world_size`; rank 0 hosts the rendezvous at master_addr:master_port.
// From --world-size N --rank R --master ADDR:PORT, or torchrun's variables
// WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT (and LOCAL_RANK: the GPU).
struct ParallelSpec {
  int world_size = 1, rank = 0, local_rank = -1;
  std::string master_addr;
  int master_port = 0;
  bool active() const { return world_size > 1; }
};

struct CliArgs {
  std::string config_file;
  std::vector<std::pair<std::string, json>> overrides;  // in command-line order
  std::string resume;  // run folder to continue
  long stop_at = -1;
  bool quiet = false;
  bool help = false, help_config = false;
  ParallelSpec parallel;
};

// Parses argv[first..]; throws UsageError for unknown options or missing values.
CliArgs parse_cli(int argc, char** argv, int first);

// The configuration is resolved from these by run/command_config.h's
// resolve_command_config (all four commands).

// The command line's --world-size / --rank / --master, else the
// environment's (torchrun); checks them (throws Error naming the problem).
ParallelSpec resolve_parallel(int world_size, int rank, const std::string& master);

// A value on the command line: its JSON when it parses as JSON, else the text
// as a string (--set KEY=VALUE, shorthand flags).
json parse_value(const std::string& text);

// c.set(key, value, origin) for a value from the command line: a bad key or value
// is a UsageError (the config layer's own message, with its typo hint).
void set_from_command_line(Config& c, const std::string& key, const json& value, const std::string& origin);

// Help text for the shared options.
const char* cli_help();

}  // namespace timfusion::train
