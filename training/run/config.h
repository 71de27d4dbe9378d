// timfusion-train: run configuration = a JSON object with a fixed schema.
//
// Sources, later ones winning: the schema's defaults, a JSON file
// (--config FILE), then the command line in order (--set key=value and the
// explicit flags, which are shorthands for keys). Nested keys are written
// with dots: --set loss.ssim=0.5. Unknown keys and values of the wrong type
// or out of range are errors that name the key. The resolved config is
// written to the run folder (config.json) and is all --resume needs.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "run/train_settings.h"

namespace timfusion::train {

using json = nlohmann::json;

// Data: the "data" list; Json: any JSON of the default's type (the keys of
// run/command_config.h's command sections).
enum class KeyType { Int, Number, Bool, String, Data, Json };

struct KeySpec {
  std::string key;  // dotted path, e.g. "loss.ssim" (in a command section: without the section prefix)
  KeyType type;
  json def;
  double min = 0, max = 0;            // for Int/Number when min < max
  std::vector<std::string> choices;   // for String, when not empty
  std::string help;
};

// One data source as resolved: an IR and a visible folder (pairs by base
// name), optionally a label folder, minus the names in an exclude list.
struct DataSource {
  std::string ir, vis, labels;
  std::string exclude;  // file listing base names to leave out ("" = none)
  std::string str() const;
};

// The values live in the typed members of TrainSettings (cfg.loss.ssim); set() and merge() check a key
// against the table and store it there (user input goes through them: a member assigned directly skips
// the table's checks), and values() writes them back as the JSON object this file describes.
class Config : public TrainSettings {
 public:
  // The schema of the `train` command (search/meta/adapt extend it).
  static const std::vector<KeySpec>& schema();
  // Every key at its default.
  Config();
  static Config defaults() { return Config(); }

  // Deep-merges a JSON object; throws Error for unknown keys / bad values.
  void merge(const json& j, const std::string& origin);
  void merge_file(const std::string& path);
  // "key=value": value parsed as JSON when it parses, else as a string.
  void set(const std::string& assignment);
  void set(const std::string& key, const json& value, const std::string& origin);
  // Checks cross-key constraints (e.g. crop vs. SSIM window).
  void validate() const;

  // The "data" key normalised; a dataset folder "D" means D/ir + D/vis.
  std::vector<DataSource> data_sources() const;
  // The task dataset (task.data, task.labels) as a source.
  DataSource task_source() const;

  // The configuration as a JSON object (nested by the keys' dots).
  json values() const;
  std::string dump() const { return values().dump(2); }
  // Human-readable list of keys, defaults and meanings (--help-config).
  static std::string describe();
};

// The shared data folder: $TIMFUSION_DATA_DIR when set, else (uninstalled build)
// the one meson was configured with, else ../shared/data; as given (it may be relative).
std::string data_root();

// The learning rate of step k: linear warm-up, then cosine (lr -> lr_min) or
// constant (keys lr, lr_min, lr_schedule, warmup, steps).
double scheduled_lr(const Config& cfg, int64_t k);

// "  <prefix><key> = <default>\n      <help> [<choices>]\n" for each key (--help-config).
std::string describe_keys(const std::vector<KeySpec>& keys, const std::string& prefix);

// `v` coerced to the type of key `k` (named `name` in messages), with its
// choices and range checked; throws Error "<where>: bad value V for "<name>": why".
json coerce_value(const KeySpec& k, json v, const std::string& name, const std::string& where);

// A source spec given on the command line ("DIR" or "DIR:EXCLUDE_FILE" is
// not used: --data DIR [--exclude FILE]) as JSON.
json data_entry(const std::string& dir, const std::string& exclude);

}  // namespace timfusion::train
