// timfusion-train: the `train` loop (fusion losses, optional task guidance),
// checkpoints, previews and final weights. No LibTorch in this header.
//
// Step k (0-based) draws its batch from (seed, k) and its learning rate from
// k, so the state after k steps is: the networks, the Adam moments and k.
// That is exactly what a checkpoint holds, so a resumed run is bit-identical
// to an uninterrupted one (same machine, same thread count).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "run/cli.h"
#include "run/config.h"
#include "timfusion/safetensors.h"

namespace timfusion::train {

struct StepStats {
  double loss = 0, intensity = 0, gradient = 0, ssim = 0;
  double task = 0;        // upper level: task loss through the fusion net
  double task_lower = 0;  // lower level: task net on the detached fused image
  double baseline = 0;    // visible-only task net
  double lr = 0;
};

struct CommandConfig;

class Trainer {
 public:
  // Loads the data and builds the networks from the seed (or `init`); the
  // runner of run/command_config.h's run_command (run folder `run_dir`).
  // With `parallel` active, this process is one rank of a data-parallel run
  // (run/distributed.h): it connects to the others here.
  Trainer(const CommandConfig& config, const std::string& run_dir, bool quiet, const ParallelSpec& parallel = {});
  // Without a run folder, for step() (tests).
  explicit Trainer(const Config& config);
  ~Trainer();

  // The whole command: run folder, run/run_loop.h's step loop, checkpoints,
  // outputs. Returns the exit status (0, or 130 after Ctrl-C / SIGTERM with
  // a checkpoint saved; 0 after --stop-at).
  int run(long stop_at, bool resume, const std::string& command_line);

  // One optimisation step with batch/lr index `k`; for tests.
  StepStats step(int64_t k);
  int64_t steps_done() const;
  // Current weights (fusion net: the reference's keys; task net: SegNet's).
  SafetensorsFile fusion_state() const;
  SafetensorsFile task_state() const;
  // The final weight file: weights + timfusion.arch + timfusion.provenance.
  void save_model(const std::string& path, const std::string& provenance_json) const;

  const std::vector<std::string>& notes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace timfusion::train
