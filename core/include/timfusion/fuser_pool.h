// timfusion: frame-level parallelism. Several frames are fused at once, each
// by its own single-threaded Fuser on its own worker thread, and come back in
// the order they were started.
//
// Why: at 640x480 the network's feature maps are small (160x120 at the
// default model's downscale 4), so splitting one frame over the cores
// (LibTorch's intra-op threads) joins all cores at a barrier after every
// layer, dozens of times per frame. When anything else in the process needs
// a core for a moment (a pipeline's sources, converters, the sink), the whole
// team waits for the one thread that lost its core: on 2 cores, 2 intra-op
// threads were measured no faster than 1 in a plain gst-launch-1.0 pipeline.
// Whole frames on separate cores share nothing until the frame is done, so
// throughput grows with the cores; the price is frames in flight (latency),
// which is why a live pipeline keeps one frame over the intra-op threads.
//
// No LibTorch types: the workers' Fusers are behind fuser.h.
#pragma once

#include <chrono>
#include <memory>

#include <opencv2/core.hpp>

#include "timfusion/fuser.h"

namespace timfusion {

class FuserPool {
 public:
  // workers Fusers of one model (each loads the file), each running
  // options.threads intra-op threads (here 0 means 1: workers x threads
  // should not exceed the cores). workers >= 1. CPU only (a GPU runs one
  // frame at a time well). Throws Error naming the file and the problem, as
  // Fuser does.
  FuserPool(const FuserOptions& options, int workers);
  ~FuserPool();  // waits for the frames in flight, then stops the workers
  FuserPool(const FuserPool&) = delete;
  FuserPool& operator=(const FuserPool&) = delete;

  // How many workers a budget of threads gets: one per thread, at most
  // kMaxWorkers (each more frame in flight adds latency and memory for less
  // and less throughput); each worker then runs threads / workers intra-op
  // threads. The element and timfusion-fuse both size their pools this way.
  static constexpr int kMaxWorkers = 4;
  static int workers_for(int threads);
  // The memory rule, the one place it lives: frames go side by side only
  // while one frame needs at most this much tensor memory, measured on a
  // Fuser that has fused (or warmed up at) that frame size. Each frame in
  // flight holds its own intermediate tensors, and a model whose frames need
  // that much has layers large enough for intra-op threads to split well
  // (ivif-light at 640x480: ~1 GB a frame, 1.86x at 2 threads), while a small
  // one (ivif-rt: tens of MB) gains most from whole frames.
  static constexpr size_t kMaxFrameMemoryInFlight = size_t{256} << 20;
  static bool frames_fit(const Fuser& warmed);

  int capacity() const;   // the number of workers: frames that can be in flight
  int in_flight() const;  // started and not yet finished

  // Starts fusing one frame on the next worker (Fuser::fuse's contract for
  // the images; out preallocated at vis's size and type). Needs
  // in_flight() < capacity(), else throws Error. ir, vis and out's pixels
  // are used until finish_oldest() has returned for this frame: keep them
  // alive and unchanged, and read out only after that.
  void start(const cv::Mat& ir, const cv::Mat& vis, const cv::Mat& out, ChannelOrder order);
  // With options.shared_cpu, the workers' jobs are tasks on the process's
  // shared CPU (shared_cpu.h; the pool then has no threads of its own) and
  // the deadline orders this frame among the process's waiting frames.
  void start(const cv::Mat& ir, const cv::Mat& vis, const cv::Mat& out, ChannelOrder order,
             std::chrono::steady_clock::time_point deadline);
  // Whether the oldest frame in flight is done (false when none is in flight).
  bool oldest_done() const;
  // Waits up to timeout for the oldest frame in flight; true when it is done.
  bool wait_oldest(std::chrono::microseconds timeout) const;
  // Waits for the oldest frame in flight and retires it. Returns the time
  // its fusion took on its worker (ms). Throws Error with the worker's
  // message when that frame's fusion failed (its out is then undefined).
  double finish_oldest();

  // Runs one frame of this size on every worker at once (Fuser::warmup).
  // Needs no frame in flight.
  void warmup(cv::Size size);

  // The first worker's Fuser (arch, model path, device, precision): all
  // workers load the same file with the same options.
  const Fuser& fuser() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace timfusion
