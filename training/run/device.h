// timfusion-train: where a command trains (config keys device, precision,
// loader_thread). Includes LibTorch.
//
//   device         auto (CUDA when this LibTorch has it and a GPU is there,
//                  else CPU) | cpu | cuda | cuda:N
//   precision      auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16:
//                  the forward passes run under LibTorch's CUDA autocast in
//                  that type; weights, Adam moments and the losses stay fp32
//                  ("master weights"); fp16 adds a dynamic loss scale
//                  (LossScale). Mixed precision is CUDA-only.
//   loader_thread  auto (on with CUDA) | on | off: the next step's batch is
//                  cropped on a second thread while this step runs; with
//                  CUDA in page-locked memory and copied asynchronously.
//
// Checkpoints hold CPU tensors (timfusion/torch/state_dict.h), so a run
// started on one device resumes on another.
#pragma once
#include <cstdint>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "run/config.h"
#include "timfusion/safetensors.h"

namespace timfusion::train {

enum class Precision { Fp32, Bf16, Fp16 };

struct DevicePlan {
  torch::Device device{torch::kCPU};
  Precision precision = Precision::Fp32;
  bool loader_thread = false;
  bool pinned = false;  // page-locked host batches, copied with non_blocking (CUDA)

  bool cuda() const { return device.is_cuda(); }
  // "cpu, fp32" / "cuda:0 (NVIDIA H100), bf16 autocast, loader thread"
  std::string describe() const;
};

// The plan for a command's configuration. Throws Error naming the key when
// CUDA is asked for and missing, a GPU index does not exist, mixed precision
// is asked for on CPU, or (mixed_precision = false: the command trains in
// fp32 only) bf16/fp16 is asked for. `cuda_index`: the GPU that "auto" and
// "cuda" mean (a data-parallel rank's LOCAL_RANK; 0 otherwise).
DevicePlan resolve_device(const Config& cfg, bool mixed_precision = true, int cuda_index = 0);

// Whether this LibTorch can run on CUDA, and a sentence why not.
bool cuda_usable(std::string* why_not = nullptr);

// Autocast to the plan's precision while in scope (CUDA; nothing for fp32).
// Outputs of autocast regions are bf16/fp16: callers cast to float for the losses.
class AutocastScope {
 public:
  explicit AutocastScope(const DevicePlan& plan);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false, prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kHalf;
};

// The device a module's parameters are on (CPU for a module without any).
torch::Device device_of(const torch::nn::Module& m);

// Float planes [n,1,h,w] as a host tensor (pinned when `pinned`).
torch::Tensor host_planes(const std::vector<float>& v, int n, int h, int w, bool pinned = false);
// Class ids [n,h,w] as a host tensor (pinned when `pinned`).
torch::Tensor host_labels(const std::vector<int64_t>& v, int n, int h, int w, bool pinned = false);
// Float planes on `device` (the batches of search, meta and adapt).
torch::Tensor planes_on(const std::vector<float>& v, int n, int h, int w, const torch::Device& device);

// The batches of consecutive steps: make(k) builds step k's host tensors;
// get(k) returns them on the plan's device. With the loader thread, get(k)
// also starts make(k + 1) in the background (batches are pure functions of
// the step, so prefetching changes no result).
class BatchLoader {
 public:
  using Make = std::function<std::vector<torch::Tensor>(int64_t step)>;
  BatchLoader(DevicePlan plan, Make make);
  ~BatchLoader();
  std::vector<torch::Tensor> get(int64_t step);

 private:
  DevicePlan plan_;
  Make make_;
  int64_t pending_step_ = -1;
  std::future<std::vector<torch::Tensor>> pending_;
};

// fp16's dynamic loss scale (as torch.cuda.amp.GradScaler): the loss is
// multiplied by `scale` before backward; gradients are divided by it; a step
// with Inf/NaN gradients is skipped and the scale halved; after `growth_interval`
// clean steps it doubles. Disabled (scale 1, nothing skipped) otherwise.
class LossScale {
 public:
  explicit LossScale(bool enabled, double init = 65536.0, int64_t growth_interval = 2000);
  bool enabled() const { return enabled_; }
  double value() const { return scale_; }
  torch::Tensor scaled(const torch::Tensor& loss) const;
  // Unscales the gradients of `modules`; false when the step must be skipped.
  bool unscale(const std::vector<torch::nn::Module*>& modules);
  // As checkpoint metadata "<prefix>scale" / "<prefix>good_steps".
  void save(SafetensorsFile& f, const std::string& prefix) const;
  void load(const SafetensorsFile& f, const std::string& prefix);

 private:
  bool enabled_;
  double scale_;
  int64_t growth_interval_, good_steps_ = 0;
};

}  // namespace timfusion::train
