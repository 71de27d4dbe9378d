// timfusion: the fusion engine (issue 28): the one place where options
// become a way to run frames. It resolves the model file, loads it (through
// the process's cache of prepared networks: one read per file and process),
// and decides each frame's path:
//  - threads = 0: the process's shared CPU (shared_cpu.h), one frame whole on
//    one core; frames in flight (non-live) on min(cores, 4) workers there;
//  - threads = N > 0: its own N intra-op threads, or min(N, 4) frame workers;
//  - either way, a frame over the memory rule (FuserPool::frames_fit) is
//    split over the threads (every core for threads = 0) instead of going
//    side by side with others.
// The GStreamer element holds one per loaded model (a model swap makes a new
// one); a frame keeps its engine alive while in flight.
//
// No LibTorch types.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>

#include <opencv2/core.hpp>

#include "timfusion/fuser.h"
#include "timfusion/fuser_pool.h"

namespace timfusion {

// Whether two option sets load the same thing (model names resolved to files).
bool same_options(const FuserOptions& a, const FuserOptions& b);

class Engine {
 public:
  // Loads and validates the weights. Throws Error whose message
  // names the file and the problem (other exceptions are converted).
  Engine(const FuserOptions& options, uint64_t generation);

  const FuserOptions& options() const { return options_; }
  const std::string& path() const { return path_; }
  uint64_t generation() const { return generation_; }
  double load_ms() const { return load_ms_; }
  const char* device_name() const;
  // LibTorch's intra-op thread count inside the last frame's forward (0
  // before the first): per frame worker when the last frame ran on one.
  int threads_in_last_forward() const {
    return last_frames_ > 1 ? frame_workers_->fuser().threads_in_last_forward() : last_threads_.load();
  }
  // The options as resolved, in one line for logs and messages: the file
  // loaded, device, precision, where frames run (shared CPU and its workers,
  // or own threads), the frames that can be in flight, and the memory rule.
  std::string description() const;
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
  void fuse(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& out, ChannelOrder order,
            std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::now());

  // Frames in parallel (gsttimfusion_inflight.cpp): workers that each fuse
  // whole frames, or null when this engine has one thread or runs on a GPU.
  // Streaming thread only.
  FuserPool* frame_workers() { return frame_workers_.get(); }
  // The frame workers for frames of this size, warmed up at it (all at once,
  // the first time at a size, when none is in flight), or null: no workers,
  // or a frame of this size breaks the memory rule (FuserPool::frames_fit).
  // The engine's own Fuser then gives back its frame memory.
  FuserPool* frame_workers_for(cv::Size size);

 private:
  FuserOptions options_;
  std::string path_;
  uint64_t generation_;
  double load_ms_ = 0;
  std::mutex run_mu_;
  std::unique_ptr<Fuser> fuser_;
  std::unique_ptr<FuserPool> frame_workers_;
  std::unique_ptr<Fuser> wide_fuser_;  // shared CPU only: for frames over the memory rule
  bool wide_ = false;                  // frames of decided_'s size go to wide_fuser_
  bool fits_ = false;                  // frames of decided_'s size pass the memory rule
  cv::Size decided_;                   // the size the two flags above are for
  std::atomic<int> last_threads_{0};
  std::atomic<int> last_frames_{0};
  cv::Size workers_size_;              // the size frame_workers_for decided for
  bool workers_allowed_ = false;       // its decision
  cv::Size warmed_;                    // the size fuser_ was last warmed up at

  // Applies the memory rule at this size once (run_mu_ held).
  void decide_locked(cv::Size size);
};

// The "what()" of whatever a load threw, always naming the file.
std::string load_error_message(const std::string& path, const std::exception* e);

}  // namespace timfusion
