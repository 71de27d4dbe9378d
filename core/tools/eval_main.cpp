// timfusion-eval: fusion-quality metrics of fused images against their IR/visible
// sources, for one method or several side by side, as CSV or a Markdown table.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "timfusion/error.h"
#include "timfusion/metrics.h"
#include "timfusion/pairs.h"
#include "timfusion/progress.h"
#include "tool_cli.h"

namespace fs = std::filesystem;
using timfusion::Error;
namespace tool = timfusion::tool;

namespace {

const char* kSummary = "Scores fused images against their infrared and visible sources.";
const char* kDetails =
    "Images pair by base name in any format OpenCV reads (01.png pairs with 01.jpg).\n"
    "Definitions follow the VIFB benchmark's MATLAB code (see --list-metrics). Means\n"
    "skip NaN values, as VIFB's nanmean does. Exit status 2 for a usage error, 1 when\n"
    "the data cannot be scored.";

struct Method {
  std::string name, dir;
  std::map<std::string, std::string> files;  // base name -> fused image
};

struct Options {
  std::string ir, vis, format = "csv", plot;
  timfusion::ColorMode mode = timfusion::ColorMode::PerChannel;
  std::vector<std::string> metrics = timfusion::metric_names();
  std::vector<Method> methods;  // --fused first
  bool progress = true;
};

std::string join_names(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

std::string dir_name(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::string n = fs::path(dir).filename().string();
  return n.empty() || n == "." ? "fused" : n;
}

Options parse_args(int argc, char** argv) {
  Options o;
  std::string fused, color = "per-channel", metrics;
  std::vector<std::string> compare;
  bool list_metrics = false;
  CLI::App app{"", "timfusion-eval"};
  tool::setup_app(app, kSummary, kDetails);
  app.add_option("--ir", o.ir, "infrared source images")->type_name("DIR");
  app.add_option("--vis", o.vis, "visible source images")->type_name("DIR");
  app.add_option("--fused", fused, "fused images of the method to score")->type_name("DIR");
  app.add_option("--color,--colour", color,
                 "colour images: VIFB's per-channel average (per-channel) or BT.601 luma only (luma)")
      ->check([](const std::string& v) {
        try {
          timfusion::parse_color_mode(v);
          return std::string();
        } catch (const Error& e) {
          return std::string(e.what());
        }
      })
      ->capture_default_str()
      ->type_name("per-channel|luma");
  app.add_option("--format", o.format,
                 "csv: image,metric,value rows then one 'mean' row per metric; md: a Markdown table")
      ->check(CLI::IsMember({"csv", "md"}))
      ->capture_default_str()
      ->type_name("csv|md");
  app.add_option("--metrics", metrics, "metrics to compute (default: all): " + join_names(timfusion::metric_names()))
      ->type_name("a,b,c");
  app.add_option("--compare", compare,
                 "another method's fused images, side by side (repeatable; csv gains a leading method column, md "
                 "shows the means)")
      ->type_name("NAME=DIR")
      ->allow_extra_args(false);
  app.add_option("--plot", o.plot, "bar chart of the mean of each metric per method")->type_name("OUT.png");
  app.add_flag("--no-progress", [&](int64_t) { o.progress = false; }, "no progress bar on stderr");
  app.add_flag("--list-metrics", list_metrics, "print each metric with its convention and exit");
  tool::parse_or_exit(app, argc, argv);
  if (list_metrics) {
    for (const auto& m : timfusion::metric_names())
      std::printf("%-10s %s %s\n", m.c_str(), timfusion::higher_is_better(m) ? "(higher better)" : "(lower better) ",
                  timfusion::metric_convention(m).c_str());
    std::exit(0);
  }
  try {
    o.mode = timfusion::parse_color_mode(color);
    if (!metrics.empty()) o.metrics = timfusion::parse_metric_list(metrics);
    for (const char* required : {"--ir", "--vis", "--fused"})
      if (app.count(required) == 0) throw Error(std::string(required) + " is required (--ir, --vis and --fused are)");
    o.methods.push_back({dir_name(fused), fused, {}});
    for (const auto& c : compare) {
      const auto eq = c.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == c.size())
        throw Error("--compare takes NAME=DIR, not '" + c + "'");
      o.methods.push_back({c.substr(0, eq), c.substr(eq + 1), {}});
    }
    for (size_t i = 0; i < o.methods.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (o.methods[i].name == o.methods[j].name)
          throw Error("two methods are named '" + o.methods[i].name + "': give --compare a distinct NAME");
  } catch (const Error& e) {
    tool::usage_error("timfusion-eval", e.what());
  }
  return o;
}

// Every pair needs a fused image of the same base name in every method's folder.
void match_fused(const std::vector<timfusion::ImagePair>& pairs, Method& m, const std::string& ir_dir) {
  if (!timfusion::is_directory(m.dir)) throw Error(m.dir + ": folder not found");
  std::vector<timfusion::ImagePair> found;
  try {
    found = timfusion::list_pairs(ir_dir, m.dir);
  } catch (const Error&) {
    throw Error(m.dir + ": no fused image has the base name of an infrared image");
  }
  for (const auto& f : found) m.files[f.name] = f.vis;
  for (const auto& p : pairs)
    if (!m.files.count(p.name))
      throw Error(m.dir + ": no fused image for pair '" + p.name + "' (expected " + p.name + ".png or similar)");
}

std::string size_of(const cv::Mat& m) { return std::to_string(m.cols) + "x" + std::to_string(m.rows); }

// The metrics take 8-bit images: anything else is named with its file and
// bit depth here (issue 27: 16-bit fused images gave a message naming
// neither).
cv::Mat read_8bit(const std::string& path, const char* what) {
  cv::Mat m = timfusion::read_image(path);
  if (m.depth() == CV_8U) return m;
  const int bits = m.depth() == CV_16U || m.depth() == CV_16S || m.depth() == CV_16F ? 16
                   : m.depth() == CV_64F                                            ? 64
                                                                                    : 32;
  throw Error(path + ": the " + what + " image is " + std::to_string(bits) +
              "-bit; timfusion-eval scores 8-bit images (convert it to 8 bits first)");
}

// values[method][pair][metric]
using Results = std::vector<std::vector<std::vector<double>>>;

Results evaluate(const Options& o, const std::vector<timfusion::ImagePair>& pairs) {
  const size_t np = pairs.size(), nm = o.methods.size();
  Results res(nm, std::vector<std::vector<double>>(np));
  std::atomic<size_t> next{0}, done{0};
  std::mutex mu;
  std::condition_variable cv_done;
  std::string error;

  auto work = [&]() {
    for (size_t i; (i = next++) < np;) {
      try {
        const auto& p = pairs[i];
        cv::Mat ir = read_8bit(p.ir, "infrared"), vis = read_8bit(p.vis, "visible");
        if (ir.size() != vis.size())
          throw Error(p.name + ": infrared " + size_of(ir) + " and visible " + size_of(vis) + " differ in size");
        for (size_t m = 0; m < nm; ++m) {
          cv::Mat fused = read_8bit(o.methods[m].files.at(p.name), "fused");
          if (fused.size() != ir.size())
            throw Error(o.methods[m].files.at(p.name) + ": fused image is " + size_of(fused) + " but its sources are " +
                        size_of(ir));
          auto all = timfusion::compute_all({ir, vis, fused}, o.mode, o.metrics);
          for (const auto& name : o.metrics) res[m][i].push_back(all.at(name));
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mu);
        if (error.empty()) error = e.what();
        next = np;  // stop handing out work
      }
      ++done;
      cv_done.notify_one();
    }
  };

  // Pairs in parallel; OpenCV's own threads would only compete with ours.
  cv::setNumThreads(1);
  const size_t nt = std::max<size_t>(1, std::min<size_t>(np, std::thread::hardware_concurrency()));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < nt; ++t) threads.emplace_back(work);
  timfusion::Progress bar("evaluating", static_cast<long>(np), o.progress);
  {
    std::unique_lock<std::mutex> lock(mu);
    while (done < np && error.empty()) {
      cv_done.wait_for(lock, std::chrono::milliseconds(200));
      lock.unlock();
      if (done < np) bar.update(static_cast<long>(done));  // finish() draws the last state
      lock.lock();
    }
  }
  for (auto& t : threads) t.join();
  if (!error.empty()) throw Error(error);
  bar.finish();
  return res;
}

// Mean over images, skipping NaN (VIFB averages with nanmean).
std::vector<std::vector<double>> means(const Results& res, size_t nmetrics) {
  std::vector<std::vector<double>> out;
  for (const auto& method : res) {
    std::vector<double> mean(nmetrics, 0.0), count(nmetrics, 0.0);
    for (const auto& image : method)
      for (size_t k = 0; k < nmetrics; ++k)
        if (!std::isnan(image[k])) {
          mean[k] += image[k];
          count[k] += 1;
        }
    for (size_t k = 0; k < nmetrics; ++k) mean[k] = count[k] > 0 ? mean[k] / count[k] : NAN;
    out.push_back(mean);
  }
  return out;
}

std::string num(double v, const char* fmt) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// Image names are file names: quote the rare one with a comma or quote in it.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void print_csv(const Options& o, const std::vector<timfusion::ImagePair>& pairs, const Results& res,
               const std::vector<std::vector<double>>& mean) {
  const bool multi = o.methods.size() > 1;
  std::printf(multi ? "method,image,metric,value\n" : "image,metric,value\n");
  for (size_t m = 0; m < o.methods.size(); ++m) {
    const std::string prefix = multi ? csv_field(o.methods[m].name) + "," : "";
    for (size_t i = 0; i < pairs.size(); ++i)
      for (size_t k = 0; k < o.metrics.size(); ++k)
        std::printf("%s%s,%s,%s\n", prefix.c_str(), csv_field(pairs[i].name).c_str(), o.metrics[k].c_str(),
                    num(res[m][i][k], "%.10g").c_str());
    for (size_t k = 0; k < o.metrics.size(); ++k)
      std::printf("%smean,%s,%s\n", prefix.c_str(), o.metrics[k].c_str(), num(mean[m][k], "%.10g").c_str());
  }
}

void print_md(const Options& o, const std::vector<timfusion::ImagePair>& pairs, const Results& res,
              const std::vector<std::vector<double>>& mean) {
  const bool multi = o.methods.size() > 1;
  std::printf("Colour mode: %s; %zu image pairs; %s.\n\n", timfusion::color_mode_name(o.mode), pairs.size(),
              multi ? "means per method" : ("method " + o.methods[0].name).c_str());
  std::printf("| %s |", multi ? "method" : "image");
  for (const auto& k : o.metrics) std::printf(" %s |", k.c_str());
  std::printf("\n|---|");
  for (size_t k = 0; k < o.metrics.size(); ++k) std::printf("---:|");
  std::printf("\n");
  auto row = [&](const std::string& label, const std::vector<double>& v) {
    std::printf("| %s |", label.c_str());
    for (double x : v) std::printf(" %s |", num(x, "%.4f").c_str());
    std::printf("\n");
  };
  if (multi) {
    for (size_t m = 0; m < o.methods.size(); ++m) row(o.methods[m].name, mean[m]);
  } else {
    for (size_t i = 0; i < pairs.size(); ++i) row(pairs[i].name, res[0][i]);
    row("mean", mean[0]);
  }
}

// Grouped bars: one group per metric, one bar per method, each metric scaled to its
// largest magnitude so metrics of any range share the axis. Several methods: the
// largest method mean (the best method's bar is full). One method: the largest
// single image's value, so the bar shows the mean relative to the best image
// (scaling by its own mean would draw every bar at 100 %).
void write_plot(const Options& o, const Results& res, const std::vector<std::vector<double>>& mean) {
  const int nm = static_cast<int>(o.methods.size()), nk = static_cast<int>(o.metrics.size());
  const int bar = 18, gap = 26, top = 40 + 20 * nm, plot_h = 300, bottom = 60, left = 20;
  const int group = std::max(nm * bar + gap, 84);  // room for the longest label, "rmse_vifb-"
  const int width = std::max(left * 2 + nk * group, 360), height = top + plot_h + bottom;
  cv::Mat img(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  static const cv::Scalar palette[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44},  {40, 39, 214},
                                       {189, 103, 148}, {75, 86, 140}, {194, 119, 227}, {127, 127, 127}};
  const int base = top + plot_h;
  const bool single = nm == 1;
  cv::putText(img, std::string("timfusion-eval: means, each metric scaled to ") +
                       (single ? "its largest image value (" : "its largest mean (") +
                       timfusion::color_mode_name(o.mode) + ")",
              {left, 22}, cv::FONT_HERSHEY_SIMPLEX, 0.5, {0, 0, 0}, 1, cv::LINE_AA);
  for (int m = 0; m < nm; ++m) {
    const cv::Scalar c = palette[m % 8];
    cv::rectangle(img, cv::Rect(left, 34 + 20 * m, 14, 14), c, cv::FILLED);
    cv::putText(img, o.methods[m].name, {left + 20, 46 + 20 * m}, cv::FONT_HERSHEY_SIMPLEX, 0.45, {0, 0, 0}, 1,
                cv::LINE_AA);
  }
  cv::line(img, {left, base}, {width - left, base}, {0, 0, 0}, 1);
  for (int k = 0; k < nk; ++k) {
    double scale = 0;
    for (int m = 0; m < nm; ++m)
      if (std::isfinite(mean[m][k])) scale = std::max(scale, std::abs(mean[m][k]));
    if (single)
      for (const auto& image : res[0])
        if (std::isfinite(image[k])) scale = std::max(scale, std::abs(image[k]));
    const int x0 = left + k * group + gap / 2;
    for (int m = 0; m < nm; ++m) {
      const double v = mean[m][k];
      const int h = std::isfinite(v) && scale > 0 ? static_cast<int>(std::lround(std::abs(v) / scale * plot_h)) : 0;
      cv::rectangle(img, cv::Rect(x0 + m * bar, base - h, bar - 2, std::max(h, 1)), palette[m % 8], cv::FILLED);
    }
    const std::string label = o.metrics[k] + (timfusion::higher_is_better(o.metrics[k]) ? "" : "-");
    cv::putText(img, label, {x0, base + 16}, cv::FONT_HERSHEY_SIMPLEX, 0.4, {0, 0, 0}, 1, cv::LINE_AA);
    cv::putText(img, num(mean[0][k], "%.3g"), {x0, base + 32}, cv::FONT_HERSHEY_SIMPLEX, 0.33, {90, 90, 90}, 1,
                cv::LINE_AA);
  }
  cv::putText(img, "label-: lower is better; numbers: " + o.methods[0].name, {left, height - 10},
              cv::FONT_HERSHEY_SIMPLEX, 0.4, {90, 90, 90}, 1, cv::LINE_AA);
  timfusion::write_image(o.plot, img);
}

int run(const Options& o_in) {
  Options o = o_in;
  std::vector<std::string> unmatched;
  const auto pairs = timfusion::list_pairs(o.ir, o.vis, &unmatched);
  for (auto& m : o.methods) match_fused(pairs, m, o.ir);
  if (!unmatched.empty())
    std::fprintf(stderr, "timfusion-eval: %zu image(s) without a partner in the other source folder ignored\n",
                 unmatched.size());
  std::fprintf(stderr, "timfusion-eval: colour mode: %s (%s)\n", timfusion::color_mode_name(o.mode),
               o.mode == timfusion::ColorMode::PerChannel
                   ? "VIFB: each fused RGB channel vs visible channel and gray IR, averaged"
                   : "BT.601 luma of every colour image");
  const Results res = evaluate(o, pairs);
  const auto mean = means(res, o.metrics.size());
  if (o.format == "md")
    print_md(o, pairs, res, mean);
  else
    print_csv(o, pairs, res, mean);
  if (!o.plot.empty()) write_plot(o, res, mean);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  return tool::guarded_main("timfusion-eval", [&] { return run(o); });
}
