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

struct CliArgs {
  std::string config_file;
  std::vector<std::pair<std::string, json>> overrides;  // in command-line order
  std::string resume;  // run folder to continue
  long stop_at = -1;
  bool quiet = false;
  bool help = false, help_config = false;
};

// Parses argv[first..]; throws UsageError for unknown options or missing values.
CliArgs parse_cli(int argc, char** argv, int first);

// The configuration a command runs with: defaults < --config < overrides,
// or for --resume the run folder's config.json < the overrides it allows
// (steps, checkpoint_every, preview_*; anything else would change the run).
Config resolve_config(const CliArgs& a);

// A value on the command line: its JSON when it parses as JSON, else the text
// as a string (--set KEY=VALUE, shorthand flags).
json parse_value(const std::string& text);

// c.set(key, value, origin) for a value from the command line: a bad key or value
// is a UsageError (the config layer's own message, with its typo hint).
void set_from_command_line(Config& c, const std::string& key, const json& value, const std::string& origin);

// Help text for the shared options.
const char* cli_help();

}  // namespace timfusion::train
