#include "run/cli.h"

#include <algorithm>
#include <cstdlib>
#include <map>

#include "timfusion/error.h"

namespace timfusion::train {

namespace {

const std::map<std::string, std::string>& shorthands() {
  static const std::map<std::string, std::string> m = {
      {"--arch", "arch"},       {"--channels", "channels"},
      {"--init", "init"},       {"--seed", "seed"},
      {"--steps", "steps"},     {"--batch", "batch"},
      {"--crop", "crop"},       {"--lr", "lr"},
      {"--threads", "threads"}, {"--out", "out"},
      {"--device", "device"},   {"--precision", "precision"},
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
         "  --device auto|cpu|cuda[:N] --precision auto|fp32|bf16|fp16\n"
         "                       shorthands for the keys of the same name\n"
         "  --task               task guidance on (task.enabled=true); --lambda X, --task-labels L\n"
         "  --no-flip            no random flips\n"
         "Run control:\n"
         "  --world-size N --rank R --master ADDR:PORT\n"
         "                       data-parallel training (train): N processes, this one is R; rank 0\n"
         "                       listens on ADDR:PORT (torchrun's WORLD_SIZE, RANK, MASTER_ADDR and\n"
         "                       MASTER_PORT work too); batch is the global batch, split evenly\n"
         "  --resume DIR         continue the run in DIR from its last checkpoint (same result as an\n"
         "                       uninterrupted run); --steps N may extend it\n"
         "  --stop-at N          leave after step N without a checkpoint, as a kill would (for tests)\n"
         "  --quiet              no progress output\n"
         "  --help-config        list every configuration key with its default and meaning\n"
         "  --version            print the version and exit\n";
}

namespace {
long parse_count(const std::string& what, const std::string& v, long min) {
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || n < min) throw UsageError(what + " needs a whole number >= " + std::to_string(min) + ", got \"" + v + "\"");
  return n;
}
std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
}  // namespace

ParallelSpec resolve_parallel(int world_size, int rank, const std::string& master) {
  ParallelSpec p;
  const bool from_env = world_size < 0 && !env("WORLD_SIZE").empty();
  std::string addr_port = master;
  if (from_env) {
    p.world_size = static_cast<int>(parse_count("WORLD_SIZE", env("WORLD_SIZE"), 1));
    p.rank = env("RANK").empty() ? 0 : static_cast<int>(parse_count("RANK", env("RANK"), 0));
    if (!env("LOCAL_RANK").empty()) p.local_rank = static_cast<int>(parse_count("LOCAL_RANK", env("LOCAL_RANK"), 0));
    if (addr_port.empty() && !env("MASTER_ADDR").empty()) addr_port = env("MASTER_ADDR") + ":" + env("MASTER_PORT");
  } else {
    if (rank >= 0 && world_size < 0) throw UsageError("--rank needs --world-size");
    p.world_size = world_size < 0 ? 1 : world_size;
    p.rank = rank < 0 ? 0 : rank;
  }
  if (!p.active()) return p;
  if (p.rank >= p.world_size)
    throw UsageError("rank " + std::to_string(p.rank) + " is not below the world size " + std::to_string(p.world_size));
  if (addr_port.empty()) throw UsageError("data-parallel training needs --master ADDR:PORT (or MASTER_ADDR and MASTER_PORT)");
  const auto colon = addr_port.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw UsageError("--master expects ADDR:PORT (e.g. 127.0.0.1:29500), got \"" + addr_port + "\"");
  p.master_addr = addr_port.substr(0, colon);
  const long port = parse_count("the master port", addr_port.substr(colon + 1), 1);
  if (port > 65535) throw UsageError("the master port must be at most 65535, got " + std::to_string(port));
  p.master_port = static_cast<int>(port);
  return p;
}

CliArgs parse_cli(int argc, char** argv, int first) {
  CliArgs a;
  long world_size = -1, rank = -1;
  std::string master;
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
    } else if (k == "--world-size") {
      world_size = parse_count("--world-size", val(), 1);
    } else if (k == "--rank") {
      rank = parse_count("--rank", val(), 0);
    } else if (k == "--master") {
      master = val();
    } else if (shorthands().count(k)) {
      a.overrides.emplace_back(shorthands().at(k), parse_value(val()));
    } else {
      throw UsageError("unknown option \"" + k + "\"");
    }
  }
  a.parallel = resolve_parallel(static_cast<int>(world_size), static_cast<int>(rank), master);
  return a;
}

}  // namespace timfusion::train
