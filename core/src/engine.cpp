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

double Engine::warmup(cv::Size size) {
  std::lock_guard<std::mutex> lock(run_mu_);
  if (size == warmed_) return -1.0;
  auto t0 = std::chrono::steady_clock::now();
  fuser_->warmup(size);
  warmed_ = size;
  wide_ = wide_fuser_ && !FuserPool::frames_fit(*fuser_);
  if (wide_) {
    fuser_->release_memory();
    wide_fuser_->warmup(size);
  }
  return ms_since(t0);
}

FuserPool* Engine::frame_workers_for(cv::Size size) {
  if (!frame_workers_) return nullptr;
  if (size != workers_size_) {
    if (frame_workers_->in_flight() > 0) return nullptr;  // frames of the old size finish first
    std::lock_guard<std::mutex> lock(run_mu_);
    // The engine's Fuser was warmed up at this size (negotiation): its memory is one frame's.
    if (warmed_ != size) {
      fuser_->warmup(size);
      warmed_ = size;
    }
    workers_allowed_ = FuserPool::frames_fit(*fuser_);
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
  if (wide_ && warmed_ == vis.size()) {
    wide_fuser_->fuse(ir, vis, out, order);
    last_threads_ = wide_fuser_->threads_in_last_forward();
    return;
  }
  fuser_->fuse(ir, vis, out, order, deadline);
  last_threads_ = fuser_->threads_in_last_forward();
  if (warmed_ != vis.size()) {  // the first frame at this size decides its path
    warmed_ = vis.size();
    wide_ = wide_fuser_ && !FuserPool::frames_fit(*fuser_);
    if (wide_) fuser_->release_memory();
  }
}

}  // namespace timfusion
