// timfusion: an image's sensor-noise level, without LibTorch.
//
// The same estimator as the networks' noise floor (core/src/nn/noise_sigma.h,
// arch.h "noise_coring"): Immerkaer's 3x3 finest-band mask
// [1 -2 1; -2 4 -2; 1 -2 1] at every second row and column, the median of its
// magnitude / (0.6745 * 6). It is zero on constant, linear and quadratic
// patches, and the median ignores the minority of positions on edges, so on
// natural images it measures the noise, not the scene.
#pragma once
#include <opencv2/core.hpp>

namespace timfusion {

// Standard deviation of the noise of an 8-bit single-channel image, in grey
// levels; of a 16-bit one, in grey levels of 255 (value / 257). 0 for images
// smaller than 3x3. Throws Error for another type.
double noise_level(const cv::Mat& gray);
// The same for a float single-channel image in 0..1 (the networks' inputs; the
// CPU frame path's noise floor), in those units. Throws Error for another type.
double noise_level_unit(const cv::Mat& gray32f);

}  // namespace timfusion
