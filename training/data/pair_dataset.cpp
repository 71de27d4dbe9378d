#include "data/pair_dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "timfusion/color.h"
#include "timfusion/error.h"
#include "timfusion/image_limits.h"
#include "timfusion/pairs.h"

namespace fs = std::filesystem;

namespace timfusion::train {

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

namespace {

std::set<std::string> read_names(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read the exclude list");
  std::set<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty()) continue;
    names.insert(fs::path(line).stem().string());  // "a.png" and "a" both name pair a
  }
  return names;
}

std::string size_str(const cv::Mat& m) { return std::to_string(m.cols) + "x" + std::to_string(m.rows); }

cv::Mat load_ir(const std::string& path) {
  cv::Mat m = read_image(path, cv::IMREAD_UNCHANGED);
  if (m.depth() == CV_8U && m.channels() == 1) return m;
  if (m.depth() != CV_8U && m.depth() != CV_16U)
    throw Error(path + ": unsupported IR pixel depth (8- or 16-bit images only)");
  if (m.channels() != 1 && m.channels() != 3 && m.channels() != 4)
    throw Error(path + ": unsupported channel count " + std::to_string(m.channels()));
  if (m.depth() == CV_8U) return luma_of(m, ChannelOrder::BGR);
  return ir_to_unit(m, ChannelOrder::BGR);  // CV_32F in [0,1]
}

}  // namespace

cv::Mat load_luma(const std::string& path) {
  cv::Mat m = read_image(path, cv::IMREAD_UNCHANGED);
  if (m.depth() == CV_16U) m.convertTo(m, CV_8U, 1.0 / 257.0);
  if (m.depth() != CV_8U) throw Error(path + ": unsupported pixel depth for a visible or fused image (8- or 16-bit images only)");
  if (m.channels() != 1 && m.channels() != 3 && m.channels() != 4)
    throw Error(path + ": unsupported channel count " + std::to_string(m.channels()));
  return luma_of(m, ChannelOrder::BGR);
}

namespace {

// Copies `m` (CV_8U or CV_32F) into `dst` as floats in [0,1].
void to_floats(const cv::Mat& m, float* dst) {
  cv::Mat f(m.rows, m.cols, CV_32F, dst);
  if (m.depth() == CV_8U)
    m.convertTo(f, CV_32F, 1.0 / 255.0);
  else
    m.copyTo(f);
}

// Mean of an 8-bit or [0,1] float plane, in [0,1].
float unit_mean(const cv::Mat& m) {
  double mean = cv::mean(m)[0];
  return static_cast<float>(m.depth() == CV_8U ? mean / 255.0 : mean);
}

// The (x, y, side) window of `m`, reflect-padded where it leaves the image.
cv::Mat window(const cv::Mat& m, int x, int y, int cw, int ch) {
  if (x >= 0 && y >= 0 && x + cw <= m.cols && y + ch <= m.rows) return m(cv::Rect(x, y, cw, ch));
  cv::Mat padded;
  int top = std::max(0, -y), left = std::max(0, -x);
  int bottom = std::max(0, y + ch - m.rows), right = std::max(0, x + cw - m.cols);
  cv::copyMakeBorder(m, padded, top, bottom, left, right, cv::BORDER_REFLECT_101);
  return padded(cv::Rect(x + left, y + top, cw, ch));
}

}  // namespace

PairDataset PairDataset::load(const std::vector<DataSource>& sources, bool need_labels, int classes) {
  if (sources.empty()) throw Error("no data folders given");
  PairDataset ds;
  for (const auto& src : sources) {
    for (const auto& dir : {src.ir, src.vis})
      if (!fs::is_directory(dir)) throw Error(dir + ": data folder not found (a data source needs ir/ and vis/ folders)");
    if (need_labels && !fs::is_directory(src.labels))
      throw Error((src.labels.empty() ? std::string("(none)") : src.labels) + ": label folder not found");
    std::set<std::string> excluded;
    if (!src.exclude.empty()) excluded = read_names(src.exclude);
    std::vector<std::string> unmatched;
    std::vector<ImagePair> pairs;
    try {
      pairs = list_pairs(src.ir, src.vis, &unmatched);
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (empty or mismatched data folders)");
    }
    std::vector<std::string> lonely;
    for (const auto& u : unmatched)
      if (!excluded.count(fs::path(u).stem().string())) lonely.push_back(u);
    if (!lonely.empty()) {
      std::string list;
      for (size_t i = 0; i < lonely.size() && i < 3; ++i) list += (i ? ", " : "") + lonely[i];
      if (lonely.size() > 3) list += ", ...";
      throw Error(std::to_string(lonely.size()) + " image(s) without a partner of the same base name in " + src.ir +
                  " / " + src.vis + ": " + list + " (add the partner, remove the file, or list the name in an exclude file)");
    }
    size_t n_before = ds.samples_.size(), n_excluded = 0, n_unlabelled = 0;
    std::set<std::string> seen;
    for (const auto& p : pairs) {
      seen.insert(p.name);
      if (excluded.count(p.name)) {
        ++n_excluded;
        continue;
      }
      Sample s;
      s.name = p.name;
      s.source = src.ir;
      if (need_labels) {
        std::string lp;
        for (const char* ext : {".png", ".bmp", ".tif", ".tiff"})
          if (fs::exists(fs::path(src.labels) / (p.name + ext))) {
            lp = (fs::path(src.labels) / (p.name + ext)).string();
            break;
          }
        if (lp.empty()) {
          ++n_unlabelled;
          continue;
        }
        s.label = read_image(lp, cv::IMREAD_UNCHANGED);
        if (s.label.type() != CV_8UC1) throw Error(lp + ": a label mask must be an 8-bit single-channel image of class ids");
        double mx = 0;
        cv::minMaxLoc(s.label, nullptr, &mx);
        if (mx >= classes)
          throw Error(lp + ": class id " + std::to_string(static_cast<int>(mx)) + " but task.classes is " + std::to_string(classes));
      }
      s.ir = load_ir(p.ir);
      s.vis_y = load_luma(p.vis);
      // The networks' 3x3 reflection padding needs pixels around each one:
      // a 1x1 image gave a raw LibTorch padding error at the first preview.
      auto require_min_size = [](const std::string& path, const cv::Mat& m) {
        if (m.cols < kMinImageSide || m.rows < kMinImageSide)
          throw Error(path + ": the image is " + size_str(m) + "; training images must be at least " +
                      std::to_string(kMinImageSide) + "x" + std::to_string(kMinImageSide) + " pixels");
      };
      require_min_size(p.ir, s.ir);
      require_min_size(p.vis, s.vis_y);
      if (s.ir.size() != s.vis_y.size())
        throw Error("pair \"" + p.name + "\": IR " + p.ir + " is " + size_str(s.ir) + " but visible " + p.vis + " is " +
                    size_str(s.vis_y) + " (pairs must be registered, same size)");
      if (!s.label.empty() && s.label.size() != s.ir.size())
        throw Error("pair \"" + p.name + "\": label is " + size_str(s.label) + " but the images are " + size_str(s.ir));
      s.ir_mean = unit_mean(s.ir);
      s.vis_mean = unit_mean(s.vis_y);
      ds.samples_.push_back(std::move(s));
    }
    size_t n = ds.samples_.size() - n_before;
    if (n == 0) throw Error(src.ir + ": no usable pairs left (all excluded or unlabelled)");
    if (n_excluded) ds.notes_.push_back(src.ir + ": left out " + std::to_string(n_excluded) + " pairs listed in " + src.exclude);
    if (!src.exclude.empty() && n_excluded < excluded.size())
      ds.notes_.push_back(src.exclude + ": " + std::to_string(excluded.size() - n_excluded) + " listed names are not in the data");
    if (n_unlabelled) ds.notes_.push_back(src.labels + ": " + std::to_string(n_unlabelled) + " pairs have no label and are not used");
    ds.counts_.emplace_back(src.ir, n);
  }
  return ds;
}

json PairDataset::provenance(const std::vector<DataSource>& sources) const {
  json out = json::array();
  for (const auto& s : sources) {
    json e = {{"ir", s.ir}, {"vis", s.vis}};
    if (!s.exclude.empty()) e["exclude"] = s.exclude;
    for (const auto& [src, n] : counts_)
      if (src == s.ir) e["pairs"] = n;
    out.push_back(e);
  }
  return out;
}

std::pair<PairDataset, PairDataset> PairDataset::split_holdout(size_t n) const {
  if (n >= samples_.size())
    throw Error("cannot hold out " + std::to_string(n) + " of " + std::to_string(samples_.size()) + " pairs");
  std::vector<size_t> order(samples_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return samples_[a].name < samples_[b].name; });
  std::set<size_t> held;
  for (size_t i = 0; i < n; ++i) held.insert((2 * i + 1) * order.size() / (2 * n));
  PairDataset a, b;
  for (size_t k = 0; k < order.size(); ++k) (held.count(k) ? b : a).samples_.push_back(samples_[order[k]]);
  a.counts_ = {{"train", a.samples_.size()}};
  b.counts_ = {{"held out", b.samples_.size()}};
  return {a, b};
}

std::vector<int64_t> PairDataset::class_counts(int classes) const {
  std::vector<int64_t> counts(classes, 0);
  for (const auto& s : samples_)
    for (int r = 0; r < s.label.rows; ++r) {
      const uint8_t* row = s.label.ptr<uint8_t>(r);
      for (int c = 0; c < s.label.cols; ++c)
        if (row[c] < classes) ++counts[row[c]];
    }
  return counts;
}

Batch share_of(const Batch& b, int part, int parts) {
  if (parts <= 1) return b;
  if (b.n % parts) throw Error("a batch of " + std::to_string(b.n) + " does not split into " + std::to_string(parts) + " equal shares");
  const int n = b.n / parts;
  const size_t plane = static_cast<size_t>(b.h) * b.w, from = static_cast<size_t>(part) * n * plane, len = n * plane;
  Batch s;
  s.n = n, s.h = b.h, s.w = b.w;
  s.ir.assign(b.ir.begin() + from, b.ir.begin() + from + len);
  s.vis.assign(b.vis.begin() + from, b.vis.begin() + from + len);
  if (!b.labels.empty()) s.labels.assign(b.labels.begin() + from, b.labels.begin() + from + len);
  if (b.ir_mean.size() == static_cast<size_t>(b.n) && b.vis_mean.size() == static_cast<size_t>(b.n)) {
    s.ir_mean.assign(b.ir_mean.begin() + part * n, b.ir_mean.begin() + (part + 1) * n);
    s.vis_mean.assign(b.vis_mean.begin() + part * n, b.vis_mean.begin() + (part + 1) * n);
  }
  if (b.names.size() == static_cast<size_t>(b.n))
    s.names.assign(b.names.begin() + part * n, b.names.begin() + (part + 1) * n);
  return s;
}

Batch PairDataset::sample(uint64_t seed, int64_t step, uint64_t stream, int n, int crop, bool flip) const {
  if (samples_.empty()) throw Error("empty dataset");
  std::mt19937_64 rng(mix64(mix64(seed) ^ mix64(static_cast<uint64_t>(step) * 0x100000001b3ULL + stream)));
  auto uniform = [&](uint64_t k) { return static_cast<int>(rng() % k); };  // k small: bias negligible, deterministic
  Batch b;
  b.n = n;
  b.h = b.w = crop;
  const size_t plane = static_cast<size_t>(crop) * crop;
  b.ir.resize(n * plane);
  b.vis.resize(n * plane);
  if (has_labels()) b.labels.resize(n * plane);
  for (int k = 0; k < n; ++k) {
    const Sample& s = samples_[uniform(samples_.size())];
    int x = s.ir.cols > crop ? uniform(s.ir.cols - crop + 1) : -(crop - s.ir.cols) / 2;
    int y = s.ir.rows > crop ? uniform(s.ir.rows - crop + 1) : -(crop - s.ir.rows) / 2;
    int code = -2;  // no flip
    if (flip) {
      int f = uniform(4);  // 0 none, 1 horizontal, 2 vertical, 3 both
      code = f == 0 ? -2 : f == 1 ? 1 : f == 2 ? 0 : -1;
    }
    auto place = [&](const cv::Mat& m, cv::Mat& out) {
      cv::Mat w = window(m, x, y, crop, crop);
      if (code != -2)
        cv::flip(w, out, code);
      else
        out = w;
    };
    cv::Mat ir, vis;
    place(s.ir, ir);
    place(s.vis_y, vis);
    to_floats(ir, b.ir.data() + k * plane);
    to_floats(vis, b.vis.data() + k * plane);
    if (!b.labels.empty()) {
      cv::Mat lab;
      place(s.label, lab);
      int64_t* dst = b.labels.data() + k * plane;
      for (int r = 0; r < crop; ++r) {
        const uint8_t* row = lab.ptr<uint8_t>(r);
        for (int c = 0; c < crop; ++c) dst[r * crop + c] = row[c];
      }
    }
    b.names.push_back(s.name);
    b.ir_mean.push_back(s.ir_mean);
    b.vis_mean.push_back(s.vis_mean);
  }
  return b;
}

Batch PairDataset::center(size_t i, int side) const {
  const Sample& s = samples_.at(i);
  int cw = side > 0 ? std::min(side, s.ir.cols) : s.ir.cols;
  int ch = side > 0 ? std::min(side, s.ir.rows) : s.ir.rows;
  int x = (s.ir.cols - cw) / 2, y = (s.ir.rows - ch) / 2;
  Batch b;
  b.n = 1;
  b.h = ch;
  b.w = cw;
  b.ir.resize(static_cast<size_t>(cw) * ch);
  b.vis.resize(b.ir.size());
  cv::Rect r(x, y, cw, ch);
  to_floats(s.ir(r).clone(), b.ir.data());
  to_floats(s.vis_y(r).clone(), b.vis.data());
  if (!s.label.empty()) {
    cv::Mat lab = s.label(r);
    b.labels.resize(b.ir.size());
    for (int rr = 0; rr < ch; ++rr)
      for (int c = 0; c < cw; ++c) b.labels[rr * cw + c] = lab.at<uint8_t>(rr, c);
  }
  b.names.push_back(s.name);
  b.ir_mean.push_back(s.ir_mean);
  b.vis_mean.push_back(s.vis_mean);
  return b;
}

}  // namespace timfusion::train
