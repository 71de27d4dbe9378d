// timfusion GStreamer element: the machinery to replace the loaded model (a
// core Engine, timfusion/engine.h) while the pipeline runs.
//
// The streaming thread takes a std::shared_ptr<Engine> copy for each frame,
// so a swap never waits for, nor disturbs, a frame in flight: the old engine
// is freed when its last frame is done.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <opencv2/core.hpp>

#include "timfusion/engine.h"

namespace tfgst {

// The engine is core's (timfusion/engine.h).
using Engine = timfusion::Engine;
using timfusion::load_error_message;
using timfusion::same_options;

// Loads engines on one background thread, the newest request winning: at
// most one load runs at a time, and a request made while one runs waits in a
// single slot, replacing any request already waiting there (whose callbacks
// are called at once as superseded). A load that finishes while a newer
// request waits is discarded. So a burst of requests (an application setting
// "model" at 50 Hz) costs at most two engines of memory and one loader
// thread, and the last request is the one that ends up loaded (issue 27).
// A load that has started is not interrupted (a Fuser cannot stop half-way):
// it ends in at most one load's time.
class BackgroundLoader {
 public:
  // done(engine, error): engine is null on failure (error says why) and
  // when superseded (error empty). Called on the loader thread, or on the
  // caller's thread for a request superseded before it started.
  using Done = std::function<void(std::shared_ptr<Engine>, const std::string& error)>;

  ~BackgroundLoader();
  // release() runs last, after the loader stopped touching itself (use it to
  // drop the reference that keeps the owner alive).
  void start(const timfusion::FuserOptions& options, uint64_t generation, cv::Size warm_size, Done done,
             std::function<void()> release);
  // Blocks until no load is running (at most the one in progress: waiting
  // requests are dropped first, so this never waits for a queue).
  void wait_idle();
  // Invalidates the load in progress (its result is discarded) and drops
  // the waiting request.
  void cancel();
  // Loads started, superseded waiting requests excluded (tests).
  uint64_t loads_started() const;

 private:
  struct Request {
    timfusion::FuserOptions options;
    uint64_t generation = 0;
    cv::Size warm_size;
    Done done;
    std::function<void()> release;
    uint64_t ticket = 0;
  };
  void run();  // the loader thread: takes the waiting request until none is left
  static void superseded(Request& r);
  // Takes the waiting request out (under mu_); the caller reports it superseded outside the lock.
  std::unique_ptr<Request> take_waiting_locked();

  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  bool running_ = false;
  std::unique_ptr<Request> waiting_;
  uint64_t latest_ = 0;
  uint64_t loads_started_ = 0;
};

}  // namespace tfgst
