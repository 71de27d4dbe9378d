// timfusion: bringing the IR frame onto the visible camera's pixel grid.
#pragma once
#include <array>
#include <string>

#include <opencv2/core.hpp>

namespace timfusion {

// A 3x3 homography, row-major, that maps IR pixel coordinates (x, y, 1) to
// visible pixel coordinates. Identity means "the cameras are co-aligned": IR
// frames of another size are then scaled to the visible size.
struct Homography {
  std::array<double, 9> m{1, 0, 0, 0, 1, 0, 0, 0, 1};

  bool is_identity() const;
  // Finite, invertible, orientation-preserving (no mirror): throws Error.
  void validate() const;
  static Homography parse(const std::string& nine_numbers);  // "a,b,c,...,i"
  // JSON {"ir-homography": [9 numbers]} or a GLib-style key file with
  // "ir-homography=a;b;...;i" (or ',' separated) under any group. Files
  // come from others: regular files only, at most 64 KiB, lines of at most
  // 4096 characters, parsed in one linear pass (homography.cpp).
  static Homography load(const std::string& path);
  static Homography from_text(const std::string& file_content);  // as load()
};

// Resamples ir (any depth, 1 channel) onto a grid of vis_size. Returns ir
// itself (no copy) when nothing needs doing.
cv::Mat warp_ir(const cv::Mat& ir, const Homography& h, cv::Size vis_size);

}  // namespace timfusion
