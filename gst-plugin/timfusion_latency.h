// timfusion GStreamer element: processing-time tracking for latency reports.
//
// The rule is NNStreamer's tensor_filter one: the element reports its
// processing latency as the moving average of the measured time plus 5%
// headroom, and re-reports (a LATENCY message, so the pipeline reconfigures)
// when the estimate grows beyond what was reported or falls more than 25%
// below it. The headroom keeps small fluctuations from flooding the bus.
#pragma once

#include <mutex>

#include <gst/gst.h>

namespace tfgst {

class LatencyTracker {
 public:
  static constexpr double kHeadroom = 0.05;   // added to the estimate
  static constexpr double kThreshold = 0.25;  // re-report when it drops by more
  static constexpr double kAlpha = 0.1;       // exponential moving average weight

  void reset();
  // Keeps the average but forgets what was reported (a new negotiation
  // reports again).
  void forget_report();
  bool has_samples() const;
  // One measurement (milliseconds) of the per-frame processing time.
  void add(double ms);
  // Moving average in ms, 0 before the first measurement.
  double average_ms() const;
  // When a (re-)report is due: returns TRUE and the processing latency to
  // report (average + headroom), remembering it as reported.
  bool take_report(GstClockTime* latency);
  GstClockTime reported() const;

 private:
  mutable std::mutex mu_;
  double avg_ms_ = 0.0;
  bool have_ = false;
  GstClockTime reported_ = GST_CLOCK_TIME_NONE;
};

}  // namespace tfgst
