#include "timfusion/pairs.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

#include <opencv2/imgcodecs.hpp>

#include "timfusion/atomic_file.h"
#include "timfusion/error.h"
#include "timfusion/error_message.h"

namespace fs = std::filesystem;

namespace timfusion {

namespace {

const std::set<std::string> kImageExts = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp",
                                          ".pgm", ".ppm", ".pnm", ".pbm", ".jp2", ".exr", ".hdr"};

std::map<std::string, std::string> images_by_stem(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error(dir + ": folder not found");
  std::map<std::string, std::string> m;
  std::error_code ec;  // an unreadable folder is an Error, not a filesystem_error
  fs::directory_iterator it(dir, ec), end;
  if (ec) throw Error(dir + ": cannot list the folder (" + ec.message() + ")");
  for (; it != end; it.increment(ec)) {
    if (ec) throw Error(dir + ": cannot list the folder (" + ec.message() + ")");
    const auto& e = *it;
    std::error_code type_ec;
    if (!e.is_regular_file(type_ec)) continue;
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!kImageExts.count(ext)) continue;
    std::string stem = e.path().stem().string();
    auto it = m.find(stem);
    // Two files with one base name: prefer the lossless one deterministically.
    if (it == m.end() || e.path().string() < it->second) m[stem] = e.path().string();
  }
  return m;
}

}  // namespace

bool is_directory(const std::string& path) { return fs::is_directory(path); }

std::vector<ImagePair> list_pairs(const std::string& ir_dir, const std::string& vis_dir,
                                  std::vector<std::string>* unmatched) {
  auto ir = images_by_stem(ir_dir);
  auto vis = images_by_stem(vis_dir);
  std::vector<ImagePair> pairs;
  for (const auto& [stem, path] : ir) {
    auto v = vis.find(stem);
    if (v != vis.end())
      pairs.push_back({stem, path, v->second});
    else if (unmatched)
      unmatched->push_back(path);
  }
  if (unmatched)
    for (const auto& [stem, path] : vis)
      if (!ir.count(stem)) unmatched->push_back(path);
  if (pairs.empty())
    throw Error("no image pairs: no base name appears in both " + ir_dir + " and " + vis_dir);
  return pairs;
}

cv::Mat read_image(const std::string& path, int flags) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": file not found");
  // Only regular files: a FIFO would hang imread, a device would never end.
  if (!fs::is_regular_file(path, ec)) throw Error(path + ": not a regular file (a folder, FIFO or device)");
  cv::Mat m;
  try {
    // OpenCV refuses images over 2^30 pixels while decoding (OPENCV_IO_MAX_IMAGE_PIXELS);
    // fusion's own, lower limit (fuser.h) is checked on the decoded size.
    m = cv::imread(path, flags);
  } catch (...) {
    rethrow_as_error(path + ": cannot read the image: ");
  }
  if (m.empty()) throw Error(path + ": not an image OpenCV can read (corrupt or unsupported format)");
  return m;
}

void write_image(const std::string& path, const cv::Mat& image) {
  // Encoded in memory, then written through AtomicFile: cv::imwrite would
  // open a predictable temporary name itself (following planted symlinks).
  std::vector<uint8_t> bytes;
  bool ok = false;
  try {
    ok = cv::imencode(fs::path(path).extension().string(), image, bytes);
  } catch (const cv::Exception&) {
    ok = false;
  }
  if (!ok) throw Error(path + ": cannot write image (unknown extension or unsupported image type)");
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace timfusion
