#include "run/device.h"

#include <ATen/autocast_mode.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "timfusion/device_name.h"
#include "timfusion/error.h"

namespace timfusion::train {

bool cuda_usable(std::string* why_not) {
  if (torch::cuda::is_available()) return true;
  if (why_not) {
#ifdef TIMFUSION_HAVE_CUDA
    *why_not = "this LibTorch has CUDA, but no CUDA device is visible (driver, CUDA_VISIBLE_DEVICES?)";
#else
    *why_not =
        "this build's LibTorch has no CUDA (Debian's libtorch-dev is CPU-only); build against a CUDA LibTorch "
        "(meson setup -Dlibtorch_dir=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))'), "
        "see scripts/gpu_check.sh) or use --device cpu";
#endif
  }
  return false;
}

DevicePlan resolve_device(const Config& cfg, bool mixed_precision, int cuda_index) {
  DevicePlan p;
  const std::string dev = cfg.runtime.device;
  const DeviceName name = parse_device_name(dev);  // also checked when set (config.cpp)
  if (name.kind == Device::Auto) {
    const int count = cuda_usable() ? static_cast<int>(torch::cuda::device_count()) : 0;
    p.device = count > 0 ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(cuda_index % count))
                         : torch::Device(torch::kCPU);
  } else if (name.kind == Device::Cpu) {
    p.device = torch::kCPU;
  } else {
    std::string why;
    if (!cuda_usable(&why)) throw Error("device \"" + dev + "\": CUDA is not available: " + why);
    const long index = name.index >= 0 ? name.index : cuda_index;
    const long count = static_cast<long>(torch::cuda::device_count());
    if (index >= count)
      throw Error("device \"" + dev + "\": there " + (count == 1 ? "is 1 CUDA device" : "are " + std::to_string(count) + " CUDA devices") +
                  " (cuda:0" + (count > 1 ? " .. cuda:" + std::to_string(count - 1) : std::string()) + ")");
    p.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }

  const std::string prec = cfg.runtime.precision;
  if (prec == "auto") {
    p.precision = p.cuda() && mixed_precision ? Precision::Bf16 : Precision::Fp32;
  } else if (prec == "fp32") {
    p.precision = Precision::Fp32;
  } else {
    if (!mixed_precision)
      throw Error("precision \"" + prec + "\": this command trains in fp32 only (mixed precision: timfusion-train train)");
    if (!p.cuda())
      throw Error("precision \"" + prec + "\": mixed precision runs on CUDA only (device is " + p.device.str() +
                  "); use precision fp32 or auto");
    p.precision = prec == "bf16" ? Precision::Bf16 : Precision::Fp16;
  }

  const std::string lt = cfg.runtime.loader_thread;
  p.loader_thread = lt == "on" || (lt == "auto" && p.cuda());
  p.pinned = p.cuda();
  if (p.cuda()) {
    // Same checkpoint guarantees as on the CPU as far as cuDNN allows: no
    // autotuned (run-to-run different) convolution algorithms.
    at::globalContext().setBenchmarkCuDNN(false);
    at::globalContext().setDeterministicCuDNN(true);
  }
  return p;
}

std::string DevicePlan::describe() const {
  std::string s = device.str();
  s += precision == Precision::Fp32 ? ", fp32" : precision == Precision::Bf16 ? ", bf16 autocast" : ", fp16 autocast + loss scale";
  if (loader_thread) s += pinned ? ", loader thread (pinned memory)" : ", loader thread";
  return s;
}

AutocastScope::AutocastScope(const DevicePlan& plan) {
  if (!plan.cuda() || plan.precision == Precision::Fp32) return;
  active_ = true;
  prev_enabled_ = at::autocast::is_enabled();
  prev_dtype_ = at::autocast::get_autocast_gpu_dtype();
  at::autocast::set_autocast_gpu_dtype(plan.precision == Precision::Bf16 ? at::kBFloat16 : at::kHalf);
  at::autocast::set_enabled(true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // As torch.autocast's __exit__: the cast weights are cached per region.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_enabled(prev_enabled_);
  at::autocast::set_autocast_gpu_dtype(prev_dtype_);
}

torch::Device device_of(const torch::nn::Module& m) {
  for (const auto& p : m.parameters(true)) return p.device();
  return torch::kCPU;
}

torch::Tensor host_planes(const std::vector<float>& v, int n, int h, int w, bool pinned) {
  auto t = torch::empty({n, 1, h, w}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(pinned));
  std::memcpy(t.data_ptr<float>(), v.data(), v.size() * sizeof(float));
  return t;
}

torch::Tensor host_labels(const std::vector<int64_t>& v, int n, int h, int w, bool pinned) {
  auto t = torch::empty({n, h, w}, torch::TensorOptions().dtype(torch::kInt64).pinned_memory(pinned));
  std::memcpy(t.data_ptr<int64_t>(), v.data(), v.size() * sizeof(int64_t));
  return t;
}

torch::Tensor planes_on(const std::vector<float>& v, int n, int h, int w, const torch::Device& device) {
  auto t = host_planes(v, n, h, w);
  return device.is_cpu() ? t : t.to(device);
}

BatchLoader::BatchLoader(DevicePlan plan, Make make) : plan_(std::move(plan)), make_(std::move(make)) {}

BatchLoader::~BatchLoader() {
  if (pending_.valid()) pending_.wait();
}

std::vector<torch::Tensor> BatchLoader::get(int64_t step) {
  std::vector<torch::Tensor> host;
  if (pending_.valid() && pending_step_ == step)
    host = pending_.get();  // rethrows what make() threw
  else {
    if (pending_.valid()) pending_.wait();
    pending_ = {};
    host = make_(step);
  }
  if (plan_.loader_thread) {
    pending_step_ = step + 1;
    pending_ = std::async(std::launch::async, make_, step + 1);
  }
  if (plan_.device.is_cpu()) return host;
  std::vector<torch::Tensor> out;
  for (auto& t : host) out.push_back(t.to(plan_.device, /*non_blocking=*/plan_.pinned));
  return out;
}

LossScale::LossScale(bool enabled, double init, int64_t growth_interval)
    : enabled_(enabled), scale_(enabled ? init : 1.0), growth_interval_(growth_interval) {}

torch::Tensor LossScale::scaled(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }

bool LossScale::unscale(const std::vector<torch::nn::Module*>& modules) {
  if (!enabled_) return true;
  torch::NoGradGuard ng;
  bool finite = true;
  for (auto* m : modules)
    for (auto& p : m->parameters(true)) {
      if (!p.grad().defined()) continue;
      p.mutable_grad().div_(scale_);
      if (finite && !torch::isfinite(p.grad()).all().item<bool>()) finite = false;
    }
  if (!finite) {
    scale_ /= 2;
    good_steps_ = 0;
    return false;
  }
  if (++good_steps_ >= growth_interval_) scale_ *= 2, good_steps_ = 0;
  return true;
}

void LossScale::save(SafetensorsFile& f, const std::string& prefix) const {
  if (!enabled_) return;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", scale_);
  f.metadata[prefix + "scale"] = buf;
  f.metadata[prefix + "good_steps"] = std::to_string(good_steps_);
}

void LossScale::load(const SafetensorsFile& f, const std::string& prefix) {
  if (!enabled_) return;
  auto s = f.metadata.find(prefix + "scale"), g = f.metadata.find(prefix + "good_steps");
  if (s == f.metadata.end() || g == f.metadata.end()) return;  // a checkpoint of an fp32/bf16 session: start afresh
  scale_ = std::strtod(s->second.c_str(), nullptr);
  good_steps_ = std::stoll(g->second);
}

}  // namespace timfusion::train
