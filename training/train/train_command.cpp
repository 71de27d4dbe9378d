// `timfusion-train train`: fusion-loss training, optionally task-guided; on
// the machinery the four commands share (run/command_config.h: options,
// configuration, run folder; run/run_loop.h: the step loop).
#include <memory>

#include "commands.h"
#include "run/command_config.h"
#include "train/trainer.h"

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
    "Runs on --device auto|cpu|cuda[:N]; several processes train data-parallel with\n"
    "--world-size N --rank R --master ADDR:PORT (or under torchrun).\n"
    "\n";

}  // namespace

const CommandSpec& train_spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "train";  // no keys of its own: run/config.h's schema is train's
    s.data_parallel = true;
    return s;
  }();
  return spec;
}

int cmd_train(int argc, char** argv, int first) {
  std::optional<CommandRun> r = start_command(argc, argv, first, train_spec(), kTrainUsage);
  if (!r) return 0;  // --help, --help-config
  std::unique_ptr<Trainer> trainer;
  try {
    trainer = std::make_unique<Trainer>(r->cfg, r->dir, r->quiet, r->parallel);  // loads the data
  } catch (...) {
    forget_run_dir(*r);
    throw;
  }
  return trainer->run(r->stop_at, r->resume, r->command_line);
}

}  // namespace timfusion::train
