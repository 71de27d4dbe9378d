// timfusion-train: stops a run whose loss explodes (no LibTorch).
//
// Only a NaN used to stop training: `--lr 10` gave a loss of 1.7e14 at step
// 2 and 2.7e17 at the end, "done", exit 0, and a checkpoint holding inf
// (issue 27). A run is now diverged when its loss is not finite, or when it
// exceeds kFactor times its reference: the lowest exponential moving average
// of the loss so far (so the reference is the run's own early value, and a
// slow climb is measured from the best it was, not from where it has got to).
//
// Why 1000: the loss of a healthy run stays within a small factor of its
// early value (it falls, and varies between crops); the diverging run of the
// issue went from ~1 to 1.7e14 in two steps, so the margin is wide on both
// sides.
#pragma once
#include <cstdint>
#include <string>

namespace timfusion::train {

class DivergenceGuard {
 public:
  static constexpr double kFactor = 1000;
  static constexpr double kEmaWeight = 0.1;  // of the newest loss in the moving average

  // Throws Error naming the step, the loss and the reference when `loss`
  // (of step `step`) is diverged; `what` is the loss's name ("loss").
  void check(double loss, int64_t step, const std::string& what = "loss");
  // The reference (0 before the first finite loss).
  double reference() const { return best_ema_; }

 private:
  double ema_ = 0, best_ema_ = 0;
  bool started_ = false;
};

}  // namespace timfusion::train
