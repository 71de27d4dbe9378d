// Qabf, Xydeas & Petrovic's edge-preservation measure (VIFB metricsQabf.m).
#include <cmath>

#include "image_ops.h"
#include "kernels.h"

namespace timfusion::metrics_detail {

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Edges {
  cv::Mat g, a;  // strength and orientation
};

// VIFB applies 255*im2double to planes that are already double, i.e. multiplies the
// [0,255] values by 255 once more. Ratios do not see it; the gA == gF case below does.
Edges sobel_edges(const cv::Mat& x) {
  // conv2(p, h, 'same') with zero padding; conv2 flips the kernel, so correlate with
  // the rotated kernels h3 (x) and h1 (y).
  static const double h3_rot[9] = {1, 0, -1, 2, 0, -2, 1, 0, -1};
  static const double h1_rot[9] = {-1, -2, -1, 0, 0, 0, 1, 2, 1};
  cv::Mat p = x * 255.0;
  cv::Mat sx = correlate3x3(p, h3_rot, Border::Zero), sy = correlate3x3(p, h1_rot, Border::Zero);
  Edges e{cv::Mat(x.size(), CV_64F), cv::Mat(x.size(), CV_64F)};
  for (int i = 0; i < x.rows; ++i)
    for (int j = 0; j < x.cols; ++j) {
      double gx = sx.at<double>(i, j), gy = sy.at<double>(i, j);
      e.g.at<double>(i, j) = std::sqrt(gx * gx + gy * gy);
      e.a.at<double>(i, j) = gx == 0 ? kPi / 2 : std::atan(gy / gx);
    }
  return e;
}

// Per-pixel preservation Q^XF = Qg * Qa.
double preservation(double gx, double ax, double gf, double af) {
  const double tg = 0.9994, kg = -15, dg = 0.5, ta = 0.9879, ka = -22, da = 0.8;
  double gxf;
  if (gx > gf)
    gxf = gf / gx;
  else if (gx == gf)
    gxf = gf;  // VIFB quirk: not 1 (equal non-zero strengths give Qg = Tg instead of ~0.9988)
  else
    gxf = gx / gf;
  const double axf = 1 - std::abs(ax - af) / (kPi / 2);
  const double qg = tg / (1 + std::exp(kg * (gxf - dg)));
  const double qa = ta / (1 + std::exp(ka * (axf - da)));
  return qg * qa;
}

}  // namespace

double qabf(const Planes& p) {
  // VIFB calls Qabf(VIS, IR, F); the measure is symmetric in the sources.
  Edges a = sobel_edges(p.vis), b = sobel_edges(p.ir), f = sobel_edges(p.fused);
  double num = 0, den = 0;
  for (int i = 0; i < f.g.rows; ++i)
    for (int j = 0; j < f.g.cols; ++j) {
      const double ga = a.g.at<double>(i, j), gb = b.g.at<double>(i, j);
      const double gf = f.g.at<double>(i, j), af = f.a.at<double>(i, j);
      num += preservation(ga, a.a.at<double>(i, j), gf, af) * ga +
             preservation(gb, b.a.at<double>(i, j), gf, af) * gb;
      den += ga + gb;
    }
  return num / den;
}

}  // namespace timfusion::metrics_detail
