#include "timfusion_latency.h"

namespace tfgst {

void LatencyTracker::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  avg_ms_ = 0.0;
  have_ = false;
  reported_ = GST_CLOCK_TIME_NONE;
}

void LatencyTracker::forget_report() {
  std::lock_guard<std::mutex> lock(mu_);
  reported_ = GST_CLOCK_TIME_NONE;
}

bool LatencyTracker::has_samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  return have_;
}

void LatencyTracker::add(double ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!have_) {
    avg_ms_ = ms;
    have_ = true;
  } else {
    avg_ms_ += kAlpha * (ms - avg_ms_);
  }
}

double LatencyTracker::average_ms() const {
  std::lock_guard<std::mutex> lock(mu_);
  return avg_ms_;
}

bool LatencyTracker::take_report(GstClockTime* latency) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!have_) return false;
  const double estimate_ns = avg_ms_ * 1e6;
  const bool first = !GST_CLOCK_TIME_IS_VALID(reported_);
  const bool grew = !first && estimate_ns > static_cast<double>(reported_);
  const bool dropped = !first && estimate_ns < (1.0 - kThreshold) * static_cast<double>(reported_);
  if (!first && !grew && !dropped) return false;
  reported_ = static_cast<GstClockTime>(estimate_ns * (1.0 + kHeadroom));
  *latency = reported_;
  return true;
}

GstClockTime LatencyTracker::reported() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reported_;
}

}  // namespace tfgst
