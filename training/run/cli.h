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

namespace timfusion::train {

struct CliArgs {
  std::string config_file;
  std::vector<std::pair<std::string, json>> overrides;  // in command-line order
  std::string resume;  // run folder to continue
  long stop_at = -1;
  bool quiet = false;
  bool help = false, help_config = false;
};

// Parses argv[first..]; throws Error for unknown options or missing values.
CliArgs parse_cli(int argc, char** argv, int first);

// The configuration a command runs with: defaults < --config < overrides,
// or for --resume the run folder's config.json < the overrides it allows
// (steps, checkpoint_every, preview_*; anything else would change the run).
Config resolve_config(const CliArgs& a);

// A value on the command line: its JSON when it parses as JSON, else the text
// as a string (--set KEY=VALUE, shorthand flags).
json parse_value(const std::string& text);

// Help text for the shared options.
const char* cli_help();

}  // namespace timfusion::train
