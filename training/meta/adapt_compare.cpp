// `timfusion-train adapt --compare`: eval.csv of several adapt runs drawn
// against the adaptation step, and a Markdown table (no LibTorch).
#include "meta/adapt_compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "run/run_dir.h"
#include "timfusion/error.h"
#include "timfusion/metrics.h"
#include "timfusion/pairs.h"

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {

struct Curve {
  std::string label;
  std::vector<double> x, y;
};

// One panel: linear axes, lines with markers, legend.
cv::Mat draw_panel(const std::string& title, const std::vector<Curve>& curves_in, bool lower_better, bool log_y, int W, int H) {
  // Log axis: plot log10(y) (values <= 0 dropped), label ticks with y.
  std::vector<Curve> curves = curves_in;
  if (log_y)
    for (auto& c : curves)
      for (auto& v : c.y) v = v > 0 ? std::log10(v) : NAN;
  static const cv::Scalar colours[] = {{200, 80, 20}, {40, 40, 220}, {30, 150, 30}, {160, 40, 160}, {20, 140, 200}};
  cv::Mat img(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  const int L = 70, R = 15, T = 30, B = 45;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& c : curves)
    for (size_t i = 0; i < c.x.size(); ++i)
      if (std::isfinite(c.y[i])) x0 = std::min(x0, c.x[i]), x1 = std::max(x1, c.x[i]), y0 = std::min(y0, c.y[i]), y1 = std::max(y1, c.y[i]);
  if (x0 > x1) return img;
  if (x1 == x0) x1 = x0 + 1;
  const double pad = (y1 - y0) * 0.06 + 1e-9;
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return L + static_cast<int>((x - x0) / (x1 - x0) * (W - L - R)); };
  auto py = [&](double y) { return H - B - static_cast<int>((y - y0) / (y1 - y0) * (H - T - B)); };
  cv::rectangle(img, {L, T}, {W - R, H - B}, {0, 0, 0}, 1);
  for (int i = 0; i <= 4; ++i) {
    double yv = y0 + (y1 - y0) * i / 4.0, xv = x0 + (x1 - x0) * i / 4.0;
    cv::line(img, {L, py(yv)}, {W - R, py(yv)}, {225, 225, 225}, 1);
    cv::putText(img, fmt("%.4g", log_y ? std::pow(10.0, yv) : yv), {4, py(yv) + 4}, cv::FONT_HERSHEY_SIMPLEX, 0.38, {0, 0, 0}, 1, cv::LINE_AA);
    cv::putText(img, fmt("%.0f", xv), {px(xv) - 10, H - B + 16}, cv::FONT_HERSHEY_SIMPLEX, 0.38, {0, 0, 0}, 1, cv::LINE_AA);
  }
  cv::putText(img, "adaptation step", {W / 2 - 50, H - 8}, cv::FONT_HERSHEY_SIMPLEX, 0.42, {0, 0, 0}, 1, cv::LINE_AA);
  cv::putText(img, title + (log_y ? ", log scale" : "") + (lower_better ? " (lower is better)" : " (higher is better)"), {L, 20}, cv::FONT_HERSHEY_SIMPLEX,
              0.5, {0, 0, 0}, 1, cv::LINE_AA);
  // Runs labelled "NAME#seed" share NAME's colour: each run is drawn thin and
  // light, and the mean of the group (over the steps all of them have) thick.
  std::vector<std::string> keys;
  std::map<std::string, std::vector<size_t>> members;
  for (size_t ci = 0; ci < curves.size(); ++ci) {
    const std::string key = curves[ci].label.substr(0, curves[ci].label.find('#'));
    if (!members.count(key)) keys.push_back(key);
    members[key].push_back(ci);
  }
  auto draw = [&](const Curve& c, const cv::Scalar& col, bool thick) {
    std::vector<cv::Point> pts;
    for (size_t i = 0; i < c.x.size(); ++i)
      if (std::isfinite(c.y[i])) pts.emplace_back(px(c.x[i]), py(c.y[i]));
    if (pts.size() > 1) cv::polylines(img, pts, false, col, thick ? 2 : 1, cv::LINE_AA);
    for (const auto& p : pts) cv::circle(img, p, thick ? 3 : 1, col, cv::FILLED, cv::LINE_AA);
  };
  for (size_t ki = 0; ki < keys.size(); ++ki) {
    const auto col = colours[ki % 5];
    const auto& idx = members[keys[ki]];
    std::string legend = keys[ki];
    if (idx.size() == 1) {
      draw(curves[idx[0]], col, true);
    } else {
      const cv::Scalar light = (col + cv::Scalar(255, 255, 255) * 2) / 3;
      for (size_t ci : idx) draw(curves[ci], light, false);
      Curve mean;
      for (size_t i = 0; i < curves[idx[0]].x.size(); ++i) {
        const double x = curves[idx[0]].x[i];
        double sum = 0;
        size_t n = 0;
        for (size_t ci : idx)
          for (size_t j = 0; j < curves[ci].x.size(); ++j)
            if (curves[ci].x[j] == x) sum += curves[ci].y[j], ++n;
        if (n == idx.size()) mean.x.push_back(x), mean.y.push_back(sum / static_cast<double>(n));
      }
      draw(mean, col, true);
      legend += " (mean of " + std::to_string(idx.size()) + ")";
    }
    // Legend where the curves are not: top for lower-is-better, bottom otherwise.
    const int ly = lower_better ? T + 14 + 16 * static_cast<int>(ki) : H - B - 12 - 16 * static_cast<int>(ki);
    cv::line(img, {W - R - 250, ly}, {W - R - 225, ly}, col, 2);
    cv::putText(img, legend, {W - R - 220, ly + 4}, cv::FONT_HERSHEY_SIMPLEX, 0.4, {0, 0, 0}, 1, cv::LINE_AA);
  }
  return img;
}

}  // namespace

void compare_adapt_runs(const std::vector<std::pair<std::string, std::string>>& runs, const std::string& png,
                        const std::string& markdown) {
  if (runs.empty()) throw Error("--compare needs at least one run folder");
  std::vector<std::vector<std::vector<std::string>>> tables;
  for (const auto& [dir, label] : runs) {
    tables.push_back(read_csv(dir + "/eval.csv"));
    if (tables.back().size() < 2) throw Error(dir + "/eval.csv has no rows");
  }
  const auto header = tables[0][0];
  std::vector<cv::Mat> panels;
  for (size_t c = 1; c < header.size(); ++c) {
    std::vector<Curve> curves;
    for (size_t r = 0; r < runs.size(); ++r) {
      const auto& t = tables[r];
      size_t col = std::find(t[0].begin(), t[0].end(), header[c]) - t[0].begin();
      if (col >= t[0].size()) continue;
      Curve cv_;
      cv_.label = runs[r].second;
      for (size_t i = 1; i < t.size(); ++i) cv_.x.push_back(std::stod(t[i][0])), cv_.y.push_back(std::stod(t[i][col]));
      curves.push_back(cv_);
    }
    const std::string& name = header[c];
    const bool lower = name == "loss" || name == "intensity" || name == "gradient" || name == "ssim_loss" ||
                       (is_metric(name) && !higher_is_better(name));
    const std::string title = name == "loss" ? "held-out fusion loss" : (is_metric(name) ? name : name + " term");
    if (name == "loss" || is_metric(name)) panels.push_back(draw_panel(title, curves, lower, name == "loss", 560, 340));
  }
  // Grid of 2 columns.
  std::vector<cv::Mat> rows;
  for (size_t i = 0; i < panels.size(); i += 2) {
    cv::Mat row;
    if (i + 1 < panels.size())
      cv::hconcat(panels[i], panels[i + 1], row);
    else
      cv::hconcat(panels[i], cv::Mat(panels[i].rows, panels[i].cols, CV_8UC3, cv::Scalar(255, 255, 255)), row);
    rows.push_back(row);
  }
  cv::Mat grid;
  cv::vconcat(rows, grid);
  if (!png.empty()) write_image(png, grid);
  // Markdown: every run's value per step for each column, plus the mean of
  // the runs sharing a "NAME#..." label when there are several.
  std::vector<std::string> keys;
  std::map<std::string, std::vector<size_t>> members;
  for (size_t r = 0; r < runs.size(); ++r) {
    const std::string key = runs[r].second.substr(0, runs[r].second.find('#'));
    if (!members.count(key)) keys.push_back(key);
    members[key].push_back(r);
  }
  std::vector<std::string> mean_keys;
  for (const auto& k : keys)
    if (members[k].size() > 1) mean_keys.push_back(k);
  auto value = [&](size_t r, const std::string& step, const std::string& name) {
    const auto& t = tables[r];
    size_t col = std::find(t[0].begin(), t[0].end(), name) - t[0].begin();
    for (size_t j = 1; j < t.size(); ++j)
      if (t[j][0] == step && col < t[j].size()) return std::stod(t[j][col]);
    return std::nan("");
  };
  std::ostringstream os;
  for (size_t c = 1; c < header.size(); ++c) {
    os << "\n**" << header[c] << "**\n\n| step |";
    for (const auto& r : runs) os << " " << r.second << " |";
    for (const auto& k : mean_keys) os << " " << k << " mean |";
    os << "\n|---|";
    for (size_t r = 0; r < runs.size() + mean_keys.size(); ++r) os << "---|";
    os << "\n";
    for (size_t i = 1; i < tables[0].size(); ++i) {
      const std::string& step = tables[0][i][0];
      os << "| " << step << " |";
      for (size_t r = 0; r < runs.size(); ++r) {
        const double v = value(r, step, header[c]);
        os << " " << (std::isnan(v) ? std::string("–") : fmt("%.4f", v)) << " |";
      }
      for (const auto& k : mean_keys) {
        double sum = 0;
        for (size_t r : members[k]) sum += value(r, step, header[c]);
        os << " " << (std::isnan(sum) ? std::string("–") : fmt("%.4f", sum / static_cast<double>(members[k].size())))
           << " |";
      }
      os << "\n";
    }
  }
  // Area under each curve, as the mean over the evaluations up to a step: one
  // number per group for "how good was it along the way", early and overall.
  for (const double limit : {100.0, 1e18}) {
    os << "\n**Mean over the evaluations " << (limit < 1e17 ? "at steps 0–100" : "at all steps")
       << " (mean of the runs of a group)**\n\n| run |";
    for (size_t c = 1; c < header.size(); ++c) os << " " << header[c] << " |";
    os << "\n|---|";
    for (size_t c = 1; c < header.size(); ++c) os << "---|";
    os << "\n";
    for (const auto& k : keys) {
      os << "| " << k << " |";
      for (size_t c = 1; c < header.size(); ++c) {
        double sum = 0;
        size_t n = 0;
        for (size_t r : members[k])
          for (size_t i = 1; i < tables[r].size(); ++i)
            if (std::stod(tables[r][i][0]) <= limit) {
              const double v = value(r, tables[r][i][0], header[c]);
              if (std::isfinite(v)) sum += v, ++n;
            }
        os << " " << (n ? fmt("%.4f", sum / static_cast<double>(n)) : std::string("–")) << " |";
      }
      os << "\n";
    }
  }
  if (!markdown.empty()) write_text_atomic(markdown, os.str());
  std::fputs(os.str().c_str(), stdout);
}

int cmd_adapt_compare(int argc, char** argv, int first) {
  std::vector<std::pair<std::string, std::string>> runs;
  std::string png, md;
  for (int j = first; j < argc; ++j) {
    std::string k = argv[j];
    auto value = [&]() -> std::string {
      if (j + 1 >= argc) throw Error(k + " needs a value");
      return argv[++j];
    };
    if (k == "--compare") {
      std::string v = value();
      auto eq = v.find('=');
      runs.emplace_back(v.substr(0, eq), eq == std::string::npos ? fs::path(v).filename().string() : v.substr(eq + 1));
    } else if (k == "--plot") {
      png = value();
    } else if (k == "--table") {
      md = value();
    } else {
      throw Error("with --compare, only --compare, --plot and --table are allowed (got \"" + k + "\")");
    }
  }
  compare_adapt_runs(runs, png, md);
  return 0;
}

}  // namespace timfusion::train
