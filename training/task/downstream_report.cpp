#include "task/downstream_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "timfusion/pairs.h"

using json = nlohmann::json;

namespace timfusion::train {

namespace {

std::string f3(double v) {
  if (!std::isfinite(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

std::string pm(double mean, double sd) { return f3(mean) + " ± " + f3(sd); }

double num(const json& j) { return j.is_number() ? j.get<double>() : NAN; }

}  // namespace

std::string class_name(int id, int classes) {
  static const char* kMfnet[] = {"background", "car", "person", "bike", "curve", "car_stop", "guardrail", "color_cone", "bump"};
  return classes <= 9 && id >= 0 && id < classes ? kMfnet[id] : "class " + std::to_string(id);
}

MeanStd mean_std(const std::vector<double>& v) {
  MeanStd r;
  double sum = 0;
  for (double x : v)
    if (std::isfinite(x)) sum += x, ++r.n;
  if (r.n == 0) return {NAN, NAN, 0};
  r.mean = sum / r.n;
  double ss = 0;
  for (double x : v)
    if (std::isfinite(x)) ss += (x - r.mean) * (x - r.mean);
  r.std = r.n > 1 ? std::sqrt(ss / (r.n - 1)) : 0;
  return r;
}

void summarise_downstream(json& res) {
  const int classes = res.at("classes").get<int>();
  const std::string ref = res.value("reference", std::string());
  const json* ref_row = nullptr;
  for (const auto& r : res["rows"])
    if (r["name"] == ref) ref_row = &r;
  std::vector<double> ref_miou;
  if (ref_row)
    for (const auto& s : (*ref_row)["seeds"]) ref_miou.push_back(num(s["miou"]));
  for (auto& r : res["rows"]) {
    std::vector<double> miou, acc, delta;
    for (size_t i = 0; i < r["seeds"].size(); ++i) {
      const auto& s = r["seeds"][i];
      miou.push_back(num(s["miou"]));
      acc.push_back(num(s["pixel_accuracy"]));
      if (ref_row && i < ref_miou.size()) delta.push_back(num(s["miou"]) - ref_miou[i]);
    }
    MeanStd m = mean_std(miou), d = mean_std(delta);
    r["miou_mean"] = m.mean, r["miou_std"] = m.std;
    r["pixel_accuracy_mean"] = mean_std(acc).mean;
    if (ref_row) r["delta_miou_mean"] = d.mean, r["delta_miou_std"] = d.std;
    json im = json::array(), is = json::array();
    for (int c = 0; c < classes; ++c) {
      std::vector<double> v;
      for (const auto& s : r["seeds"]) v.push_back(num(s["iou"][c]));
      MeanStd cs = mean_std(v);
      im.push_back(cs.n ? json(cs.mean) : json()), is.push_back(cs.n ? json(cs.std) : json());
    }
    r["iou_mean"] = im, r["iou_std"] = is;
  }
}

std::string downstream_markdown(const json& res) {
  std::ostringstream o;
  const auto& st = res["settings"];
  const int classes = res["classes"].get<int>();
  std::vector<int> present;
  for (const auto& c : res["present_classes"]) present.push_back(c.get<int>());
  const size_t seeds = st["seeds"].size();
  o << "# Downstream segmentation protocol (`timfusion-train downstream`)\n\n";
  o << "- Data: `" << res["data"].get<std::string>() << "`, labels `" << res["labels"].get<std::string>() << "`, "
    << classes << " classes; " << res["split"]["train"].size() << " training pairs, " << res["split"]["test"].size()
    << " test pairs (" << res["split"]["rule"].get<std::string>() << ").\n";
  o << "- Segmentation network (the same for every row): the task U-Net of `train --task`, width "
    << st["width"].get<int>() << " (" << st["parameters"].get<int64_t>() << " parameters), one input channel, trained "
    << st["steps"].get<int64_t>() << " Adam steps of " << st["batch"].get<int>() << " random " << st["crop"].get<int>()
    << " px crops of the images scaled by " << st["scale"].get<double>() << ", lr " << st["lr"].get<double>() << " ("
    << st["lr_schedule"].get<std::string>() << " to " << st["lr_min"].get<double>() << "), "
    << (st["balance"].get<bool>() ? "class-balanced" : "plain") << " cross-entropy; " << seeds
    << " seeds (initialisation and crops; the same for every row): " << st["seeds"].dump() << ".\n";
  o << "- Score: confusion over all test pixels at the labels' full resolution (logits upsampled); IoU per class, mIoU "
       "= mean over the classes present in the test labels; mean ± sample std over the seeds. Δ = mIoU minus the `"
    << res.value("reference", std::string("-")) << "` row's, paired by seed.\n\n";

  o << "| input | mIoU | Δ mIoU |";
  for (int c : present) o << " IoU " << class_name(c, classes) << " |";
  o << " pixel acc. |\n|---|---:|---:|";
  for (size_t i = 0; i < present.size(); ++i) o << "---:|";
  o << "---:|\n";
  for (const auto& r : res["rows"]) {
    o << "| " << r["name"].get<std::string>() << " | " << pm(num(r["miou_mean"]), num(r["miou_std"])) << " | "
      << (r.contains("delta_miou_mean") ? pm(num(r["delta_miou_mean"]), num(r["delta_miou_std"])) : "-") << " |";
    for (int c : present) o << " " << pm(num(r["iou_mean"][c]), num(r["iou_std"][c])) << " |";
    o << " " << f3(num(r["pixel_accuracy_mean"])) << " |\n";
  }
  o << "\nPer seed (mIoU):\n\n| input | source |";
  for (const auto& s : st["seeds"]) o << " seed " << s.get<int64_t>() << " |";
  o << " s per seed |\n|---|---|";
  for (size_t i = 0; i < seeds; ++i) o << "---:|";
  o << "---:|\n";
  for (const auto& r : res["rows"]) {
    o << "| " << r["name"].get<std::string>() << " | `" << r["spec"].get<std::string>() << "` |";
    double secs = 0;
    for (const auto& s : r["seeds"]) o << " " << f3(num(s["miou"])) << " |", secs += num(s["seconds"]);
    char b[32];
    std::snprintf(b, sizeof b, "%.0f", secs / static_cast<double>(std::max<size_t>(1, r["seeds"].size())));
    o << " " << b << " |\n";
  }
  o << "\nTest pairs: ";
  for (size_t i = 0; i < res["split"]["test"].size(); ++i) o << (i ? ", " : "") << res["split"]["test"][i].get<std::string>();
  o << ".\n\nCommand: `" << res["command_line"].get<std::string>() << "` (git " << res["git_commit"].get<std::string>()
    << ", " << st["threads"].get<int64_t>() << " thread(s), " << res["finished"].get<std::string>() << ").\n";
  return o.str();
}

void write_downstream_png(const std::string& path, const json& res) {
  const auto& rows = res["rows"];
  const int n = static_cast<int>(rows.size());
  const int L = 200, R = 40, T = 50, B = 50, H = 34;
  const int width = 900, height = T + B + std::max(1, n) * H;
  cv::Mat img(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  double hi = 0;
  for (const auto& r : rows)
    for (const auto& s : r["seeds"]) hi = std::max(hi, num(s["miou"]));
  hi = hi > 0 ? std::min(1.0, std::ceil(hi * 1.15 * 20) / 20) : 1.0;
  const int x0 = L, x1 = width - R;
  auto X = [&](double v) { return x0 + static_cast<int>(std::lround((x1 - x0) * std::clamp(v, 0.0, hi) / hi)); };
  cv::putText(img, "downstream mIoU on " + std::to_string(res["split"]["test"].size()) + " test pairs (" +
                       std::to_string(res["settings"]["seeds"].size()) + " seeds: bar mean, whisker +-std, dots seeds)",
              {10, 28}, font, 0.55, {0, 0, 0}, 1, cv::LINE_AA);
  const double tick = hi <= 0.5 ? 0.05 : 0.1;  // round values on the axis
  for (int t = 0; t * tick <= hi + 1e-9; ++t) {
    double v = t * tick;
    int x = X(v);
    cv::line(img, {x, T - 4}, {x, height - B}, {225, 225, 225}, 1);
    char b[16];
    std::snprintf(b, sizeof b, "%.2f", v);
    cv::putText(img, b, {x - 14, height - B + 18}, font, 0.4, {0, 0, 0}, 1, cv::LINE_AA);
  }
  for (int i = 0; i < n; ++i) {
    const auto& r = rows[i];
    const int y = T + i * H;
    cv::putText(img, r["name"].get<std::string>(), {10, y + H / 2 + 5}, font, 0.5, {0, 0, 0}, 1, cv::LINE_AA);
    const double m = num(r["miou_mean"]), sd = num(r["miou_std"]);
    if (!std::isfinite(m)) continue;
    cv::rectangle(img, cv::Point(x0, y + 6), cv::Point(X(m), y + H - 6), {200, 150, 90}, cv::FILLED);
    cv::line(img, {X(m - sd), y + H / 2}, {X(m + sd), y + H / 2}, {0, 0, 0}, 2);
    for (double e : {m - sd, m + sd}) cv::line(img, {X(e), y + 10}, {X(e), y + H - 10}, {0, 0, 0}, 2);
    for (const auto& s : r["seeds"]) cv::circle(img, {X(num(s["miou"])), y + H / 2}, 3, {30, 30, 200}, cv::FILLED, cv::LINE_AA);
  }
  cv::line(img, {x0, T - 4}, {x0, height - B}, {0, 0, 0}, 1);
  write_image(path, img);
}

}  // namespace timfusion::train
