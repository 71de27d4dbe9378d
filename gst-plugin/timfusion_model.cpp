#include "timfusion_model.h"

#include <chrono>
#include <filesystem>
#include <thread>

#include "timfusion/error.h"
#include "timfusion/model_file.h"
#include "timfusion/shared_cpu.h"

namespace tfgst {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

std::string resolved_model_path(const timfusion::FuserOptions& o) {
  return o.model.empty() ? timfusion::default_model_path() : o.model;
}

bool same_options(const timfusion::FuserOptions& a, const timfusion::FuserOptions& b) {
  return resolved_model_path(a) == resolved_model_path(b) && a.arch == b.arch && a.device == b.device &&
         a.precision == b.precision && a.threads == b.threads;
}

std::string load_error_message(const std::string& path, const std::exception* e) {
  std::string what = e ? e->what() : "unknown error";
  // LibTorch errors carry a multi-line backtrace: keep the first line.
  if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  if (what.find(path) == std::string::npos) what = path + ": " + what;
  return what;
}

Engine::Engine(const timfusion::FuserOptions& options, uint64_t generation)
    : options_(options), path_(resolved_model_path(options)), generation_(generation) {
  auto t0 = std::chrono::steady_clock::now();
  timfusion::FuserOptions o = options;
  o.model = path_;
  // threads=0: the process's shared CPU (timfusion/shared_cpu.h), one task
  // per frame, so many elements in one process never oversubscribe the cores.
  o.shared_cpu = options.threads == 0;
  try {
    fuser_ = std::make_unique<timfusion::Fuser>(o);
    const bool shared = fuser_->shared_cpu();
    const int frames =
        timfusion::FuserPool::workers_for(shared ? timfusion::SharedCpu::process().workers() : fuser_->threads());
    if (fuser_->device() == timfusion::Device::Cpu && frames > 1) {
      // Loaded with the engine, so a non-live pipeline's first frame does not wait for it;
      // they take frame memory only when they run (live pipelines never use them).
      // The weights are the engine's (one prepared network per file and process).
      timfusion::FuserOptions per_frame = o;
      per_frame.device = timfusion::Device::Cpu;
      per_frame.threads = shared ? 1 : fuser_->threads() / frames;
      frame_workers_ = std::make_unique<timfusion::FuserPool>(per_frame, frames);
    }
    if (shared) {
      // Frames too large for one core at a time (the memory rule below) split over every core instead.
      timfusion::FuserOptions wide = o;
      wide.shared_cpu = false;
      wide.threads = 0;
      wide_fuser_ = std::make_unique<timfusion::Fuser>(wide);
    }
  } catch (const timfusion::Error& e) {
    throw timfusion::Error(load_error_message(path_, &e));
  } catch (const std::exception& e) {
    throw timfusion::Error(load_error_message(path_, &e));
  } catch (...) {
    throw timfusion::Error(load_error_message(path_, nullptr));
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
  wide_ = wide_fuser_ && !timfusion::FuserPool::frames_fit(*fuser_);
  if (wide_) {
    fuser_->release_memory();
    wide_fuser_->warmup(size);
  }
  return ms_since(t0);
}

timfusion::FuserPool* Engine::frame_workers_for(cv::Size size) {
  if (!frame_workers_) return nullptr;
  if (size != workers_size_) {
    if (frame_workers_->in_flight() > 0) return nullptr;  // frames of the old size finish first
    std::lock_guard<std::mutex> lock(run_mu_);
    // The engine's Fuser was warmed up at this size (negotiation): its memory is one frame's.
    if (warmed_ != size) {
      fuser_->warmup(size);
      warmed_ = size;
    }
    workers_allowed_ = timfusion::FuserPool::frames_fit(*fuser_);
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

void Engine::fuse(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& out, timfusion::ChannelOrder order,
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
    wide_ = wide_fuser_ && !timfusion::FuserPool::frames_fit(*fuser_);
    if (wide_) fuser_->release_memory();
  }
}

BackgroundLoader::~BackgroundLoader() {
  // The owner (the element) is finalized only after the loader thread dropped
  // its reference (release), so nothing runs here any more.
}

void BackgroundLoader::superseded(Request& r) {
  if (r.done) r.done(nullptr, "");
  if (r.release) r.release();
}

std::unique_ptr<BackgroundLoader::Request> BackgroundLoader::take_waiting_locked() {
  return std::move(waiting_);
}

void BackgroundLoader::start(const timfusion::FuserOptions& options, uint64_t generation, cv::Size warm_size,
                             Done done, std::function<void()> release) {
  auto req = std::make_unique<Request>();
  req->options = options;
  req->generation = generation;
  req->warm_size = warm_size;
  req->done = std::move(done);
  req->release = std::move(release);
  std::unique_ptr<Request> dropped;
  bool spawn = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    req->ticket = ++latest_;
    dropped = take_waiting_locked();
    waiting_ = std::move(req);
    if (!running_) {
      running_ = true;
      spawn = true;
    }
  }
  if (dropped) superseded(*dropped);
  // One thread at a time: it loads the waiting request, then the one that
  // arrived meanwhile, and ends when none waits.
  if (spawn) std::thread([this] { run(); }).detach();
}

void BackgroundLoader::run() {
  for (;;) {
    std::unique_ptr<Request> req;
    {
      std::lock_guard<std::mutex> lock(mu_);
      req = take_waiting_locked();
      if (!req) {
        running_ = false;
        idle_cv_.notify_all();
        return;
      }
      ++loads_started_;
    }
    std::shared_ptr<Engine> engine;
    std::string error;
    try {
      engine = std::make_shared<Engine>(req->options, req->generation);
      bool stale;
      {
        std::lock_guard<std::mutex> lock(mu_);
        stale = req->ticket != latest_;
      }
      // A newer request arrived while loading: skip the warm-up (its frame memory) too.
      if (!stale && req->warm_size.area() > 0) engine->warmup(req->warm_size);
    } catch (const std::exception& e) {
      engine.reset();
      error = load_error_message(resolved_model_path(req->options), &e);
    } catch (...) {
      engine.reset();
      error = load_error_message(resolved_model_path(req->options), nullptr);
    }
    bool current;
    {
      std::lock_guard<std::mutex> lock(mu_);
      current = req->ticket == latest_;
    }
    if (current) {
      req->done(engine, error);
      engine.reset();
    } else {
      engine.reset();  // freed before the next load starts: at most two engines at once
      req->done(nullptr, "");
    }
    // release() may drop the last reference to the owner only when no more
    // work is left for this thread, and the owner waits for running_ == false
    // before it is destroyed; so release runs after the loop's last touch of
    // *this when nothing waits.
    std::function<void()> release = std::move(req->release);
    req.reset();
    bool more;
    {
      std::lock_guard<std::mutex> lock(mu_);
      more = waiting_ != nullptr;
      if (!more) {
        running_ = false;
        idle_cv_.notify_all();
      }
    }
    if (release) release();
    if (!more) return;
  }
}

void BackgroundLoader::wait_idle() {
  std::unique_ptr<Request> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped = take_waiting_locked();
  }
  if (dropped) superseded(*dropped);
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return !running_; });
}

void BackgroundLoader::cancel() {
  std::unique_ptr<Request> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++latest_;
    dropped = take_waiting_locked();
  }
  if (dropped) superseded(*dropped);
}

uint64_t BackgroundLoader::loads_started() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loads_started_;
}

}  // namespace tfgst
