// The metric table: names, conventions, and the colour averaging around the kernels.
#include <sstream>

#include <opencv2/core.hpp>

#include "kernels.h"
#include "timfusion/error.h"
#include "timfusion/metrics.h"

namespace timfusion {

namespace {

using metrics_detail::Planes;

struct Metric {
  std::string name;
  double (*fn)(const Planes&);
  bool higher_better;
  std::string convention;
};

const std::vector<Metric>& table() {
  namespace d = metrics_detail;
  static const std::vector<Metric> t = {
      {"en", d::entropy, true, "entropy of F in bits, 256 bins at floor(F) (VIFB metricsEntropy)"},
      {"sd", d::std_dev, true, "population standard deviation of F in double (VIFB metricsVariance)"},
      {"sf", d::spatial_frequency, true,
       "sqrt(RF^2+CF^2), sums over M*N on [0,255]; colour: R|G|B side by side (VIFB metricsSpatial_frequency)"},
      {"ag", d::average_gradient, true,
       "mean sqrt((Gx^2+Gy^2)/2), MATLAB gradient, sum over (M-1)(N-1) (VIFB metricsAvg_gradient)"},
      {"mi", d::mutual_information, true,
       "MI(VIS,F)+MI(IR,F) in nats after min-max normalisation to [0,255] (VIFB metricsMutinf)"},
      {"scd", d::scd, true, "corr2(F-VIS,IR)+corr2(F-IR,VIS) (Aslantas & Bendes; Tang's analysis_SCD)"},
      {"vif", d::vif, true, "VIFp(IR,F)+VIFp(VIS,F), LIVE multi-scale pixel VIF, sigma_n^2=2 (Tang's vifp_mscale)"},
      {"qabf", d::qabf, true, "Xydeas-Petrovic edge preservation, VIFB's G=gF where gA==gF (VIFB metricsQabf)"},
      {"nabf", d::nabf, false,
       "Kumar's modified artefact measure on [0,255] (Tang's code passes [0,1], giving other values)"},
      {"ssim", d::ssim, true, "SSIM(VIS,F)+SSIM(IR,F), Gaussian 11/1.5, L=255, 'valid' (VIFB metricsSsim)"},
      {"ce", d::cross_entropy, false,
       "mean over sources of sum P_src log2(P_src/P_F) where both non-zero (VIFB metricsCross_entropy)"},
      {"ei", d::edge_intensity, true, "mean Sobel magnitude, replicate border (VIFB metricsEdge_intensity)"},
      {"qcb", d::qcb, true, "Chen-Blum contrast preservation, Liu's code (VIFB metricsQcb)"},
      {"qcv", d::qcv, false, "Chen-Varshney regional CSF error, Liu's code (VIFB metricsQcv)"},
      {"psnr_vifb", d::psnr_vifb, true, "VIFB's PSNR: 20 log10(255/sqrt(rmse_vifb)), about 60 dB (VIFB metricsPsnr)"},
      {"rmse_vifb", d::rmse_vifb, false, "VIFB's RMSE: mean over sources of sqrt(sum (S-F)^2)/(M*N) (VIFB metricsRmse)"},
      {"psnr", d::psnr, true, "standard: 10 log10(255^2/MSE), MSE = (MSE(VIS,F)+MSE(IR,F))/2"},
      {"rmse", d::rmse, false, "standard: sqrt((MSE(VIS,F)+MSE(IR,F))/2)"},
  };
  return t;
}

const Metric& find(const std::string& name) {
  for (const auto& m : table())
    if (m.name == name) return m;
  std::string all;
  for (const auto& m : table()) all += (all.empty() ? "" : ", ") + m.name;
  throw Error("unknown metric '" + name + "' (known: " + all + ")");
}

double evaluate(const Metric& m, const std::vector<Planes>& planes) {
  if (planes.size() == 1) return m.fn(planes[0]);
  if (m.fn == metrics_detail::spatial_frequency) {
    // VIFB's [m,n] = size(F) on an MxNx3 image gives n = 3N, and F(i,j) then walks
    // the channels as one M x 3N plane: one SF over R|G|B, seams included.
    Planes side;
    cv::hconcat(std::vector<cv::Mat>{planes[0].fused, planes[1].fused, planes[2].fused}, side.fused);
    return m.fn(side);
  }
  double sum = 0;
  for (const auto& p : planes) sum += m.fn(p);
  return sum / static_cast<double>(planes.size());
}

}  // namespace

const char* color_mode_name(ColorMode mode) { return mode == ColorMode::Luma ? "luma" : "per-channel"; }

ColorMode parse_color_mode(const std::string& name) {
  if (name == "per-channel") return ColorMode::PerChannel;
  if (name == "luma") return ColorMode::Luma;
  throw Error("unknown colour mode '" + name + "' (use per-channel or luma)");
}

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& m : table()) n.push_back(m.name);
    return n;
  }();
  return names;
}

bool is_metric(const std::string& name) {
  for (const auto& m : table())
    if (m.name == name) return true;
  return false;
}

const std::string& metric_convention(const std::string& name) { return find(name).convention; }
bool higher_is_better(const std::string& name) { return find(name).higher_better; }

std::vector<std::string> parse_metric_list(const std::string& csv) {
  std::vector<std::string> out;
  std::stringstream ss(csv);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b == std::string::npos) continue;
    item = item.substr(b, e - b + 1);
    find(item);  // throws for an unknown name
    out.push_back(item);
  }
  if (out.empty()) throw Error("no metric named in '" + csv + "'");
  return out;
}

double compute_metric(const std::string& name, const MetricInputs& in, ColorMode mode) {
  const Metric& m = find(name);
  return evaluate(m, metrics_detail::make_planes(in, mode));
}

double compute_metric(const std::string& name, const cv::Mat& ir, const cv::Mat& vis, const cv::Mat& fused,
                      ColorMode mode) {
  return compute_metric(name, MetricInputs{ir, vis, fused}, mode);
}

std::map<std::string, double> compute_all(const MetricInputs& in, ColorMode mode,
                                          const std::vector<std::string>& names) {
  std::vector<const Metric*> wanted;
  for (const auto& n : names) wanted.push_back(&find(n));
  const auto planes = metrics_detail::make_planes(in, mode);  // converted once for all metrics
  std::map<std::string, double> out;
  for (const Metric* m : wanted) out[m->name] = evaluate(*m, planes);
  return out;
}

}  // namespace timfusion
