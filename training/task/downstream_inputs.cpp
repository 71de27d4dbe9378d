#include "task/downstream_inputs.h"

#include <cmath>
#include <filesystem>

#include <opencv2/imgproc.hpp>

#include "timfusion/error.h"

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {

cv::Mat unit_plane(const cv::Mat& m) {  // CV_8U or CV_32F [0,1] -> CV_32F [0,1]
  cv::Mat f;
  if (m.depth() == CV_8U)
    m.convertTo(f, CV_32F, 1.0 / 255.0);
  else
    m.convertTo(f, CV_32F);
  return f;
}

std::string find_image(const std::string& dir, const std::string& name) {
  for (const char* ext : {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"}) {
    fs::path p = fs::path(dir) / (name + ext);
    if (fs::exists(p)) return p.string();
  }
  return "";
}

}  // namespace

DownstreamInput parse_downstream_input(const std::string& text) {
  DownstreamInput in;
  const auto eq = text.find('=');
  in.spec = eq == std::string::npos ? text : text.substr(eq + 1);
  if (in.spec.empty()) throw Error("downstream input \"" + text + "\": nothing after '=' (ir, vis, mean or a folder)");
  if (eq != std::string::npos) {
    in.name = text.substr(0, eq);
    if (in.name.empty()) throw Error("downstream input \"" + text + "\": empty name before '='");
  } else {
    in.name = in.is_folder() ? fs::path(in.spec).lexically_normal().filename().string() : in.spec;
    if (in.name.empty() || in.name == ".") in.name = fs::path(in.spec).lexically_normal().parent_path().filename().string();
  }
  if (in.is_folder() && !fs::is_directory(in.spec))
    throw Error("downstream input \"" + text + "\": " + in.spec +
                " is not a folder (an input is ir, vis, mean or a folder of fused images)");
  return in;
}

std::vector<SegImage> input_images(const PairDataset& pairs, const DownstreamInput& input, double scale) {
  if (!(scale > 0 && scale <= 1)) throw Error("downstream scale must be in (0, 1], got " + std::to_string(scale));
  std::vector<SegImage> out;
  std::vector<std::string> missing;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Sample& s = pairs.at(i);
    cv::Mat full;
    if (input.spec == "ir") {
      full = unit_plane(s.ir);
    } else if (input.spec == "vis") {
      full = unit_plane(s.vis_y);
    } else if (input.spec == "mean") {
      full = (unit_plane(s.ir) + unit_plane(s.vis_y)) * 0.5;
    } else {
      const std::string path = find_image(input.spec, s.name);
      if (path.empty()) {
        missing.push_back(s.name);
        continue;
      }
      full = unit_plane(load_luma(path));
      if (full.size() != s.ir.size())
        throw Error(path + ": fused image is " + std::to_string(full.cols) + "x" + std::to_string(full.rows) +
                    " but pair \"" + s.name + "\" is " + std::to_string(s.ir.cols) + "x" + std::to_string(s.ir.rows));
    }
    SegImage e;
    e.name = s.name;
    e.label = s.label;
    if (scale == 1) {
      e.image = full;
      e.label_small = s.label;
    } else {
      const cv::Size small(std::max(1, static_cast<int>(std::lround(full.cols * scale))),
                           std::max(1, static_cast<int>(std::lround(full.rows * scale))));
      cv::resize(full, e.image, small, 0, 0, cv::INTER_AREA);
      cv::resize(s.label, e.label_small, small, 0, 0, cv::INTER_NEAREST);
    }
    out.push_back(std::move(e));
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 3; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 3) list += ", ...";
    throw Error(input.spec + ": no fused image for " + std::to_string(missing.size()) + " of the " +
                std::to_string(pairs.size()) + " pairs (" + list + "); fuse the same pairs (name.png per pair)");
  }
  return out;
}

}  // namespace timfusion::train
