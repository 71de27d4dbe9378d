// timfusion-train downstream: the report (Markdown table and a PNG chart)
// from the run's results.json. No LibTorch here.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace timfusion::train {

// MFNet class names (the msrs_seg numbering) when there are at most 9
// classes, else "class N".
std::string class_name(int id, int classes);

// Mean and sample standard deviation (n - 1; 0 for one value) of the finite values.
struct MeanStd {
  double mean = 0, std = 0;
  int n = 0;
};
MeanStd mean_std(const std::vector<double>& v);

// Adds to each row of results["rows"] its summaries: miou_mean/std,
// pixel_accuracy_mean, iou_mean/iou_std per class, and the paired
// difference to the reference row (results["reference"]) seed by seed:
// delta_miou_mean/std.
void summarise_downstream(nlohmann::json& results);

// The Markdown report: settings, split, the table (mIoU mean ± std,
// paired difference to the reference, per-class IoU of the classes present
// in the test labels), per-seed values, test pair names.
std::string downstream_markdown(const nlohmann::json& results);

// A bar chart of mIoU per input (bar: mean, whisker: ± std, dots: seeds).
void write_downstream_png(const std::string& path, const nlohmann::json& results);

}  // namespace timfusion::train
