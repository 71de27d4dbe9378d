// Small images and shortcuts shared by the metric tests.
#pragma once
#include <functional>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "test_support.h"
#include "timfusion/metrics.h"

namespace mtest {

// An 8-bit gray image with pixel (i, j) = f(i, j), i = row.
inline cv::Mat gray(int rows, int cols, const std::function<int(int, int)>& f) {
  cv::Mat m(rows, cols, CV_8U);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) m.at<uchar>(i, j) = cv::saturate_cast<uchar>(f(i, j));
  return m;
}

inline cv::Mat constant(int rows, int cols, int v) { return cv::Mat(rows, cols, CV_8U, cv::Scalar(v)); }

// A TNO image from the shared data, e.g. tno("ir", "01") or tno("fused/DenseFuse", "07").
inline cv::Mat tno(const std::string& folder, const std::string& name) {
  return cv::imread(tftest::data("tno42/" + folder + "/" + name + ".png"), cv::IMREAD_UNCHANGED);
}

inline double metric(const std::string& name, const cv::Mat& ir, const cv::Mat& vis, const cv::Mat& fused,
                     timfusion::ColorMode mode = timfusion::ColorMode::PerChannel) {
  return timfusion::compute_metric(name, ir, vis, fused, mode);
}

}  // namespace mtest
