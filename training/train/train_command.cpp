// `timfusion-train train`: fusion-loss training, optionally task-guided.
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "run/cli.h"
#include "run/run_dir.h"
#include "timfusion/error.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {

const char* kTrainUsage =
    "Usage: timfusion-train train --data DIR [--exclude FILE] [--data DIR ...] [options]\n"
    "       timfusion-train train --config FILE [options]\n"
    "       timfusion-train train --resume RUN_DIR [--steps N]\n"
    "\n"
    "Trains a TIM fusion network (default ivif-light) on IR/visible pairs with\n"
    "unsupervised fusion losses (intensity, Sobel gradient, SSIM), optionally\n"
    "guided by a segmentation task (--task, bilevel/alternating). Writes a run\n"
    "folder: config.json, log.csv, checkpoint.safetensors, model.safetensors,\n"
    "loss_curve.png, previews/. Ctrl-C saves a checkpoint; --resume continues.\n"
    "\n";

// Paths in the stored config are absolute, so --resume works from anywhere.
void absolutize(Config& c) {
  json data = json::array();
  for (auto e : c.at("data")) {
    if (e.is_string()) e = json{{"dir", e}};
    for (const char* k : {"dir", "ir", "vis"})
      if (e.contains(k)) e[k] = absolute_path(e[k].get<std::string>());
    if (e.contains("exclude")) {
      std::string x = e["exclude"].get<std::string>();
      if (e.contains("dir") && fs::path(x).is_relative() && fs::exists(fs::path(e["dir"].get<std::string>()) / x))
        x = (fs::path(e["dir"].get<std::string>()) / x).string();
      e["exclude"] = absolute_path(x);
    }
    if (e.contains("labels")) {
      std::string l = e["labels"].get<std::string>();
      if (e.contains("dir") && fs::path(l).is_relative() && !fs::exists(l)) l = (fs::path(e["dir"].get<std::string>()) / l).string();
      e["labels"] = absolute_path(l);
    }
    data.push_back(e);
  }
  c.set("data", data, "config");
  c.set("task.data", absolute_path(c.s("task.data")), "config");
  if (!c.s("init").empty()) c.set("init", absolute_path(c.s("init")), "config");
  if (fs::exists(c.s("arch"))) c.set("arch", absolute_path(c.s("arch")), "config");
}

}  // namespace

int cmd_train(int argc, char** argv, int first) {
  CliArgs a = parse_cli(argc, argv, first);
  if (a.help) {
    std::fputs(kTrainUsage, stdout);
    std::fputs(cli_help(), stdout);
    return 0;
  }
  if (a.help_config) {
    std::fputs("Configuration keys (default, meaning):\n", stdout);
    std::fputs(Config::describe().c_str(), stdout);
    return 0;
  }
  Config cfg = resolve_config(a);
  std::string dir = cfg.s("out");
  if (a.resume.empty()) {
    if (dir.empty()) dir = default_run_dir("train");
    if (fs::exists(dir + "/config.json"))
      throw Error(dir + " already holds a run: continue it with --resume " + dir + ", or choose another --out");
    if (fs::exists(dir) && !fs::is_directory(dir)) throw Error(dir + ": exists and is not a folder");
    cfg.set("out", absolute_path(dir), "config");
    absolutize(cfg);
  }
  dir = cfg.s("out");
  fs::create_directories(dir);

  Trainer trainer(cfg);
  RunOptions o;
  o.run_dir = dir;
  o.resume = !a.resume.empty();
  o.stop_at = a.stop_at;
  o.quiet = a.quiet;
  o.command_line = command_line(argc, argv);
  return trainer.run(o);
}

}  // namespace timfusion::train
