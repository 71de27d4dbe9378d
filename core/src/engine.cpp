#include "timfusion/engine.h"

#include <chrono>
#include <exception>
#include <filesystem>

#include "timfusion/error.h"
#include "timfusion/model_file.h"
#include "timfusion/shared_cpu.h"

namespace timfusion {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

bool same_options(const FuserOptions& a, const FuserOptions& b) {
  return resolve_model_path(a.model) == resolve_model_path(b.model) && a.arch == b.arch && a.device == b.device &&
         a.precision == b.precision && a.threads == b.threads;
}

std::string load_error_message(const std::string& path, const std::exception* e) {
  std::string what = e ? e->what() : "unknown error";
  // LibTorch errors carry a multi-line backtrace: keep the first line.
  if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  if (what.find(path) == std::string::npos) what = path + ": " + what;
  return what;
}

Engine::Engine(const FuserOptions& options, uint64_t generation)
    : options_(options), path_(resolve_model_path(options.model)), generation_(generation) {
  auto t0 = std::chrono::steady_clock::now();
  FuserOptions o = options;
  o.model = path_;
  // threads=0: the process's shared CPU (timfusion/shared_cpu.h), one task
  // per frame, so many elements in one process never oversubscribe the cores.
  o.shared_cpu = options.threads == 0;
  try {
    fuser_ = std::make_unique<Fuser>(o);
    const bool shared = fuser_->shared_cpu();
    const int frames =
        FuserPool::workers_for(shared ? SharedCpu::process().workers() : fuser_->threads());
    if (fuser_->device() == Device::Cpu && frames > 1) {
      // Loaded with the engine, so a non-live pipeline's first frame does not wait for it;
      // they take frame memory only when they run (live pipelines never use them).
      // The weights are the engine's (one prepared network per file and process).
      FuserOptions per_frame = o;
      per_frame.device = Device::Cpu;
      per_frame.threads = shared ? 1 : fuser_->threads() / frames;
      frame_workers_ = std::make_unique<FuserPool>(per_frame, frames);
    }
    if (shared) {
      // Frames too large for one core at a time (the memory rule below) split over every core instead.
      FuserOptions wide = o;
      wide.shared_cpu = false;
      wide.threads = 0;
      wide_fuser_ = std::make_unique<Fuser>(wide);
    }
  } catch (const Error& e) {
    throw Error(load_error_message(path_, &e));
  } catch (const std::exception& e) {
    throw Error(load_error_message(path_, &e));
  } catch (...) {
    throw Error(load_error_message(path_, nullptr));
  }
  // The file really loaded (a shipped model's name resolves to its file), absolute:
  // what actual-model and the timfusion-model-loaded message report.
  std::error_code ec;
  const auto loaded = std::filesystem::absolute(fuser_->model_path(), ec);
  path_ = ec ? fuser_->model_path() : loaded.lexically_normal().string();
  load_ms_ = ms_since(t0);
}

const char* Engine::device_name() const { return timfusion::device_name(fuser_->device()); }

std::string Engine::description() const {
  const std::string rule = std::to_string(FuserPool::kMaxFrameMemoryInFlight >> 20) + " MiB";
  std::string d = path_ + " on " + device_name() + ", " + precision_name(fuser_->precision()) + "; ";
  if (fuser_->shared_cpu())
    d += "frames on the process's shared CPU (" + std::to_string(SharedCpu::process().workers()) +
         " workers, one core per frame; frames over " + rule + " of tensor memory split over every core)";
  else
    d += "own " + std::to_string(fuser_->threads()) + " intra-op threads";
  if (frame_workers_)
    d += "; non-live: up to " + std::to_string(frame_workers_->capacity()) + " frames in flight while each fits in " +
         rule;
  return d;
}

void Engine::decide_locked(cv::Size size) {
  if (size == decided_) return;
  // The memory rule needs a Fuser with its own frame memory: the shared-CPU
  // Fuser's frames use its worker's (fuser.h).
  Fuser& probe = wide_fuser_ ? *wide_fuser_ : *fuser_;
  probe.warmup(size);
  fits_ = FuserPool::frames_fit(probe);
  if (!wide_fuser_) warmed_ = size;  // the probe was the engine's Fuser
  wide_ = wide_fuser_ && !fits_;
  if (wide_fuser_ && fits_) wide_fuser_->release_memory();  // frames of this size run on the shared CPU
  decided_ = size;
}

double Engine::warmup(cv::Size size) {
  std::lock_guard<std::mutex> lock(run_mu_);
  if (size == warmed_) return -1.0;
  auto t0 = std::chrono::steady_clock::now();
  decide_locked(size);
  if (warmed_ != size) {
    if (!wide_) fuser_->warmup(size);
    warmed_ = size;
  }
  return ms_since(t0);
}

FuserPool* Engine::frame_workers_for(cv::Size size) {
  if (!frame_workers_) return nullptr;
  if (size != workers_size_) {
    if (frame_workers_->in_flight() > 0) return nullptr;  // frames of the old size finish first
    std::lock_guard<std::mutex> lock(run_mu_);
    decide_locked(size);
    workers_allowed_ = fits_;
    if (workers_allowed_) frame_workers_->warmup(size);  // every worker's first frame, side by side
    workers_size_ = size;
  }
  if (!workers_allowed_) return nullptr;
  std::lock_guard<std::mutex> lock(run_mu_);
  if (warmed_ == size) {  // warmed up (again, at a renegotiation): its frames run on the workers
    fuser_->release_memory();
    warmed_ = cv::Size();
  }
  return frame_workers_.get();
}

void Engine::fuse(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& out, ChannelOrder order,
                  std::chrono::steady_clock::time_point deadline) {
  std::lock_guard<std::mutex> lock(run_mu_);
  decide_locked(vis.size());  // the first frame at a size decides its path
  if (wide_) {
    wide_fuser_->fuse(ir, vis, out, order);
    last_threads_ = wide_fuser_->threads_in_last_forward();
  } else {
    fuser_->fuse(ir, vis, out, order, deadline);
    last_threads_ = fuser_->threads_in_last_forward();
  }
  warmed_ = vis.size();
}

}  // namespace timfusion
