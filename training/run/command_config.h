// timfusion-train train / search / meta / adapt: configuration on top of
// run/config, the run folder and the run control options; the one place
// where a command's options are resolved.
//
// The shared keys (data, seed, steps, batch, crop, lr, threads, loss.*, ...)
// are run/config.h's Config, unchanged (all `train` needs). search, meta and
// adapt add their own keys in one section of the same JSON ("search": {...}, "meta": {...},
// "adapt": {...}): config files may hold the section, `--set
// search.latency_weight=0.02` sets one of its keys, and a few flags are
// shorthands. The run folder's config.json holds both, so --resume works as
// for `train` (only steps, checkpoint_every and preview_* may change).
//
// Why a wrapper: run/config's schema is fixed to `train`'s keys (no hook
// to extend it), so the section is split off before Config sees the JSON.
// No LibTorch in this header.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "run/cli.h"
#include "run/config.h"
#include "run/run_loop.h"
#include "run/typed_fields.h"

namespace timfusion::train {

struct CommandSpec {
  std::string name;                            // "search", also the section key
  std::vector<KeySpec> keys;                   // the section's schema (Int, Number, Bool, String, Json)
  json base_defaults = json::object();         // command defaults of shared keys (before --config)
  std::map<std::string, std::string> flags;    // extra shorthand flag -> "section.key" or shared key
  bool data_required = true;                   // run Config::validate()'s data check
  bool data_parallel = false;                  // takes --world-size / --rank / --master (train)
};

struct CommandConfig {
  Config base;                // the shared keys, typed (cfg.base.loss.ssim)
  json own = json::object();  // the section, every key present
  std::string section;

  // The section as its typed struct S (S::fields binds its keys, as
  // TrainSettings does): read once by the command that owns the section.
  template <typename S>
  S typed_section() const {
    return read_fields<S>(own, section);
  }
  // Shared keys and the section, as written to the run folder.
  json values() const;
  std::string dump() const { return values().dump(2); }
};

// What the runner of a command (train, search, meta, adapt) holds besides its
// networks and data: configuration, run folder, quietness, and the progress
// that its checkpoints store.
struct CommandState : RunProgress {
  CommandState(CommandConfig config, std::string run_dir, bool quiet)
      : cfg(std::move(config)), dir(std::move(run_dir)), quiet(quiet) {}

  CommandConfig cfg;
  std::string dir;
  bool quiet = true;
};

struct CommandArgs {
  CliArgs cli;
  std::vector<std::pair<std::string, json>> own;  // section overrides, in order
};

// Splits argv[first..] into the shared options (run/cli's parse_cli) and
// the section's (--set SECTION.key=value and the spec's flags).
CommandArgs parse_command_args(int argc, char** argv, int first, const CommandSpec& spec);

// defaults < spec.base_defaults < --config FILE < command line; or, with
// --resume, the run folder's config.json < the few overrides it allows.
CommandConfig resolve_command_config(const CommandArgs& a, const CommandSpec& spec);

// "--help-config" text: the shared keys and the section's.
std::string describe_command_config(const CommandSpec& spec);

// A command's run once its options are read: the configuration, the
// prepared run folder and the run control options.
struct CommandRun {
  CommandConfig cfg;
  std::string dir;
  bool dir_created = false;  // prepare_run_dir made the folder (forget_run_dir may remove it)
  bool quiet = false, resume = false;
  long stop_at = -1;
  std::string command_line;
  ParallelSpec parallel;  // world size 1 unless the spec is data_parallel
};

// Reads argv[first..] for `spec`. --help prints `usage` and the shared
// options, --help-config the keys; both return nothing. Otherwise resolves
// the configuration and prepares the run folder.
std::optional<CommandRun> start_command(int argc, char** argv, int first, const CommandSpec& spec, const char* usage);

// A whole command for a Runner with Runner(cfg, run_dir, quiet) and
// run(stop_at, resume, command_line) -> exit status.
template <typename Runner>
int run_command(int argc, char** argv, int first, const CommandSpec& spec, const char* usage) {
  std::optional<CommandRun> r = start_command(argc, argv, first, spec, usage);
  if (!r) return 0;
  Runner runner(r->cfg, r->dir, r->quiet);
  return runner.run(r->stop_at, r->resume, r->command_line);
}

// Sets the section key (coerced and range-checked; throws Error naming it).
void set_section_key(CommandConfig& c, const CommandSpec& spec, const std::string& key, const json& value,
                     const std::string& origin);

// Data entries with the extensions of these commands, resolved to sources:
// an entry is a folder ("DIR" with ir/ and vis/), or {"dir"} or {"ir","vis"},
// plus optionally "exclude" (a names file) or "split" (a file of lines
// "<name> <part>", as harvard_medical's split.txt) with "use" (the part to
// keep, default "train"). Split lists become exclude files under
// `work_dir`/splits/. Paths are made absolute.
std::vector<DataSource> resolve_sources(const json& entries, const std::string& work_dir, const std::string& what);
// The same entries with absolute paths (for config.json, so --resume works anywhere).
json absolutize_entries(const json& entries);

// A task folder: ir/ + vis/, or (harvard_medical layout) two image folders
// one of which is mri/ (MRI goes in the "ir" slot), with a split.txt.
// Returns {train entry, test entry}.
std::pair<json, json> split_dir_entries(const std::string& dir);

// Creates a fresh run folder (error if it already holds a run) or checks a
// resumed one; returns its absolute path and stores it as "out". In
// data-parallel runs only rank 0 creates or checks it (it alone writes there).
// *created: whether this call made the folder.
std::string prepare_run_dir(CommandConfig& c, const CommandArgs& a, bool* created = nullptr);
// A run that failed before writing anything (bad data: a 1x1 image, a missing
// partner) leaves no empty run folder behind: removes r.dir when this command
// created it and it is still empty.
void forget_run_dir(const CommandRun& r);
// Writes config.json.
void write_run_config(const CommandConfig& c, const std::string& dir);

}  // namespace timfusion::train
