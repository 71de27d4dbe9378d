#include "run/cli.h"

#include <filesystem>
#include <map>
#include <set>

#include "timfusion/error.h"

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {

const std::map<std::string, std::string>& shorthands() {
  static const std::map<std::string, std::string> m = {
      {"--arch", "arch"},       {"--channels", "channels"},
      {"--init", "init"},       {"--seed", "seed"},
      {"--steps", "steps"},     {"--batch", "batch"},
      {"--crop", "crop"},       {"--lr", "lr"},
      {"--threads", "threads"}, {"--out", "out"},
      {"--lambda", "task.lambda"}, {"--task-labels", "task.labels"},
      {"--checkpoint-every", "checkpoint_every"}, {"--preview-every", "preview_every"},
  };
  return m;
}

}  // namespace

void set_from_command_line(Config& c, const std::string& key, const json& value, const std::string& origin) {
  try {
    c.set(key, value, origin);
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {  // unknown key, bad value: the user's command line
    throw UsageError(e.what());
  }
}

json parse_value(const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception&) {
    return text;
  }
}

const char* cli_help() {
  return "Configuration (later wins: defaults < --config FILE < command line, in order):\n"
         "  --config FILE        JSON file with any of the keys below (nested objects or dotted keys)\n"
         "  --set KEY=VALUE      set one key (VALUE is JSON, or a plain string)\n"
         "  --data DIR           dataset folder with ir/ and vis/ (repeatable; replaces the config's list)\n"
         "  --exclude FILE       base names to leave out of the preceding --data (e.g. a test split)\n"
         "  --arch NAME|FILE --channels N --init W.safetensors --seed N --steps N --batch N\n"
         "  --crop N --lr X --threads N --out DIR --checkpoint-every N --preview-every N\n"
         "                       shorthands for the keys of the same name\n"
         "  --task               task guidance on (task.enabled=true); --lambda X, --task-labels L\n"
         "  --no-flip            no random flips\n"
         "Run control:\n"
         "  --resume DIR         continue the run in DIR from its last checkpoint (same result as an\n"
         "                       uninterrupted run); --steps N may extend it\n"
         "  --stop-at N          leave after step N without a checkpoint, as a kill would (for tests)\n"
         "  --quiet              no progress output\n"
         "  --help-config        list every configuration key with its default and meaning\n"
         "  --version            print the version and exit\n";
}

CliArgs parse_cli(int argc, char** argv, int first) {
  CliArgs a;
  bool data_replaced = false;
  json data_list = json::array();
  auto push_data = [&]() {
    a.overrides.erase(std::remove_if(a.overrides.begin(), a.overrides.end(), [](auto& o) { return o.first == "data"; }),
                      a.overrides.end());
    a.overrides.emplace_back("data", data_list);
  };
  for (int i = first; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(k + " needs a value");
      return argv[++i];
    };
    // --key=value spelling for every option that takes a value.
    std::string inline_value;
    bool has_inline = false;
    if (k.rfind("--", 0) == 0 && k.find('=') != std::string::npos && k.rfind("--set", 0) != 0) {
      inline_value = k.substr(k.find('=') + 1);
      k = k.substr(0, k.find('='));
      has_inline = true;
    }
    auto val = [&]() { return has_inline ? inline_value : value(); };
    if (k == "--help" || k == "-h") a.help = true;
    else if (k == "--help-config") a.help_config = true;
    else if (k == "--config") a.config_file = val();
    else if (k == "--set") {
      std::string s = value();
      auto eq = s.find('=');
      if (eq == std::string::npos || eq == 0) throw UsageError("--set expects KEY=VALUE, got \"" + s + "\"");
      a.overrides.emplace_back(s.substr(0, eq), parse_value(s.substr(eq + 1)));
    } else if (k == "--data") {
      if (!data_replaced) data_list = json::array(), data_replaced = true;
      data_list.push_back(json{{"dir", val()}});
      push_data();
    } else if (k == "--exclude") {
      if (data_list.empty()) throw UsageError("--exclude must follow a --data DIR");
      data_list.back()["exclude"] = val();
      push_data();
    } else if (k == "--task") a.overrides.emplace_back("task.enabled", true);
    else if (k == "--no-flip") a.overrides.emplace_back("flip", false);
    else if (k == "--resume") a.resume = val();
    else if (k == "--quiet" || k == "-q") a.quiet = true;
    else if (k == "--stop-at") {
      std::string v = val();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 0) throw UsageError("--stop-at needs a step number, got \"" + v + "\"");
      a.stop_at = n;
    } else if (shorthands().count(k)) {
      a.overrides.emplace_back(shorthands().at(k), parse_value(val()));
    } else {
      throw UsageError("unknown option \"" + k + "\"");
    }
  }
  return a;
}

Config resolve_config(const CliArgs& a) {
  Config c = Config::defaults();
  if (!a.resume.empty()) {
    if (!a.config_file.empty()) throw Error("--resume takes the run folder's config.json; drop --config");
    std::string path = a.resume + "/config.json";
    if (!fs::exists(path)) throw Error(a.resume + ": not a run folder (no config.json)");
    c.merge_file(path);
    static const std::set<std::string> allowed = {"steps", "checkpoint_every", "preview_every", "preview_pairs",
                                                  "preview_size"};
    for (const auto& [k, v] : a.overrides) {
      if (!allowed.count(k))
        throw UsageError("cannot change \"" + k + "\" when resuming (it would not continue the same run); only steps, "
                    "checkpoint_every and preview_* may change");
      set_from_command_line(c, k, v, "command line");
    }
    c.set("out", a.resume, "--resume");
  } else {
    if (!a.config_file.empty()) c.merge_file(a.config_file);
    for (const auto& [k, v] : a.overrides) set_from_command_line(c, k, v, k == "data" ? "--data" : "command line");
  }
  c.validate();
  return c;
}

}  // namespace timfusion::train
