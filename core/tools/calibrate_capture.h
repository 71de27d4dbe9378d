// timfusion-calibrate: frame pairs from two live GStreamer sources.
#pragma once
#include <string>
#include <vector>

#include "timfusion/calibration.h"

namespace timfusion {

// True when this build of timfusion-calibrate can capture (GStreamer found).
bool capture_available();

// Runs "<ir_src> ! ... ! appsink" and "<vis_src> ! ... ! appsink" in one
// pipeline and takes `frames` pairs spread over `seconds` (the visible frame
// and the IR frame nearest to it in time). Throws Error naming the problem
// (pipeline syntax, a source that fails, no frames within the time limit).
std::vector<CalibrationPair> capture_pairs(const std::string& ir_src, const std::string& vis_src, int frames,
                                           double seconds);

}  // namespace timfusion
