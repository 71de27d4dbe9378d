// Nabf, B. K. Shreyamsha Kumar's modified fusion-artefact measure (his
// objective_fusion_perform_fn.m, shipped in VIFB's CBF method and used as
// analysis_nabf.m by Tang et al.): the weighted share of edge information that the
// fused image shows more strongly than both sources and that neither explains.
// Lower is better.
//
// Scale: Kumar's code runs on [0,255] doubles (his CBF passes them), where the edge
// threshold Td = 2 means two gray levels; that is what we compute. Tang's evaluation
// passes im2double images in [0,1], where no gradient reaches Td, every weight falls
// to wt_min and Nabf becomes an unweighted mean, so its published numbers differ.
#include <cmath>

#include "image_ops.h"
#include "kernels.h"

namespace timfusion::metrics_detail {

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Edges {
  cv::Mat g, a;
};

Edges kumar_sobel(const cv::Mat& x) {
  // sobel_fn.m: correlation with Sobel/8 after per_extn_im_fn, which despite its
  // name mirrors the border without repeating it (reflect-101). "gv" is d/dx.
  static const double vt[9] = {-1 / 8., 0, 1 / 8., -2 / 8., 0, 2 / 8., -1 / 8., 0, 1 / 8.};
  static const double ht[9] = {-1 / 8., -2 / 8., -1 / 8., 0, 0, 0, 1 / 8., 2 / 8., 1 / 8.};
  cv::Mat gv = correlate3x3(x, vt, Border::Reflect101), gh = correlate3x3(x, ht, Border::Reflect101);
  Edges e{cv::Mat(x.size(), CV_64F), cv::Mat(x.size(), CV_64F)};
  for (int i = 0; i < x.rows; ++i)
    for (int j = 0; j < x.cols; ++j) {
      double v = gv.at<double>(i, j), h = gh.at<double>(i, j);
      e.g.at<double>(i, j) = std::sqrt(h * h + v * v);
      // atan(v/0) = +-pi/2 as in MATLAB; both zero gives 0.
      e.a.at<double>(i, j) = (v == 0 && h == 0) ? 0.0 : std::atan(v / h);
    }
  return e;
}

double preservation(double gx, double ax, double gf, double af) {
  const double nrg = 0.9999, kg = 19, sg = 0.5, nra = 0.9995, ka = 22, sa = 0.5;
  double gxf = 0;
  if (gx == 0 || gf == 0)
    gxf = 0;
  else
    gxf = gx > gf ? gf / gx : gx / gf;
  const double axf = std::abs(std::abs(ax - af) - kPi / 2) * 2 / kPi;
  const double qg = nrg / (1 + std::exp(-kg * (gxf - sg)));
  const double qa = nra / (1 + std::exp(-ka * (axf - sa)));
  return std::sqrt(qg * qa);
}

double weight(double g) {
  const double td = 2, wt_min = 0.001, lg = 1.5;
  return g >= td ? std::pow(g, lg) : wt_min;
}

}  // namespace

double nabf(const Planes& p) {
  Edges a = kumar_sobel(p.ir), b = kumar_sobel(p.vis), f = kumar_sobel(p.fused);
  double num = 0, den = 0;
  for (int i = 0; i < f.g.rows; ++i)
    for (int j = 0; j < f.g.cols; ++j) {
      const double ga = a.g.at<double>(i, j), gb = b.g.at<double>(i, j), gf = f.g.at<double>(i, j);
      const double wa = weight(ga), wb = weight(gb);
      den += wa + wb;
      if (gf > ga && gf > gb) {
        const double af = f.a.at<double>(i, j);
        num += (1 - preservation(ga, a.a.at<double>(i, j), gf, af)) * wa +
               (1 - preservation(gb, b.a.at<double>(i, j), gf, af)) * wb;
      }
    }
  return num / den;
}

}  // namespace timfusion::metrics_detail
