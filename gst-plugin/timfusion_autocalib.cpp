// timfusion GStreamer element: calibration from live frames (see the header).
#include "timfusion_autocalib.h"

#include <exception>

namespace tfgst {

void AutoCalibrator::start(double seconds, int max_frames, cv::Size board, Done done) {
  stop();
  std::lock_guard<std::mutex> lock(mu_);
  seconds_ = seconds;
  max_frames_ = std::max(1, max_frames);
  board_ = board;
  done_ = std::move(done);
  pairs_.clear();
  have_first_ = false;
  cancel_ = false;
  collecting_.store(true, std::memory_order_release);
}

void AutoCalibrator::stop() {
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    collecting_ = false;
    cancel_ = true;
    pairs_.clear();
    t = std::move(worker_);
  }
  if (t.joinable()) t.join();
}

void AutoCalibrator::offer(const cv::Mat& ir, const cv::Mat& vis, uint64_t pts_ns) {
  if (!collecting()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!collecting_) return;
  const uint64_t window = uint64_t(seconds_ * 1e9);
  const uint64_t interval = window / uint64_t(max_frames_);
  if (!have_first_) {
    first_ = next_ = pts_ns;
    have_first_ = true;
  }
  if (pts_ns >= next_) {
    pairs_.push_back({"frame@" + std::to_string(pts_ns / 1000000) + "ms", ir.clone(), vis.clone()});
    next_ = pts_ns + std::max<uint64_t>(interval, 1);
  }
  const bool window_done = pts_ns - first_ >= window;
  if (int(pairs_.size()) < max_frames_ && !window_done) return;
  collecting_ = false;
  if (worker_.joinable()) worker_.join();  // a finished earlier run (stop() joins running ones)
  worker_ = std::thread(&AutoCalibrator::run, this, std::move(pairs_));
  pairs_.clear();
}

void AutoCalibrator::run(std::vector<timfusion::CalibrationPair> pairs) {
  // Nothing may escape a thread: every failure becomes the callback's error.
  const int n = int(pairs.size());
  timfusion::CalibrationOptions o;
  o.cancel = &cancel_;
  try {
    timfusion::CheckerboardOptions board;
    board.inner_corners = board_;
    const timfusion::Calibration c =
        board_.empty() ? timfusion::calibrate(pairs, o) : timfusion::calibrate_checkerboard(pairs, board);
    if (!cancel_) done_(&c, "", n);
  } catch (const timfusion::CalibrationCancelled&) {
  } catch (const std::exception& e) {
    if (!cancel_) done_(nullptr, e.what(), n);
  } catch (...) {
    if (!cancel_) done_(nullptr, "unknown error", n);
  }
}

}  // namespace tfgst
