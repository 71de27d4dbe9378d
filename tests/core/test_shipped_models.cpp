// The shipped weight files (core/models): they load by name, are the networks
// the docs say, and fuse real held-out pairs better than the plain average.
// These guard the committed weights against a regression (a retrain, a
// conversion bug) rather than the code: the code has its own tests.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "test_support.h"
#include "timfusion/arch.h"
#include "timfusion/fuser.h"
#include "timfusion/metrics.h"
#include "timfusion/model_file.h"
#include "timfusion/pairs.h"

using namespace timfusion;

namespace {

struct GrayPair {
  cv::Mat ir, vis;
};

// The first pairs of RoadScene's common test split: never trained on.
std::vector<GrayPair> held_out_pairs(size_t n) {
  std::ifstream list(tftest::data("roadscene/subsets/cddfuse_test50.txt"));
  std::vector<GrayPair> out;
  std::string name;
  while (out.size() < n && list >> name) {
    GrayPair p;
    p.ir = read_image(tftest::data("roadscene/ir/" + name + ".png"), cv::IMREAD_GRAYSCALE);
    p.vis = read_image(tftest::data("roadscene/vis/" + name + ".png"), cv::IMREAD_GRAYSCALE);
    out.push_back(p);
  }
  return out;
}

const std::vector<std::string> kMetrics = {"sd", "mi", "qabf", "vif", "sf", "ag", "ei"};

// Means of kMetrics over the pairs for a fusion function.
template <typename Fuse>
std::map<std::string, double> mean_metrics(const std::vector<GrayPair>& pairs, Fuse&& fuse) {
  std::map<std::string, double> sum;
  for (const auto& p : pairs) {
    cv::Mat fused = fuse(p);
    for (const auto& [k, v] : compute_all({p.ir, p.vis, fused}, ColorMode::Luma, kMetrics)) sum[k] += v / pairs.size();
  }
  return sum;
}

std::map<std::string, double> model_metrics(const std::string& name, const std::vector<GrayPair>& pairs) {
  FuserOptions o;
  o.model = name;
  o.device = Device::Cpu;
  Fuser f(o);
  return mean_metrics(pairs, [&](const GrayPair& p) { return f.fuse(p.ir, p.vis); });
}

}  // namespace

TEST(ShippedModels, RealTimeModelIsTheSearchedDetailNetwork) {
  ModelFile m = load_model_file(resolve_model_path("ivif-rt"));
  EXPECT_EQ(m.arch.name, "ivif-rt");
  EXPECT_EQ(m.arch.downscale, 4);
  EXPECT_EQ(m.arch.head, Head::Detail);
}

// TNO42 is a test set (scripts/quality_table.sh): no shipped model may have
// been trained on it, also not through its meta-initialisation, and the
// provenance must name the data it was trained on.
TEST(ShippedModels, ProvenanceNamesTheTrainingDataAndNeverTno) {
  for (const std::string name : {"ivif-rt", "ivif-light"}) {
    ModelFile m = load_model_file(resolve_model_path(name));
    EXPECT_EQ(m.provenance.find("tno42"), std::string::npos) << name << " was trained on TNO42";
    EXPECT_NE(m.provenance.find("roadscene"), std::string::npos) << name;
    EXPECT_NE(m.provenance.find("cddfuse_test50.txt"), std::string::npos) << name << ": the test split is not excluded";
    EXPECT_NE(m.provenance.find("msrs_seg"), std::string::npos) << name;
  }
}

// Regression guard for the committed weights, on four held-out RoadScene test50
// pairs (luma): both models beat the plain average on the fusion metrics (the
// default: all but MI, see below); the default keeps more detail than
// ivif-light (its detail head: SF, AG, EI); and neither falls more than 5 %
// below what the shipped files scored when they were committed (printed
// below, docs/quality.md has the full tables).
TEST(ShippedModels, BothBeatThePlainAverageTheDefaultKeepsMoreDetailAndNeitherRegresses) {
  const auto pairs = held_out_pairs(4);
  ASSERT_EQ(pairs.size(), 4u);
  const auto avg = mean_metrics(pairs, [](const GrayPair& p) {
    cv::Mat a;
    cv::addWeighted(p.ir, 0.5, p.vis, 0.5, 0.0, a);
    return a;
  });
  const auto light = model_metrics("ivif-light", pairs);
  const auto rt = model_metrics("ivif-rt", pairs);
  for (const auto& k : kMetrics) {
    std::printf("[shipped] %-4s  ivif-rt %.4f  ivif-light %.4f  average %.4f\n", k.c_str(), rt.at(k), light.at(k),
                avg.at(k));
    EXPECT_GT(light.at(k), avg.at(k)) << "ivif-light vs average on " << k;
    // Not MI for the default: MI rewards an output that is a fixed function of
    // both inputs everywhere, which the plain average is; the default follows the
    // salient source region by region instead (docs/quality.md). On TNO42 IFCNN
    // and U2Fusion are below the average's MI too. Its own floor is below.
    if (k != "mi") EXPECT_GT(rt.at(k), avg.at(k)) << "ivif-rt vs average on " << k;
  }
  for (const auto& k : {"sf", "ag", "ei"}) EXPECT_GT(rt.at(k), light.at(k)) << "ivif-rt vs ivif-light on " << k;
  // Measured when the weights were committed.
  // ivif-rt: the noise-aware model (issue 26); the previous one scored sd 45.501, mi 1.736, qabf 0.3853,
  // vif 0.4685, sf 19.335, ag 6.442, ei 66.61 here.
  const std::map<std::string, double> rt_at_commit = {{"sd", 48.216}, {"mi", 1.710}, {"qabf", 0.3595}, {"vif", 0.4882},
                                                       {"sf", 22.423}, {"ag", 7.911}, {"ei", 81.78}};
  const std::map<std::string, double> light_at_commit = {{"sd", 35.055}, {"mi", 2.032}, {"qabf", 0.4689},
                                                         {"vif", 0.5827}, {"sf", 11.238}, {"ag", 4.361}, {"ei", 45.89}};
  for (const auto& [k, v] : rt_at_commit) EXPECT_GT(rt.at(k), 0.95 * v) << "ivif-rt regressed on " << k;
  for (const auto& [k, v] : light_at_commit) EXPECT_GT(light.at(k), 0.95 * v) << "ivif-light regressed on " << k;
}

// Without $TIMFUSION_MODEL the element and the CLI use ivif-rt (installed
// copy, else the source tree's): live on a CPU out of the box.
TEST(ShippedModels, TheDefaultIsTheRealTimeModel) {
  const char* saved = std::getenv("TIMFUSION_MODEL");
  const std::string keep = saved ? saved : "";
  unsetenv("TIMFUSION_MODEL");
  const std::string p = default_model_path();
  if (!keep.empty()) setenv("TIMFUSION_MODEL", keep.c_str(), 1);
  EXPECT_NE(p.find("ivif-rt.safetensors"), std::string::npos) << p;
  EXPECT_EQ(load_model_file(p).arch.name, "ivif-rt");
}
