// timfusion GStreamer element: the loaded model (a core Fuser) and the
// machinery to replace it while the pipeline runs.
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

#include "timfusion/fuser.h"
#include "timfusion/fuser_pool.h"

namespace tfgst {

// The model file actually meant by the options (empty model = core default).
std::string resolved_model_path(const timfusion::FuserOptions& o);
bool same_options(const timfusion::FuserOptions& a, const timfusion::FuserOptions& b);

class Engine {
 public:
  // Loads and validates the weights. Throws timfusion::Error whose message
  // names the file and the problem (other exceptions are converted).
  Engine(const timfusion::FuserOptions& options, uint64_t generation);

  const timfusion::FuserOptions& options() const { return options_; }
  const std::string& path() const { return path_; }
  uint64_t generation() const { return generation_; }
  double load_ms() const { return load_ms_; }
  const char* device_name() const;
  // LibTorch's intra-op thread count inside the last frame's forward (0
  // before the first): per frame worker when the last frame ran on one.
  int threads_in_last_forward() const {
    return last_frames_ > 1 ? frame_workers_->fuser().threads_in_last_forward() : last_threads_.load();
  }
  // Whether frames run on the process's shared CPU (threads=0).
  bool shared_cpu() const { return fuser_->shared_cpu(); }
  // Frames fused at once when the last frame was: the workers' count (> 1),
  // or 1 (0 before the first frame).
  int frames_in_flight_last() const { return last_frames_; }
  // The streaming thread says which path the frame took.
  void note_frame_path(bool on_workers) { last_frames_ = on_workers ? frame_workers_->capacity() : 1; }

  // Runs one frame of this size unless the last warm-up was at this size.
  // Returns the time it took (ms), or a negative value when skipped.
  double warmup(cv::Size size);
  // Fuser::fuse, serialised (one frame at a time per engine). On the shared
  // CPU the deadline orders the frame among all elements' frames; a frame
  // over the memory rule (FuserPool::frames_fit) runs on the wide Fuser,
  // split over every core, instead.
  void fuse(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& out, timfusion::ChannelOrder order,
            std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::now());

  // Frames in parallel (gsttimfusion_inflight.cpp): workers that each fuse
  // whole frames, or null when this engine has one thread or runs on a GPU.
  // Streaming thread only.
  timfusion::FuserPool* frame_workers() { return frame_workers_.get(); }
  // The frame workers for frames of this size, warmed up at it (all at once,
  // the first time at a size, when none is in flight), or null: no workers,
  // or a frame of this size breaks the memory rule (FuserPool::frames_fit).
  // The engine's own Fuser then gives back its frame memory.
  timfusion::FuserPool* frame_workers_for(cv::Size size);

 private:
  timfusion::FuserOptions options_;
  std::string path_;
  uint64_t generation_;
  double load_ms_ = 0;
  std::mutex run_mu_;
  std::unique_ptr<timfusion::Fuser> fuser_;
  std::unique_ptr<timfusion::FuserPool> frame_workers_;
  std::unique_ptr<timfusion::Fuser> wide_fuser_;  // shared CPU only: for frames over the memory rule
  bool wide_ = false;                              // the warmed-up size goes to wide_fuser_
  std::atomic<int> last_threads_{0};
  std::atomic<int> last_frames_{0};
  cv::Size workers_size_;       // the size frame_workers_for decided for
  bool workers_allowed_ = false;  // its decision
  cv::Size warmed_;
};

// The "what()" of whatever a load threw, always naming the file.
std::string load_error_message(const std::string& path, const std::exception* e);

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
