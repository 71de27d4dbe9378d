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
#include "timfusion/image_header.h"
#include "timfusion/image_limits.h"
#include "timfusion/input_file.h"

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
    // Folders are not images; anything else with an image's name is listed,
    // readable or not (a FIFO, a symlink loop): read_image then names the
    // file and its problem, where skipping it here made its partner's
    // message "no partner" (issue 27).
    std::error_code type_ec;
    if (e.is_directory(type_ec)) continue;
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

static void check_image_size(const ImageHeader& h, const std::string& path) {
  if (h.width > 0 && h.height > 0 && h.width <= kMaxImageSide && h.height <= kMaxImageSide &&
      h.width * h.height <= kMaxImagePixels)
    return;
  throw Error(path + ": the " + h.format + " image declares " + std::to_string(h.width) + "x" +
              std::to_string(h.height) + " pixels; images up to " + std::to_string(kMaxImageSide) +
              " pixels a side and " + std::to_string(kMaxImagePixels >> 20) +
              " megapixels are read (refused before decoding: a corrupt or hostile file, or resize it)");
}

cv::Mat read_image(const std::string& path, int flags) {
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  if (ec) throw Error(path + ": cannot read the image (" + ec.message() + ")");  // a symlink loop, a denied folder
  if (!exists) throw Error(path + ": file not found");
  // InputFile refuses a FIFO (it would hang the decoder) or a device (it
  // would never end). The bytes are read once: the size checked below is the
  // size of the image decoded (no second open that could find another file).
  const std::string bytes = InputFile(path, kMaxImageFileBytes, "image").read_all();
  // The declared size against the limits before decoding: a small file can
  // declare gigapixels (issue 27: 12 GB for a 2.6 MB PNG).
  check_image_size(parse_image_header(bytes, path), path);
  cv::Mat m;
  try {
    const cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    m = cv::imdecode(encoded, flags);
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
