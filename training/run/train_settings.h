// The shared run configuration (run/config.h's keys) as typed members, one
// struct per group of keys. Config derives from TrainSettings and stores its
// values here: code reads cfg.loss.ssim, not cfg.d("loss.ssim"), so a
// misspelt key does not compile. Defaults, bounds and help stay in the key
// table of run/config.cpp; fields() below binds each key to its member
// (run/typed_fields.h) and Config checks at start that both list the same keys.
// No LibTorch in this header.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace timfusion::train {

// The network: arch, channels, init.
struct ModelConfig {
  std::string arch;
  int64_t channels = 0;  // 0 = the architecture's own
  std::string init;      // weights to start from ("" = random)
};

// The optimisation: seed, steps, batch, crop, flip and the learning rate.
struct OptimConfig {
  int64_t seed = 1, steps = 0, batch = 0, crop = 0, warmup = 0;
  bool flip = true;
  double lr = 0, lr_min = 0, grad_clip = 0;
  std::string lr_schedule;  // cosine | constant
};

// Sensor-noise augmentation: keys noise (sigma), noise_model, noise_ir.
struct NoiseConfig {
  double sigma = 0;  // key "noise"; 0 = off
  std::string model;  // gaussian | lowlight
  double ir = 0;
};

// Where and how the arithmetic runs: threads, device, precision, loader_thread.
struct RuntimeConfig {
  int64_t threads = 0;
  std::string device, precision, loader_thread;
};

// The fusion loss weights and their shapes: loss.*.
struct LossConfig {
  double intensity = 0, gradient = 0, gradient_gain = 1, contrast = 0, edge = 0, ssim = 0, salient_softness = 0;
  std::string intensity_target;  // max | salient
  std::string contrast_target;   // intensity | salient
  int64_t salient_window = 0, contrast_window = 0, ssim_window = 0;
};

// Task guidance and the downstream segmentation net: task.*.
struct TaskConfig {
  bool enabled = false, balance = true, baseline = true;
  std::string data, labels;
  int64_t classes = 0, inner_steps = 1, width = 0, batch = 0, crop = 0, eval_pairs = 0;
  double lambda = 0, lr = 0;
};

// The run folder and what is written to it: out, checkpoint_every, preview_*.
struct OutputConfig {
  std::string out;
  int64_t checkpoint_every = 0, preview_every = 0, preview_pairs = 0, preview_size = 0;
};

struct TrainSettings {
  ModelConfig model;
  nlohmann::json data = nlohmann::json::array();  // the "data" list as given (Config::data_sources() resolves it)
  OptimConfig optim;
  NoiseConfig noise;
  RuntimeConfig runtime;
  LossConfig loss;
  TaskConfig task;
  OutputConfig output;

  // Every key of run/config.cpp's table and the member that holds it.
  template <typename Self, typename Visit>
  static void fields(Self& s, Visit&& v) {
    v("arch", s.model.arch);
    v("channels", s.model.channels);
    v("init", s.model.init);
    v("data", s.data);
    v("seed", s.optim.seed);
    v("steps", s.optim.steps);
    v("batch", s.optim.batch);
    v("crop", s.optim.crop);
    v("flip", s.optim.flip);
    v("lr", s.optim.lr);
    v("lr_min", s.optim.lr_min);
    v("lr_schedule", s.optim.lr_schedule);
    v("warmup", s.optim.warmup);
    v("grad_clip", s.optim.grad_clip);
    v("noise", s.noise.sigma);
    v("noise_model", s.noise.model);
    v("noise_ir", s.noise.ir);
    v("threads", s.runtime.threads);
    v("device", s.runtime.device);
    v("precision", s.runtime.precision);
    v("loader_thread", s.runtime.loader_thread);
    v("loss.intensity", s.loss.intensity);
    v("loss.intensity_target", s.loss.intensity_target);
    v("loss.salient_window", s.loss.salient_window);
    v("loss.salient_softness", s.loss.salient_softness);
    v("loss.gradient", s.loss.gradient);
    v("loss.gradient_gain", s.loss.gradient_gain);
    v("loss.contrast", s.loss.contrast);
    v("loss.contrast_window", s.loss.contrast_window);
    v("loss.contrast_target", s.loss.contrast_target);
    v("loss.edge", s.loss.edge);
    v("loss.ssim", s.loss.ssim);
    v("loss.ssim_window", s.loss.ssim_window);
    v("task.enabled", s.task.enabled);
    v("task.data", s.task.data);
    v("task.labels", s.task.labels);
    v("task.classes", s.task.classes);
    v("task.lambda", s.task.lambda);
    v("task.lr", s.task.lr);
    v("task.inner_steps", s.task.inner_steps);
    v("task.width", s.task.width);
    v("task.batch", s.task.batch);
    v("task.crop", s.task.crop);
    v("task.eval_pairs", s.task.eval_pairs);
    v("task.balance", s.task.balance);
    v("task.baseline", s.task.baseline);
    v("checkpoint_every", s.output.checkpoint_every);
    v("preview_every", s.output.preview_every);
    v("preview_pairs", s.output.preview_pairs);
    v("preview_size", s.output.preview_size);
    v("out", s.output.out);
  }
};

}  // namespace timfusion::train
