#include "run/divergence.h"

#include <cmath>
#include <cstdio>

#include "timfusion/error.h"

namespace timfusion::train {

namespace {
std::string g(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}
}  // namespace

void DivergenceGuard::check(double loss, int64_t step, const std::string& what) {
  const std::string at = " at step " + std::to_string(step);
  const std::string advice = ": training diverged; lower lr or set grad_clip (no model is written; a checkpoint, "
                             "if one was written, holds the weights of an earlier step)";
  if (!std::isfinite(loss)) throw Error("the " + what + " became " + g(loss) + at + advice);
  if (started_ && best_ema_ > 0 && loss > kFactor * best_ema_)
    throw Error("the " + what + " exploded to " + g(loss) + at + ", more than " + g(kFactor) +
                " times its lowest running value " + g(best_ema_) + advice);
  ema_ = started_ ? ema_ + kEmaWeight * (loss - ema_) : loss;
  best_ema_ = started_ ? std::min(best_ema_, ema_) : ema_;
  started_ = true;
}

}  // namespace timfusion::train
