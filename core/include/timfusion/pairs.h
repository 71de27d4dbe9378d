// timfusion: IR/visible image pairs in two folders, matched by base name.
#pragma once
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace timfusion {

struct ImagePair {
  std::string name;  // base name without extension
  std::string ir;
  std::string vis;
};

// Files OpenCV can read, matched by base name ("a.png" pairs with "a.jpg").
// Throws Error for a missing folder or when no pair matches; images present
// in only one folder are listed in `unmatched` when given.
std::vector<ImagePair> list_pairs(const std::string& ir_dir, const std::string& vis_dir,
                                  std::vector<std::string>* unmatched = nullptr);

// Every tool's image reader: cv::imread with a clear Error for a missing or
// unreadable file, and the size the file declares checked against
// image_limits.h before decoding (a decompression bomb costs nothing).
// flags as cv::imread (default: keep depth and channels).
cv::Mat read_image(const std::string& path, int flags = -1);
// cv::imwrite through a temporary file + rename; Error on failure.
void write_image(const std::string& path, const cv::Mat& image);

bool is_directory(const std::string& path);

}  // namespace timfusion
