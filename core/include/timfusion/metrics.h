// timfusion: objective quality metrics for IR/visible image fusion.
//
// Every metric that the VIFB benchmark has (xingchenzhang/VIFB, metrics/*.m) follows
// VIFB's MATLAB code, quirks included, so that figures compare with the methods
// published there; the others follow the code the fusion literature uses (see
// metric_convention()). OpenCV only: no LibTorch in this header.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace timfusion {

// How colour images become the gray planes the metrics are defined on.
enum class ColorMode {
  // VIFB: each fused RGB channel k against visible channel k (or the gray visible
  // image) and the gray infrared, averaged over the channels.
  PerChannel,
  // BT.601 luma (MATLAB rgb2gray weights, rounded to 8 bits) of every colour image.
  Luma,
};

const char* color_mode_name(ColorMode mode);          // "per-channel" or "luma"
ColorMode parse_color_mode(const std::string& name);  // throws Error for other names

// One evaluation: 8-bit images of one size, gray or colour in OpenCV's BGR(A) order.
struct MetricInputs {
  cv::Mat ir, vis, fused;
};

// en sd sf ag mi scd vif qabf nabf ssim ce ei qcb qcv psnr_vifb rmse_vifb psnr rmse
const std::vector<std::string>& metric_names();
bool is_metric(const std::string& name);
// One line: what the metric is and the convention behind its number.
const std::string& metric_convention(const std::string& name);
// False for the metrics where smaller is better (nabf, ce, qcv, rmse, rmse_vifb).
bool higher_is_better(const std::string& name);
// Splits "en,mi, qabf" into checked names; throws Error naming an unknown one.
std::vector<std::string> parse_metric_list(const std::string& csv);

// Throws Error for an unknown name, empty or non-8-bit images, or differing sizes.
// A value can be NaN or inf where the VIFB definition divides by zero (e.g. Qcb, Qcv
// on a constant image).
double compute_metric(const std::string& name, const MetricInputs& in,
                      ColorMode mode = ColorMode::PerChannel);
double compute_metric(const std::string& name, const cv::Mat& ir, const cv::Mat& vis,
                      const cv::Mat& fused, ColorMode mode = ColorMode::PerChannel);
std::map<std::string, double> compute_all(const MetricInputs& in,
                                          ColorMode mode = ColorMode::PerChannel,
                                          const std::vector<std::string>& names = metric_names());

}  // namespace timfusion
