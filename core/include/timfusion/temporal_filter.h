// timfusion: temporal stability for fused video, without LibTorch.
//
// A fusion network fuses each frame on its own, so camera noise that changes
// every frame makes the static parts of the picture shimmer. TemporalFilter
// is a motion-gated recursive filter on the fused frames:
//   O_t = O_{t-1} + a * (F_t - O_{t-1}),
// with a per pixel: `1 - strength` where neither input changed, rising to 1
// (the frame as fused, no memory) where either camera saw a change beyond
// its noise. The gate compares each input with a reference that is filtered
// the same way (so slow drifts accumulate until they count): the mean squared
// change over a 6x6-pixel box (3x3 blocks of 2x2; texture sliding past counts, not only a change of
// brightness), against the power of that change for noise alone: each
// camera's noise level is measured on every fourth frame (noise_level.h), and the
// frame's median change is used where the camera's noise is not white (up
// to 9x the white-noise power, so a panning camera, which changes
// everything, still counts as motion). Moving things therefore keep the per-frame fusion; only what
// stands still is averaged over time.
//
// reset() forgets the past: call it on flushing seeks, caps changes,
// discontinuities and model swaps. A change of size or channel count resets
// by itself.
#pragma once
#include <opencv2/core.hpp>

namespace timfusion {

struct TemporalFilterOptions {
  // 1 - a on static parts, 0..0.95: 0 is off; 0.75 keeps a quarter of each
  // new frame there (the frame-to-frame noise of a static scene drops to
  // ~0.19 of the unfiltered output's).
  double strength = 0.75;
  // Motion threshold, in standard deviations of a static box's mean squared
  // change over its noise power: a = 1 - strength below it, a = 1 from
  // twice that.
  double motion_threshold = 2.0;
};

class TemporalFilter {
 public:
  explicit TemporalFilter(const TemporalFilterOptions& options = {});  // throws Error on values out of range

  // ir, vis: the inputs' luma as fused (IR on the visible grid, 8- or 16-bit;
  // visible 8-bit), the
  // size of `fused`. fused: the fused 8-bit frame, 1..4 channels, filtered in
  // place (all channels with the same gate). The first frame after a reset
  // passes unchanged. Throws Error on mismatched sizes or types.
  void apply(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& fused);
  void reset();

  const TemporalFilterOptions& options() const { return options_; }
  // The share of pixels of the last frame that the gate saw as static (a <
  // 0.5), for logs and tests; 0 before the first filtered frame.
  double static_share() const { return static_share_; }

 private:
  TemporalFilterOptions options_;
  cv::Mat ref_ir_, ref_vis_;  // float32: the inputs as the output remembers them
  cv::Mat out_;               // float32, fused's channels: O_{t-1}
  cv::Mat box_ir_, box_vis_;  // float32: each input's energy of change; box_ir_ then holds the gate
  double static_share_ = 0;
  double noise_ir_ = 0, noise_vis_ = 0;  // the cameras' noise levels, last measured
  int frames_since_noise_ = 0;           // 0: measure them on this frame
};

}  // namespace timfusion
