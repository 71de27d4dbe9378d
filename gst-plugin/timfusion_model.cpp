#include "timfusion_model.h"

#include <thread>

#include "timfusion/error.h"
#include "timfusion/model_file.h"

namespace tfgst {

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
      error = load_error_message(timfusion::resolve_model_path(req->options.model), &e);
    } catch (...) {
      engine.reset();
      error = load_error_message(timfusion::resolve_model_path(req->options.model), nullptr);
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
