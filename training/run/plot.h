// timfusion-train: the loss curve of a run as a PNG (OpenCV drawing).
#pragma once
#include <string>
#include <vector>

namespace timfusion::train {

struct Series {
  std::string name;
  std::vector<double> x, y;  // non-finite or non-positive y are skipped
};

// Draws the series on a log-scale y axis (raw values faint, an exponential
// moving average on top), with axes, ticks and a legend; writes `path`.
void write_curve_png(const std::string& path, const std::string& title, const std::vector<Series>& series,
                     int width = 960, int height = 540);

}  // namespace timfusion::train
