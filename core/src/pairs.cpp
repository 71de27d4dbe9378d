#include "timfusion/pairs.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <opencv2/imgcodecs.hpp>
#include <unistd.h>

#include "timfusion/error.h"

namespace fs = std::filesystem;

namespace timfusion {

namespace {

const std::set<std::string> kImageExts = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp",
                                          ".pgm", ".ppm", ".pnm", ".pbm", ".jp2", ".exr", ".hdr"};

std::map<std::string, std::string> images_by_stem(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error(dir + ": folder not found");
  std::map<std::string, std::string> m;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
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
  if (!fs::exists(path)) throw Error(path + ": file not found");
  cv::Mat m = cv::imread(path, flags);
  if (m.empty()) throw Error(path + ": not an image OpenCV can read (corrupt or unsupported format)");
  return m;
}

void write_image(const std::string& path, const cv::Mat& image) {
  fs::path p(path);
  std::string tmp = (p.parent_path() / (".tmp-" + std::to_string(::getpid()) + "-" + p.filename().string())).string();
  bool ok = false;
  try {
    ok = cv::imwrite(tmp, image);
  } catch (const cv::Exception& e) {
    ok = false;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write image (unknown extension or folder not writable)");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error(path + ": cannot write image (" + ec.message() + ")");
}

}  // namespace timfusion
