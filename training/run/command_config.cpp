#include "run/command_config.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "run/run_dir.h"
#include "timfusion/error.h"

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {

const KeySpec* find_key(const CommandSpec& spec, const std::string& key) {
  for (const auto& k : spec.keys)
    if (k.key == key) return &k;
  return nullptr;
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read the configuration file");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
}

// Flattens {"a": {"b": 1}} into "a.b" keys of the section (nested objects
// allowed for grouping only when no key of that name exists).
void merge_section(CommandConfig& c, const CommandSpec& spec, const json& j, const std::string& origin) {
  if (!j.is_object()) throw Error(origin + ": \"" + spec.name + "\" must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) set_section_key(c, spec, it.key(), it.value(), origin);
}

std::string rel_to(const std::string& base_dir, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  if (!base_dir.empty() && fs::exists(fs::path(base_dir) / p)) return (fs::path(base_dir) / p).string();
  return p;
}

}  // namespace

json CommandConfig::values() const {
  json v = base.values();
  if (!own.empty()) v[section] = own;  // `train` has no section of its own
  return v;
}

void set_section_key(CommandConfig& c, const CommandSpec& spec, const std::string& key, const json& value,
                     const std::string& origin) {
  const KeySpec* k = find_key(spec, key);
  if (!k) {
    std::string known;
    for (const auto& s : spec.keys) known += (known.empty() ? "" : ", ") + s.key;
    throw Error(origin + ": unknown key \"" + spec.name + "." + key + "\" (known: " + known + ")");
  }
  c.own[key] = coerce_value(*k, value, spec.name + "." + key, origin);
}

CommandArgs parse_command_args(int argc, char** argv, int first, const CommandSpec& spec) {
  CommandArgs a;
  std::vector<std::string> rest;
  const std::string prefix = spec.name + ".";
  auto route = [&](const std::string& key, const json& v) {
    if (key.compare(0, prefix.size(), prefix) == 0)
      a.own.emplace_back(key.substr(prefix.size()), v);
    else
      rest.push_back("--set"), rest.push_back(key + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  };
  for (int i = first; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--set" && i + 1 < argc) {
      std::string s = argv[i + 1];
      auto eq = s.find('=');
      if (eq != std::string::npos && s.compare(0, prefix.size(), prefix) == 0) {
        a.own.emplace_back(s.substr(prefix.size(), eq - prefix.size()), parse_value(s.substr(eq + 1)));
        ++i;
        continue;
      }
    }
    std::string name = k, inline_value;
    bool has_inline = false;
    if (k.rfind("--", 0) == 0 && k.find('=') != std::string::npos) {
      name = k.substr(0, k.find('='));
      inline_value = k.substr(k.find('=') + 1);
      has_inline = true;
    }
    auto f = spec.flags.find(name);
    if (f != spec.flags.end()) {
      const std::string& target = f->second;
      auto eq = target.find('=');
      if (eq != std::string::npos) {  // a switch: "key=value" fixed
        route(target.substr(0, eq), parse_value(target.substr(eq + 1)));
      } else {
        if (!has_inline && i + 1 >= argc) throw UsageError(name + " needs a value");
        route(target, parse_value(has_inline ? inline_value : argv[++i]));
      }
      continue;
    }
    rest.push_back(k);
  }
  std::vector<char*> ptrs;
  for (auto& s : rest) ptrs.push_back(s.data());
  a.cli = parse_cli(static_cast<int>(ptrs.size()), ptrs.data(), 0);
  return a;
}

CommandConfig resolve_command_config(const CommandArgs& a, const CommandSpec& spec) {
  CommandConfig c;
  c.section = spec.name;
  c.base = Config::defaults();
  for (const auto& k : spec.keys) c.own[k.key] = k.def;
  auto load_file = [&](const std::string& path) {
    json j = read_json_file(path);
    if (!j.is_object()) throw Error(path + ": the configuration must be a JSON object");
    if (j.contains(spec.name)) {
      merge_section(c, spec, j[spec.name], path);
      j.erase(spec.name);
    }
    c.base.merge(j, path);
  };
  if (!a.cli.resume.empty()) {
    if (!a.cli.config_file.empty()) throw Error("--resume takes the run folder's config.json; drop --config");
    const std::string path = a.cli.resume + "/config.json";
    if (!fs::exists(path)) throw Error(a.cli.resume + ": not a run folder (no config.json)");
    load_file(path);
    // Where the run continues may change (checkpoints hold CPU tensors); what it computes may not.
    static const std::set<std::string> allowed = {"steps",         "checkpoint_every", "preview_every", "preview_pairs",
                                                  "preview_size",  "device",           "precision",     "loader_thread"};
    for (const auto& [k, v] : a.cli.overrides) {
      if (!allowed.count(k))
        throw UsageError("cannot change \"" + k + "\" when resuming (it would not continue the same run); only steps, "
                         "checkpoint_every, preview_*, device, precision and loader_thread may change");
      set_from_command_line(c.base, k, v, "command line");
    }
    if (!a.own.empty())
      throw UsageError("cannot change \"" + spec.name + "." + a.own.front().first + "\" when resuming");
    c.base.set("out", a.cli.resume, "--resume");
  } else {
    c.base.merge(spec.base_defaults, "defaults of " + spec.name);
    if (!a.cli.config_file.empty()) load_file(a.cli.config_file);
    for (const auto& [k, v] : a.cli.overrides)
      set_from_command_line(c.base, k, v, k == "data" ? "--data" : "command line");
    for (const auto& [k, v] : a.own) {
      try {
        set_section_key(c, spec, k, v, "command line");
      } catch (const Error& e) {
        throw UsageError(e.what());
      }
    }
  }
  if (!spec.data_required && c.base.data.empty()) {
    Config probe = c.base;  // validate() insists on data; these commands take theirs elsewhere
    probe.set("data", json::array({"."}), "internal");
    probe.validate();
  } else {
    c.base.validate();
  }
  return c;
}

std::string describe_command_config(const CommandSpec& spec) {
  if (spec.keys.empty() && spec.base_defaults.empty())  // train: the shared keys are all it has
    return "Configuration keys (default, meaning):\n" + Config::describe();
  std::ostringstream os;
  os << "Shared keys (as for timfusion-train train; defaults of \"" << spec.name << "\" where they differ):\n";
  std::string shared = Config::describe();
  for (auto it = spec.base_defaults.begin(); it != spec.base_defaults.end(); ++it)
    os << "  [" << spec.name << " default] " << it.key() << " = " << it.value().dump() << "\n";
  os << shared << "\nKeys of \"" << spec.name << "\" (--set " << spec.name << ".KEY=VALUE, or a \"" << spec.name
     << "\" object in --config):\n";
  os << describe_keys(spec.keys, spec.name + ".");
  return os.str();
}

std::optional<CommandRun> start_command(int argc, char** argv, int first, const CommandSpec& spec, const char* usage) {
  CommandArgs a = parse_command_args(argc, argv, first, spec);
  if (a.cli.help) {
    std::fputs(usage, stdout);
    std::fputs(cli_help(), stdout);
    return std::nullopt;
  }
  if (a.cli.help_config) {
    std::fputs(describe_command_config(spec).c_str(), stdout);
    return std::nullopt;
  }
  if (a.cli.parallel.active() && !spec.data_parallel)
    throw UsageError("--world-size / WORLD_SIZE: only `timfusion-train train` trains data-parallel, not " + spec.name);
  CommandRun r;
  r.cfg = resolve_command_config(a, spec);
  r.dir = prepare_run_dir(r.cfg, a, &r.dir_created);
  r.quiet = a.cli.quiet;
  r.resume = !a.cli.resume.empty();
  r.stop_at = a.cli.stop_at;
  r.command_line = command_line(argc, argv);
  r.parallel = a.cli.parallel;
  return r;
}

json absolutize_entries(const json& entries) {
  json out = json::array();
  for (auto e : entries) {
    if (e.is_string()) e = json{{"dir", e}};
    if (!e.is_object()) throw Error("a data entry must be a folder name or an object");
    const std::string dir = e.contains("dir") ? e["dir"].get<std::string>() : "";
    for (const char* k : {"exclude", "split", "labels"})
      if (e.contains(k)) e[k] = absolute_path(rel_to(dir, e[k].get<std::string>()));
    for (const char* k : {"dir", "ir", "vis"})
      if (e.contains(k)) e[k] = absolute_path(e[k].get<std::string>());
    out.push_back(e);
  }
  return out;
}

std::vector<DataSource> resolve_sources(const json& entries_in, const std::string& work_dir, const std::string& what) {
  if (!entries_in.is_array()) throw Error(what + ": expected a list of data entries");
  json entries = absolutize_entries(entries_in), plain = json::array();
  int idx = 0;
  for (auto e : entries) {
    ++idx;
    if (e.contains("split")) {
      if (e.contains("exclude")) throw Error(what + ": a data entry takes \"split\" or \"exclude\", not both");
      const std::string split = e["split"].get<std::string>();
      const std::string use = e.value("use", std::string("train"));
      std::ifstream in(split);
      if (!in) throw Error(split + ": cannot read the split file");
      std::vector<std::string> other;
      size_t kept = 0;
      std::string line;
      while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string name, part;
        if (!(ls >> name)) continue;
        if (!(ls >> part)) throw Error(split + ": line \"" + line + "\" is not \"<name> <part>\"");
        if (part == use)
          ++kept;
        else
          other.push_back(name);
      }
      if (kept == 0) throw Error(split + ": no pair is marked \"" + use + "\"");
      fs::create_directories(work_dir + "/splits");
      std::string tag = fs::path(split).parent_path().filename().string();
      const std::string list = work_dir + "/splits/" + std::to_string(idx) + "-" + tag + "-" + use + ".exclude.txt";
      std::string text = "# names not marked \"" + use + "\" in " + split + "\n";
      for (const auto& n : other) text += n + "\n";
      write_text_atomic(list, text);
      e["exclude"] = list;
      e.erase("split");
      e.erase("use");
    } else if (e.contains("use")) {
      throw Error(what + ": \"use\" needs a \"split\" file");
    }
    plain.push_back(e);
  }
  Config tmp = Config::defaults();
  tmp.set("data", plain, what);
  return tmp.data_sources();
}

std::pair<json, json> split_dir_entries(const std::string& dir_in) {
  const std::string dir = absolute_path(dir_in);
  if (!fs::is_directory(dir)) throw Error(dir + ": not a folder");
  std::string ir, vis;
  if (fs::is_directory(dir + "/ir") && fs::is_directory(dir + "/vis")) {
    ir = dir + "/ir", vis = dir + "/vis";
  } else {
    std::vector<std::string> subs;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_directory()) subs.push_back(e.path().filename().string());
    std::sort(subs.begin(), subs.end());
    if (subs.size() != 2 || std::find(subs.begin(), subs.end(), "mri") == subs.end())
      throw Error(dir + ": expected ir/ and vis/, or two image folders one of which is mri/");
    ir = dir + "/mri";
    vis = dir + "/" + (subs[0] == "mri" ? subs[1] : subs[0]);
  }
  const std::string split = dir + "/split.txt";
  if (!fs::exists(split)) throw Error(dir + ": no split.txt (lines \"<name> train|test\")");
  json train = {{"ir", ir}, {"vis", vis}, {"split", split}, {"use", "train"}};
  json test = {{"ir", ir}, {"vis", vis}, {"split", split}, {"use", "test"}};
  return {train, test};
}

std::string prepare_run_dir(CommandConfig& c, const CommandArgs& a, bool* created) {
  std::string dir = c.base.output.out;
  const bool writer = a.cli.parallel.rank == 0;
  if (a.cli.resume.empty()) {
    if (dir.empty()) dir = default_run_dir(c.section);
    if (writer && fs::exists(dir + "/config.json"))
      throw Error(dir + " already holds a run: continue it with --resume " + dir + ", or choose another --out");
    if (writer && fs::exists(dir) && !fs::is_directory(dir)) throw Error(dir + ": exists and is not a folder");
    c.base.set("out", absolute_path(dir), "config");
    c.base.set("data", absolutize_entries(c.base.data), "config");
    c.base.set("task.data", absolute_path(c.base.task.data), "config");
    if (!c.base.model.init.empty()) c.base.set("init", absolute_path(c.base.model.init), "config");
    if (fs::exists(c.base.model.arch)) c.base.set("arch", absolute_path(c.base.model.arch), "config");
  }
  dir = c.base.output.out;
  if (writer) {
    const bool existed = fs::exists(dir);
    fs::create_directories(dir);
    if (created) *created = !existed;
  }
  return dir;
}

void forget_run_dir(const CommandRun& r) {
  std::error_code ec;
  if (r.dir_created && fs::is_empty(r.dir, ec) && !ec) fs::remove(r.dir, ec);
}

void write_run_config(const CommandConfig& c, const std::string& dir) { write_text_atomic(dir + "/config.json", c.dump() + "\n"); }

}  // namespace timfusion::train
