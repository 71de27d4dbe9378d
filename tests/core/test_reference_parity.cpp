// timfusion vs an independent PyTorch implementation of the reference
// networks (scripts/tim_reference.py): every case of tests/fixtures/manifest.json.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "timfusion/torch/networks.h"
#include "timfusion/torch/state_dict.h"
#include "test_support.h"
#include "timfusion/fuser.h"
#include "timfusion/model_file.h"
#include "timfusion/pairs.h"

using namespace timfusion;
using nlohmann::json;

namespace {

struct Case {
  json j;
  std::string name() const { return j["name"]; }
};

std::vector<Case> load_cases() {
  std::ifstream f(tftest::fixtures("manifest.json"));
  json m = json::parse(f);
  std::vector<Case> cases;
  for (auto& c : m["cases"]) cases.push_back({c});
  return cases;
}

std::string resolve(const std::string& p) {
  if (p.rfind("$DATA/", 0) == 0) return tftest::data(p.substr(6));
  return tftest::fixtures(p);
}

// Inputs as the reference reads them: 8-bit gray (luma for colour images).
cv::Mat gray_input(const json& c, const char* slot) {
  cv::Mat img = read_image(resolve(c[slot]), cv::IMREAD_UNCHANGED);
  img = luma_of(img, ChannelOrder::BGR);
  if (c.contains("crop")) {
    auto r = c["crop"];
    img = img(cv::Rect(r[0], r[1], r[2], r[3])).clone();
  }
  return img;
}

std::string arch_of(const json& c) { return c["arch"].is_null() ? "" : c["arch"].get<std::string>(); }

class ReferenceParity : public ::testing::TestWithParam<int> {
 protected:
  static std::vector<Case>& cases() {
    static std::vector<Case> c = load_cases();
    return c;
  }
};

TEST(ReferenceParityManifest, CoversEveryArchitectureAndOp) {
  std::ifstream f(tftest::fixtures("manifest.json"));
  json m = json::parse(f);
  std::set<std::string> weights;
  for (auto& c : m["cases"]) weights.insert(c["weights"].get<std::string>());
  for (const char* w : {"ivif-light-c48.safetensors", "ivif-light-c48-nometa.safetensors", "ivif-full-c8.safetensors",
                        "mmif-ct-c8.safetensors", "mmif-pet-c8.safetensors", "mmif-spect-c8.safetensors",
                        "ops-residual-c8.safetensors", "ops-dense-c8.safetensors", "ops-dilconv-c8.safetensors",
                        "ops-sepconv-c8.safetensors", "ops-attention-c8.safetensors", "ops-fusion-c8.safetensors"})
    EXPECT_TRUE(weights.count(w)) << w;
}

TEST_P(ReferenceParity, MatchesReference) {
  const json& c = cases().at(GetParam()).j;
  SCOPED_TRACE(c["name"].get<std::string>());
  const std::string weights = tftest::fixtures(c["weights"]);
  cv::Mat ir = gray_input(c, "ir"), vis = gray_input(c, "vis");

  // The product path: Fuser (BN folded, NHWC), 8-bit output.
  FuserOptions o;
  o.model = weights;
  o.arch = arch_of(c);
  o.device = Device::Cpu;
  Fuser fuser(o);
  cv::Mat out = fuser.fuse(ir, vis);
  ASSERT_EQ(out.type(), CV_8UC1);
  ASSERT_EQ(out.size(), vis.size());

  if (c["compare"] == "png") {
    cv::Mat expected = read_image(tftest::fixtures(c["expected"]), cv::IMREAD_GRAYSCALE);
    cv::Mat diff;
    cv::absdiff(out, expected, diff);
    double max_diff;
    cv::minMaxLoc(diff, nullptr, &max_diff);
    EXPECT_LE(max_diff, c["max_abs_diff"].get<double>());
    EXPECT_LT(cv::countNonZero(diff) / double(diff.total()), 0.01) << "more than 1% of pixels off by one level";
    return;
  }
  // Float comparison on the unclamped output of the network itself.
  auto file = read_safetensors(tftest::fixtures(c["expected"]));
  auto raw = nn::from_entry(*file.find("raw"));
  ModelFile mf = load_model_file(weights, arch_of(c));
  nn::TimNet net(mf.arch);
  nn::load_state(*net, mf.weights, weights);
  net->eval();
  net->fold_bn();
  c10::InferenceMode guard;
  auto to_t = [](const cv::Mat& m) {
    cv::Mat f;
    m.convertTo(f, CV_32F, 1.0 / 255.0);
    return torch::from_blob(f.data, {1, 1, f.rows, f.cols}).clone();
  };
  auto y = net->forward(to_t(ir), to_t(vis))[0][0];
  float err = (y - raw).abs().max().item<float>();
  EXPECT_LT(err, c["atol"].get<float>()) << "max |diff| " << err;
  // And the Fuser's 8-bit output is the rounded clamp of it.
  auto expected8 = (raw.clamp(0, 1) * 255).round().to(torch::kUInt8);
  cv::Mat e8(out.rows, out.cols, CV_8UC1, expected8.data_ptr());
  cv::Mat diff;
  cv::absdiff(out, e8, diff);
  double max_diff;
  cv::minMaxLoc(diff, nullptr, &max_diff);
  EXPECT_LE(max_diff, 1);
}

std::string case_name(const ::testing::TestParamInfo<int>& info) {
  static std::vector<Case> cases = load_cases();
  std::string n = cases.at(info.param).name();
  for (auto& ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceParity, ::testing::Range(0, static_cast<int>(load_cases().size())),
                         case_name);

}  // namespace
