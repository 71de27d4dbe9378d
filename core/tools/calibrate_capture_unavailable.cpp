// timfusion-calibrate built without GStreamer: capture is not available (the
// image-file workflow is).
#include "calibrate_capture.h"

namespace timfusion {

bool capture_available() { return false; }

std::vector<CalibrationPair> capture_pairs(const std::string&, const std::string&, int, double) {
  throw Error("this timfusion-calibrate was built without GStreamer: capture frames to image files and pass "
              "--ir/--vis instead");
}

}  // namespace timfusion
