#include "run/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/imgproc.hpp>

#include "timfusion/pairs.h"

namespace timfusion::train {

namespace {

const cv::Scalar kColors[] = {{40, 40, 40},   {200, 90, 30},  {40, 150, 40}, {30, 30, 200},
                              {160, 40, 160}, {20, 160, 190}, {120, 120, 0}, {0, 100, 255}};

double nice_step(double range, int target) {
  double raw = range / target, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

void write_curve_png(const std::string& path, const std::string& title, const std::vector<Series>& series, int width,
                     int height) {
  cv::Mat img(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int L = 80, R = 20, T = 40, B = 50;
  const cv::Rect area(L, T, width - L - R, height - T - B);
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!(s.y[i] > 0) || !std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, std::log10(s.y[i])), y1 = std::max(y1, std::log10(s.y[i]));
    }
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  cv::putText(img, title, {L, 26}, font, 0.6, {0, 0, 0}, 1, cv::LINE_AA);
  cv::rectangle(img, area, {0, 0, 0}, 1);
  if (!std::isfinite(x0)) {
    cv::putText(img, "no data yet", {L + 20, T + 40}, font, 0.6, {0, 0, 0}, 1, cv::LINE_AA);
    write_image(path, img);
    return;
  }
  if (x1 <= x0) x1 = x0 + 1;
  y0 = std::floor(y0 * 4) / 4, y1 = std::ceil(y1 * 4) / 4;
  if (y1 <= y0) y1 = y0 + 0.25;
  auto px = [&](double x) { return area.x + (x - x0) / (x1 - x0) * area.width; };
  auto py = [&](double ly) { return area.y + area.height - (ly - y0) / (y1 - y0) * area.height; };

  // Grid: x at nice steps, y at 1-2-5 per decade.
  double xs = nice_step(x1 - x0, 8);
  for (double x = std::ceil(x0 / xs) * xs; x <= x1 + 1e-9; x += xs) {
    int X = static_cast<int>(std::lround(px(x)));
    cv::line(img, {X, area.y}, {X, area.y + area.height}, {225, 225, 225}, 1);
    cv::putText(img, fmt(x), {X - 12, area.y + area.height + 18}, font, 0.4, {0, 0, 0}, 1, cv::LINE_AA);
  }
  for (int dec = static_cast<int>(std::floor(y0)); dec <= static_cast<int>(std::ceil(y1)); ++dec)
    for (double m : {1.0, 2.0, 5.0}) {
      double ly = dec + std::log10(m);
      if (ly < y0 - 1e-9 || ly > y1 + 1e-9) continue;
      int Y = static_cast<int>(std::lround(py(ly)));
      cv::line(img, {area.x, Y}, {area.x + area.width, Y}, m == 1 ? cv::Scalar(200, 200, 200) : cv::Scalar(235, 235, 235), 1);
      cv::putText(img, fmt(m * std::pow(10.0, dec)), {8, Y + 4}, font, 0.4, {0, 0, 0}, 1, cv::LINE_AA);
    }
  cv::putText(img, "step", {area.x + area.width / 2 - 15, height - 12}, font, 0.5, {0, 0, 0}, 1, cv::LINE_AA);

  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    cv::Scalar c = kColors[k % (sizeof kColors / sizeof kColors[0])];
    cv::Scalar faint = (c + cv::Scalar(255, 255, 255) * 2) / 3;
    std::vector<cv::Point> raw, smooth;
    double ema = NAN;
    const double a = 2.0 / (1 + std::max<size_t>(5, s.x.size() / 50));
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!(s.y[i] > 0) || !std::isfinite(s.y[i])) continue;
      double ly = std::log10(s.y[i]);
      ema = std::isnan(ema) ? ly : ema + a * (ly - ema);
      raw.emplace_back(static_cast<int>(std::lround(px(s.x[i]))), static_cast<int>(std::lround(py(ly))));
      smooth.emplace_back(raw.back().x, static_cast<int>(std::lround(py(ema))));
    }
    if (raw.size() > 1) {
      cv::polylines(img, raw, false, faint, 1, cv::LINE_AA);
      cv::polylines(img, smooth, false, c, 2, cv::LINE_AA);
    } else if (raw.size() == 1) {
      cv::circle(img, raw[0], 3, c, -1);
    }
    int ly = T + 18 + static_cast<int>(k) * 18;
    cv::line(img, {area.x + area.width - 150, ly - 4}, {area.x + area.width - 125, ly - 4}, c, 2);
    cv::putText(img, s.name, {area.x + area.width - 118, ly}, font, 0.45, {0, 0, 0}, 1, cv::LINE_AA);
  }
  write_image(path, img);
}

}  // namespace timfusion::train
