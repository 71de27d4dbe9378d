// timfusion GStreamer element: calibration from the first seconds of live
// frames, on a background thread (independent of the GObject).
//
// The streaming thread offers every frame pair; while collecting, one pair is
// copied every seconds/frames of stream time (a copy of two luma planes, well
// under a millisecond). When the window is full, a worker thread runs
// timfusion::calibrate() (or calibrate_checkerboard()) and hands the outcome to a callback; the streaming
// thread never waits for it. stop() cancels and joins the worker.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>

#include "timfusion/calibration.h"

namespace tfgst {

class AutoCalibrator {
 public:
  // Called on the worker thread: the calibration, or nullptr and the reason.
  using Done = std::function<void(const timfusion::Calibration* result, const std::string& error, int frames)>;

  ~AutoCalibrator() { stop(); }

  // Starts collecting (cancels and joins a previous run first). board: the
  // inner corners of a checkerboard to calibrate on (calibrate_checkerboard);
  // empty: the scene's structure (calibrate).
  void start(double seconds, int max_frames, cv::Size board, Done done);
  // Cancels a running estimate and joins the worker; nothing is reported.
  void stop();
  // Cheap check for the streaming thread.
  bool collecting() const { return collecting_.load(std::memory_order_acquire); }
  // Streaming thread: ir and vis are this output slot's frames (luma, any
  // depth); pts_ns the visible frame's timestamp. Copies them when due and
  // starts the worker when the window is complete.
  void offer(const cv::Mat& ir, const cv::Mat& vis, uint64_t pts_ns);

 private:
  void run(std::vector<timfusion::CalibrationPair> pairs);

  std::mutex mu_;
  std::atomic<bool> collecting_{false};
  std::atomic<bool> cancel_{false};
  std::thread worker_;
  Done done_;
  double seconds_ = 0;
  int max_frames_ = 1;
  cv::Size board_;
  uint64_t first_ = 0, next_ = 0;
  bool have_first_ = false;
  std::vector<timfusion::CalibrationPair> pairs_;
};

}  // namespace tfgst
