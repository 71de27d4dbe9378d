// Helpers for the timfusion-train tests: tiny datasets and running the tool.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "test_support.h"

namespace trtest {

namespace fs = std::filesystem;

inline std::string train_exe() { return tftest::build_dir() + "/training/timfusion-train"; }

// Options that keep a run to seconds: an 8-channel ivif-light on 32 px crops.
inline std::string fast_opts() {
  return " --arch ivif-light --channels 8 --crop 32 --batch 2 --threads 1 --quiet --preview-every 0"
         " --set preview_size=32 --set preview_pairs=2";
}

// A dataset folder (ir/, vis/) with `names.size()` pairs of deterministic
// textured images of size w x h; colour visible when `colour`.
inline std::string make_pairs(const std::string& root, const std::vector<std::string>& names, int w, int h,
                              bool colour, const std::string& label_dir = "") {
  fs::create_directories(root + "/ir");
  fs::create_directories(root + "/vis");
  if (!label_dir.empty()) fs::create_directories(root + "/" + label_dir);
  int k = 0;
  for (const auto& n : names) {
    cv::Mat ir(h, w, CV_8UC1), vis(h, w, colour ? CV_8UC3 : CV_8UC1), lab(h, w, CV_8UC1);
    cv::RNG rng(1234 + k++);
    rng.fill(ir, cv::RNG::UNIFORM, 0, 256);
    rng.fill(vis, cv::RNG::UNIFORM, 0, 256);
    // A bright "object" in the IR and the label: something to segment.
    lab.setTo(0);
    cv::Rect obj(w / 4, h / 4, w / 3, h / 3);
    ir(obj).setTo(230);
    lab(obj).setTo(1);
    cv::imwrite(root + "/ir/" + n + ".png", ir);
    cv::imwrite(root + "/vis/" + n + ".png", vis);
    if (!label_dir.empty()) cv::imwrite(root + "/" + label_dir + "/" + n + ".png", lab);
  }
  return root;
}

// Column `col` of a run's log.csv (header skipped).
std::vector<double> log_column(const std::string& run, const std::string& col);

}  // namespace trtest
