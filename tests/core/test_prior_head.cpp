// The detail head's salient prior, max-abs detail selection and the residual
// switch (arch.h: salient_prior, detail_select, residual): parsing, what each
// does to a fused image, and the CPU kernel against the autograd head.
#include <gtest/gtest.h>

#include "timfusion/error.h"
#include "timfusion/torch/networks.h"

using namespace timfusion;
using torch::indexing::Slice;

namespace {

const char* kPriorNet =
    R"({"channels":8,"downscale":4,"head":"detail","image_means":true,"salient_prior":4,"detail_select":true,"residual":false,"cells":["Chain2"],"normal":["Identity"]})";

// Zero last convolution, gain biases logit(gain / 2) (scripts/prior_init.py):
// the network is then exactly the prior's fusion at that gain.
void zero_head(nn::TimNet& net, double gain) {
  torch::NoGradGuard no_grad;
  for (auto& p : net->named_parameters()) {
    if (p.key().rfind("stem_out.3.", 0) != 0) continue;
    p.value().zero_();
    if (p.key() == "stem_out.3.conv2d.bias") {
      const int64_t s2 = p.value().size(0) / 4;
      p.value().narrow(0, 2 * s2, 2 * s2).fill_(std::log(gain / (2 - gain)));
    }
  }
}

}  // namespace

TEST(PriorHead, FieldsRoundTripAndBadOnesAreRejected) {
  auto spec = ArchSpec::from_json(kPriorNet);
  EXPECT_EQ(spec.salient_prior, 4);
  EXPECT_TRUE(spec.detail_select);
  EXPECT_FALSE(spec.residual);
  auto again = ArchSpec::from_json(spec.to_json());
  EXPECT_EQ(again.salient_prior, 4);
  EXPECT_TRUE(again.detail_select);
  EXPECT_FALSE(again.residual);
  // Defaults: no prior, the sum of both details, the residual.
  auto plain = ArchSpec::from_json(R"({"channels":8,"downscale":4,"head":"detail","cells":["Chain2"],"normal":["Identity"]})");
  EXPECT_EQ(plain.salient_prior, 0);
  EXPECT_FALSE(plain.detail_select);
  EXPECT_TRUE(plain.residual);
  EXPECT_EQ(plain.to_json().find("residual"), std::string::npos);  // old files stay byte-identical
  for (const char* bad : {
           R"({"channels":8,"downscale":4,"head":"detail","image_means":true,"salient_prior":65,"cells":["Chain2"],"normal":["Identity"]})",
           R"({"channels":8,"downscale":4,"head":"detail","image_means":true,"salient_prior":-1,"cells":["Chain2"],"normal":["Identity"]})",
           R"({"channels":8,"downscale":4,"head":"detail","image_means":true,"salient_prior":2.5,"cells":["Chain2"],"normal":["Identity"]})",
           R"({"channels":8,"downscale":4,"head":"detail","salient_prior":4,"cells":["Chain2"],"normal":["Identity"]})",
           R"({"channels":8,"downscale":4,"head":"blend","image_means":true,"salient_prior":4,"cells":["Chain2"],"normal":["Identity"]})",
           R"({"channels":8,"downscale":4,"head":"blend","detail_select":true,"cells":["Chain2"],"normal":["Identity"]})",
           R"({"channels":8,"downscale":4,"head":"detail","detail_select":"yes","cells":["Chain2"],"normal":["Identity"]})",
           R"({"channels":8,"downscale":4,"head":"image","residual":false,"cells":["Chain2"],"normal":["Identity"]})",
           R"({"channels":8,"downscale":4,"head":"detail","residual":0,"cells":["Chain2"],"normal":["Identity"]})"})
    EXPECT_THROW(ArchSpec::from_json(bad), Error) << bad;
  try {
    ArchSpec::from_json(R"({"channels":8,"downscale":4,"head":"detail","salient_prior":4,"cells":["Chain2"],"normal":["Identity"]})");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("salient_prior needs image_means"), std::string::npos) << e.what();
  }
}

// Where both inputs have texture, the sum of the details has the orientation
// of neither; the max-abs rule keeps the stronger one as it was.
TEST(PriorHead, SelectionKeepsTheStrongerDetailInsteadOfTheSum) {
  c10::InferenceMode guard;
  const int H = 48, W = 64;
  auto y = torch::arange(H, torch::kFloat32).reshape({1, 1, H, 1}).expand({1, 1, H, W});
  auto x = torch::arange(W, torch::kFloat32).reshape({1, 1, 1, W}).expand({1, 1, H, W});
  // IR: vertical stripes of 20 grey levels; visible: horizontal ones of 6.
  auto ir = (0.5 + (20 / 255.0) * torch::sign(torch::sin(x * 1.2))).contiguous();
  auto vis = (0.5 + (6 / 255.0) * torch::sign(torch::sin(y * 1.2))).contiguous();
  auto spec = ArchSpec::from_json(kPriorNet);
  nn::TimNet selecting(spec);
  spec.detail_select = false;
  nn::TimNet summing(spec);
  zero_head(selecting, 1.0);
  zero_head(summing, 1.0);
  auto base = [&](const torch::Tensor& f) { return f - nn::base_layer(f); };
  auto inner = [&](const torch::Tensor& t) { return t.index({0, 0, Slice(4, H - 4), Slice(4, W - 4)}); };
  auto ir_detail = inner(base(ir)), vis_detail = inner(base(vis));
  ASSERT_TRUE((ir_detail.abs() > vis_detail.abs()).all().item<bool>()) << "the scene: IR's detail is the stronger";
  auto sel = inner(selecting->forward(ir, vis)), sum = inner(summing->forward(ir, vis));
  // Fused detail, against the fused image's own 5x5 base: the selecting head
  // keeps the IR's stripes with none of the visible's; the sum has both.
  auto sel_detail = inner(base(selecting->forward(ir, vis)));
  auto sum_detail = inner(base(summing->forward(ir, vis)));
  const double vis_energy = vis_detail.pow(2).mean().item<double>();
  auto residual_vis = [&](const torch::Tensor& d) { return (d - ir_detail).pow(2).mean().item<double>(); };
  EXPECT_LT(residual_vis(sel_detail), 0.05 * vis_energy);
  EXPECT_GT(residual_vis(sum_detail), 0.5 * vis_energy);
  EXPECT_GT((sel - sum).abs().max().item<double>(), 3 / 255.0);
}

// With a zero last convolution the base weight is the prior itself: the
// region that deviates more from its own image's mean (the IR's warm square
// on a flat floor, against a flat visible image) takes its base from there.
TEST(PriorHead, ZeroHeadGivesThePriorsBlend) {
  c10::InferenceMode guard;
  const int H = 64, W = 64;
  auto ir = torch::full({1, 1, H, W}, 0.3);
  ir.index_put_({0, 0, Slice(16, 48), Slice(16, 48)}, 0.9);
  auto vis = torch::full({1, 1, H, W}, 0.5);
  nn::TimNet net(ArchSpec::from_json(kPriorNet));
  zero_head(net, 1.0);
  auto out = net->forward(ir, vis);
  // Inside the square: the IR's level, not the blend of the two (0.7).
  EXPECT_NEAR(out[0][0][32][32].item<double>(), 0.9, 0.01);
  // The prior function against its definition at one pixel, by hand.
  auto mean_ir = ir.mean({2, 3}, true), mean_vis = vis.mean({2, 3}, true);
  auto p = nn::salient_prior(vis, ir, mean_vis, mean_ir, 4 / 255.0);
  EXPECT_LT(p[0][0][32][32].item<double>(), 0.01);   // the visible is not salient there
  EXPECT_GE(p.min().item<double>(), 1e-3);           // clamped: logit(p) stays finite
  EXPECT_NEAR(nn::weight_with_prior(torch::full({1}, 0.5), torch::full({1}, 0.2)).item<double>(), 0.2, 1e-6);
  EXPECT_NEAR(nn::weight_with_prior(torch::full({1}, 0.9), torch::full({1}, 0.5)).item<double>(), 0.9, 1e-6);
}

// Without the residual, a head whose residual channels are far from zero
// gives the same image as one whose residual channels are zero.
TEST(PriorHead, ResidualOffIgnoresTheResidualChannels) {
  c10::InferenceMode guard;
  auto spec = ArchSpec::from_json(kPriorNet);
  nn::TimNet net(spec);
  zero_head(net, 1.2);
  auto ir = torch::rand({1, 1, 32, 32}), vis = torch::rand({1, 1, 32, 32});
  auto before = net->forward(ir, vis);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->named_parameters())
      if (p.key() == "stem_out.3.conv2d.bias") p.value().narrow(0, 16, 16).fill_(0.3);  // r = 0.3 everywhere
  }
  EXPECT_TRUE(torch::allclose(net->forward(ir, vis), before));
  spec.residual = true;
  nn::TimNet with_residual(spec);
  {
    torch::NoGradGuard no_grad;
    auto from = net->named_parameters();
    for (auto& p : with_residual->named_parameters()) p.value().copy_(from[p.key()]);
  }
  EXPECT_NEAR((with_residual->forward(ir, vis) - before).mean().item<double>(), 0.3, 1e-4);
}

// The one-pass CPU kernel against the autograd head, every combination of the
// three switches (as DetailHeadKernelMatchesTheAutogradHead: at most 1 grey
// level, on a tiny fraction of pixels).
TEST(PriorHead, KernelMatchesTheAutogradHead) {
  c10::InferenceMode guard;
  for (int prior : {0, 4})
    for (bool select : {false, true})
      for (bool residual : {false, true}) {
        auto spec = ArchSpec::from_json(
            R"({"channels":8,"downscale":4,"head":"detail","detail_coring":1,"noise_coring":1.5,"image_means":true,"cells":["Chain2"],"normal":["ECAattention_3"]})");
        spec.salient_prior = prior;
        spec.detail_select = select;
        spec.residual = residual;
        spec.validate();
        torch::manual_seed(7);
        nn::TimNet net(spec);
        for (auto& p : net->named_parameters()) p.value().normal_(0, 0.3);
        net->eval();
        net->to_channels_last();
        net->fold_bn();
        const int H = 40, W = 56;
        auto ir = torch::rand({1, 1, H, W}), vis = torch::rand({1, 1, H, W});
        auto ref = (net->forward(ir, vis).clamp(0, 1) * 255).round().to(torch::kInt32);
        std::vector<uint8_t> out(H * W);
        std::vector<float> scratch;
        ASSERT_TRUE(net->forward_u8(ir, vis, out.data(), scratch));
        auto got = torch::from_blob(out.data(), {1, 1, H, W}, torch::kUInt8).to(torch::kInt32);
        auto diff = (got - ref).abs();
        const std::string what = spec.to_json();
        EXPECT_LE(diff.max().item<int>(), 1) << what;
        EXPECT_LE(diff.gt(0).sum().item<int64_t>(), H * W / 200) << what;
        EXPECT_GT(ref.to(torch::kFloat32).std().item<double>(), 5.0) << what;
      }
}
