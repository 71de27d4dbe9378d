// Whole networks: sizes and key names as the reference (TIM.md §1.5, §2).
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "timfusion/torch/networks.h"
#include "timfusion/torch/state_dict.h"
#include "timfusion/error.h"

using namespace timfusion;

namespace {
int64_t params_under(torch::nn::Module& m, const std::string& prefix) {
  int64_t n = 0;
  for (const auto& kv : m.named_parameters())
    if (kv.key().rfind(prefix, 0) == 0) n += kv.value().numel();
  return n;
}
}  // namespace

TEST(Networks, LightHasReferenceParameterCountAndKeys) {
  nn::TimNet net(ArchSpec::named("ivif-light"));
  EXPECT_EQ(nn::count_parameters(*net), 127358);
  auto st = nn::to_safetensors(*net);
  EXPECT_EQ(st.tensors.size(), 49u);
  for (const char* key : {"stem.0.conv2d.weight", "stem.3.weight", "stem_out.3.conv2d.bias",
                          "cells.1.preprocess1.op.2.running_var", "cells.0._ops.0._op.op.0.conv.weight",
                          "cells.0._ops.0._op.op.4.weight", "cells.1._ops.1._op.se.conv.weight",
                          "cells.1._ops.1._op.relu.weight", "cells.0.preprocess1.op.2.num_batches_tracked"})
    EXPECT_NE(st.find(key), nullptr) << key;
  EXPECT_EQ(st.find("cells.0._ops.1._op.conv1.weight")->shape, (std::vector<int64_t>{48, 48, 3, 3}));
}

TEST(Networks, TwoStageModelsHaveReferenceParameterCounts) {
  nn::TimNet full(ArchSpec::named("ivif-full"));
  EXPECT_EQ(params_under(*full, "stage1."), 994917);
  EXPECT_EQ(params_under(*full, "stage2."), 237308);
  const std::pair<const char*, int64_t> mmif[] = {{"mmif-ct", 235059}, {"mmif-pet", 244815}, {"mmif-spect", 230643}};
  for (auto [name, stage2] : mmif) {
    nn::TimNet net(ArchSpec::named(name));
    EXPECT_EQ(params_under(*net, "stage1."), 994917) << name;
    EXPECT_EQ(params_under(*net, "stage2."), stage2) << name;
  }
}

TEST(Networks, AnySizeKeepsShape) {
  c10::InferenceMode guard;
  auto spec = ArchSpec::named("ivif-light");
  spec.channels = 8;
  nn::TimNet light(spec);
  light->eval();
  auto x = torch::rand({1, 1, 13, 21});
  EXPECT_EQ(light->forward(x, x).sizes(), x.sizes());
  auto full_spec = ArchSpec::named("ivif-full");
  full_spec.channels = 8;
  nn::TimNet full(full_spec);
  full->eval();
  auto y = torch::rand({1, 1, 17, 23});  // not a multiple of 4: padded and cropped
  EXPECT_EQ(full->forward(y, y).sizes(), y.sizes());
}

TEST(Networks, SpaceToDepthNetworksKeepShapeAndRoundTripTheirSpec) {
  c10::InferenceMode guard;
  auto spec = ArchSpec::from_json(
      R"({"name":"rt","channels":8,"downscale":2,"cells":["Chain2"],"normal":["DilConv_3_1","Identity"]})");
  EXPECT_EQ(spec.pad_multiple(), 2);
  EXPECT_EQ(ArchSpec::from_json(spec.to_json()).downscale, 2);
  nn::TimNet net(spec);
  net->eval();
  auto x = torch::rand({1, 1, 15, 22});  // odd height: padded to 16, cropped back
  EXPECT_EQ(net->forward(x, x).sizes(), x.sizes());
  auto st = nn::to_safetensors(*net);
  EXPECT_EQ(st.find("stem.0.conv2d.weight")->shape, (std::vector<int64_t>{16, 8, 3, 3}));  // 2 inputs x 2x2 blocks
  EXPECT_EQ(st.find("stem_out.3.conv2d.weight")->shape, (std::vector<int64_t>{4, 4, 1, 1}));
  EXPECT_THROW(ArchSpec::from_json(R"({"channels":8,"downscale":3,"cells":["Chain2"],"normal":["Identity"]})"), Error);
}

// Blend head: F = sigmoid(z) * vis + (1 - sigmoid(z)) * ir + r, z and r per
// full-resolution pixel. With a zero last conv, z = logit(0.25), r = 0.1 the
// output is known exactly whatever the rest of the network does.
TEST(Networks, BlendHeadMixesTheInputsAtFullResolution) {
  c10::InferenceMode guard;
  auto spec = ArchSpec::from_json(
      R"({"name":"rt","channels":8,"downscale":2,"head":"blend","cells":["Chain2"],"normal":["ECAattention_3","Identity"]})");
  EXPECT_EQ(spec.head, Head::Blend);
  EXPECT_EQ(ArchSpec::from_json(spec.to_json()).head, Head::Blend);
  nn::TimNet net(spec);
  net->eval();
  auto st = nn::to_safetensors(*net);
  ASSERT_EQ(st.find("stem_out.3.conv2d.weight")->shape, (std::vector<int64_t>{8, 4, 1, 1}));  // (z, r) x 2x2 blocks
  for (auto& p : net->named_parameters()) {
    if (p.key() == "stem_out.3.conv2d.weight") p.value().zero_();
    if (p.key() == "stem_out.3.conv2d.bias") {
      p.value().narrow(0, 0, 4).fill_(std::log(0.25 / 0.75));
      p.value().narrow(0, 4, 4).fill_(0.1);
    }
  }
  auto ir = torch::rand({1, 1, 10, 14}), vis = torch::rand({1, 1, 10, 14});
  EXPECT_TRUE(torch::allclose(net->forward(ir, vis), 0.25 * vis + 0.75 * ir + 0.1, 1e-5, 1e-6));
  EXPECT_THROW(ArchSpec::from_json(R"({"channels":8,"head":"sharp","cells":["Chain2"],"normal":["Identity"]})"), Error);
  auto two = ArchSpec::named("ivif-full");
  two.head = Head::Blend;
  EXPECT_THROW(two.validate(), Error);
}

// Detail head: F = s(z) B(vis) + (1 - s(z)) B(ir) + r + 2 s(g1) D(vis) + 2 s(g2) D(ir),
// B = 5x5 box mean (reflected borders), D = x - B. With a zero last conv the
// output is known exactly; B is computed here by OpenCV, independently of core.
TEST(Networks, DetailHeadBlendsBaseLayersAndAddsEachDetailWithItsGain) {
  c10::InferenceMode guard;
  auto spec = ArchSpec::from_json(
      R"({"name":"rt","channels":8,"downscale":2,"head":"detail","cells":["Chain2"],"normal":["Identity","Identity"]})");
  EXPECT_EQ(spec.head, Head::Detail);
  EXPECT_EQ(ArchSpec::from_json(spec.to_json()).head, Head::Detail);
  nn::TimNet net(spec);
  net->eval();
  auto st = nn::to_safetensors(*net);
  ASSERT_EQ(st.find("stem_out.3.conv2d.weight")->shape, (std::vector<int64_t>{16, 4, 1, 1}));  // (z, r, g1, g2) x 2x2
  auto logit = [](double p) { return std::log(p / (1 - p)); };
  for (auto& p : net->named_parameters()) {
    if (p.key() == "stem_out.3.conv2d.weight") p.value().zero_();
    if (p.key() == "stem_out.3.conv2d.bias") {
      p.value().narrow(0, 0, 4).fill_(logit(0.25));
      p.value().narrow(0, 4, 4).fill_(0.1);
      p.value().narrow(0, 8, 4).fill_(logit(0.75));   // gain 1.5 on the visible detail
      p.value().narrow(0, 12, 4).fill_(logit(0.25));  // gain 0.5 on the IR detail
    }
  }
  const int H = 12, W = 18;
  auto ir = torch::rand({1, 1, H, W}), vis = torch::rand({1, 1, H, W});
  auto box = [&](const torch::Tensor& t) {
    cv::Mat m(H, W, CV_32F, t.contiguous().data_ptr<float>()), b;
    cv::blur(m, b, cv::Size(5, 5), cv::Point(-1, -1), cv::BORDER_REFLECT_101);
    return torch::from_blob(b.data, {1, 1, H, W}, torch::kFloat32).clone();
  };
  auto bv = box(vis), bi = box(ir);
  auto expected = 0.25 * bv + 0.75 * bi + 0.1 + 1.5 * (vis - bv) + 0.5 * (ir - bi);
  EXPECT_TRUE(torch::allclose(net->forward(ir, vis), expected, 1e-4, 1e-5));
  // Small inputs: the 5x5 window is reflected inside a 4x4 image.
  auto tiny = torch::rand({1, 1, 4, 4});
  EXPECT_EQ(net->forward(tiny, tiny).sizes(), tiny.sizes());
}

// detail_coring t: each detail layer is soft-thresholded before its gain,
// D <- D - clamp(D, -t, t): detail under t grey levels (sensor noise) is gone,
// larger detail loses t. Bounded and refused on other heads.
TEST(Networks, DetailCoringSoftThresholdsEachDetailLayer) {
  c10::InferenceMode guard;
  auto spec = ArchSpec::from_json(
      R"({"name":"rt","channels":8,"downscale":2,"head":"detail","detail_coring":4,"cells":["Chain2"],"normal":["Identity"]})");
  EXPECT_EQ(spec.detail_coring, 4);
  EXPECT_EQ(ArchSpec::from_json(spec.to_json()).detail_coring, 4);
  EXPECT_THROW(ArchSpec::from_json(
                   R"({"channels":8,"downscale":2,"head":"detail","detail_coring":33,"cells":["Chain2"],"normal":["Identity"]})"),
               Error);
  EXPECT_THROW(ArchSpec::from_json(
                   R"({"channels":8,"downscale":2,"head":"blend","detail_coring":2,"cells":["Chain2"],"normal":["Identity"]})"),
               Error);
  nn::TimNet net(spec);
  net->eval();
  for (auto& p : net->named_parameters()) {
    if (p.key() == "stem_out.3.conv2d.weight") p.value().zero_();
    if (p.key() == "stem_out.3.conv2d.bias") p.value().zero_();  // base weight 1/2, gains 1, no residual
  }
  const int H = 12, W = 16;
  const double t = 4 / 255.0;
  auto ir = torch::full({1, 1, H, W}, 0.5), vis = torch::full({1, 1, H, W}, 0.5);
  vis[0][0][6][8] = 0.5 + 2 / 255.0;   // visible speck under the threshold: removed
  ir[0][0][3][3] = 0.5 + 40 / 255.0;   // IR edge well over it: kept, less t
  auto out = net->forward(ir, vis);
  auto plain_spec = spec;
  plain_spec.detail_coring = 0;
  nn::TimNet plain(plain_spec);
  plain->eval();
  torch::NoGradGuard ng;
  for (auto& p : plain->named_parameters()) p.value().copy_(net->named_parameters()[p.key()]);
  auto ref = plain->forward(ir, vis);
  // At the speck: the plain head passes its detail (24/25 of 2 levels), the cored one none.
  const double speck_detail = (2 / 255.0) * 24 / 25;
  EXPECT_NEAR((ref - out)[0][0][6][8].item<double>(), speck_detail, 1e-5);
  // At the IR edge: the cored head is exactly t lower.
  EXPECT_NEAR((ref - out)[0][0][3][3].item<double>(), t, 1e-5);
}

// noise_coring k: each input's coring threshold is max(detail_coring, k * its
// own noise estimate), per image. A noisy visible frame loses its noise-sized
// detail, a clean one keeps it; the IR's threshold follows the IR's noise.
TEST(Networks, NoiseCoringFollowsEachInputsNoise) {
  c10::InferenceMode guard;
  const char* json =
      R"({"name":"rt","channels":8,"downscale":2,"head":"detail","detail_coring":1,"noise_coring":3,"cells":["Chain2"],"normal":["Identity"]})";
  auto spec = ArchSpec::from_json(json);
  EXPECT_DOUBLE_EQ(spec.noise_coring, 3.0);
  EXPECT_DOUBLE_EQ(ArchSpec::from_json(spec.to_json()).noise_coring, 3.0);
  for (const char* bad :
       {R"({"channels":8,"downscale":2,"head":"detail","noise_coring":8.5,"cells":["Chain2"],"normal":["Identity"]})",
        R"({"channels":8,"downscale":2,"head":"detail","noise_coring":-1,"cells":["Chain2"],"normal":["Identity"]})",
        R"({"channels":8,"downscale":2,"head":"detail","noise_coring":"3","cells":["Chain2"],"normal":["Identity"]})",
        R"({"channels":8,"downscale":2,"head":"blend","noise_coring":2,"cells":["Chain2"],"normal":["Identity"]})"})
    EXPECT_THROW(ArchSpec::from_json(bad), Error) << bad;
  // The threshold per image: a smooth ramp has no noise (the fixed floor
  // remains), sigma 6 grey levels of noise gives ~3 * 6.
  torch::manual_seed(3);
  const int H = 96, W = 128;
  auto ramp = torch::linspace(0.2, 0.8, W).reshape({1, 1, 1, W}).expand({1, 1, H, W}).contiguous();
  auto noisy = ramp + torch::randn({1, 1, H, W}) * (6 / 255.0);
  auto t = nn::coring_threshold(torch::cat({ramp, noisy}), 1 / 255.0, 3.0) * 255;
  EXPECT_NEAR(t[0].item<double>(), 1.0, 1e-4);
  EXPECT_NEAR(t[1].item<double>(), 18.0, 2.0);
  // In the network: zero last conv = base weight 1/2, gains 1, no residual.
  // The visible frame's noise is cored away, the clean IR's detail is not.
  nn::TimNet net(spec);
  net->eval();
  for (auto& p : net->named_parameters())
    if (p.key().rfind("stem_out.3.", 0) == 0) p.value().zero_();
  auto ir = ramp.clone();
  ir[0][0][40][60] = ir[0][0][40][60].item<float>() + 10 / 255.0;  // an IR speck of 10 grey levels
  auto out = net->forward(ir, noisy);
  auto base_only = (nn::base_layer(ir) + nn::base_layer(noisy)) / 2;
  // Away from the speck the output is nearly the blend of the bases: the
  // visible detail (std ~6 levels) is cored to a small remainder.
  auto rest = (out - base_only).abs() * 255;
  EXPECT_LT(rest.narrow(2, 2, 30).mean().item<double>(), 0.3);
  // The speck (detail 9.6 levels) keeps 9.6 - 1 over the IR's own floor.
  EXPECT_NEAR(((out - base_only) * 255)[0][0][40][60].item<double>(), 9.6 - 1.0, 0.5);
}

// The one-pass CPU kernel (forward_u8) gives the 8-bit image of forward():
// round(clamp(F, 0, 1) * 255). Its box sums add in another order, so a value
// within float rounding of .5 may round the other way: at most 1 grey level,
// on a tiny fraction of pixels. With and without coring, both input orders.
TEST(Networks, DetailHeadKernelMatchesTheAutogradHead) {
  c10::InferenceMode guard;
  for (const char* json :
       {R"({"channels":8,"downscale":4,"head":"detail","cells":["Chain2"],"normal":["ECAattention_3"]})",
        R"({"channels":8,"downscale":2,"head":"detail","detail_coring":3,"inputs":["ir","vis"],"cells":["Chain2"],"normal":["Identity"]})",
        R"({"channels":8,"downscale":4,"head":"detail","image_means":true,"cells":["Chain2"],"normal":["ECAattention_3"]})",
        R"({"channels":8,"downscale":4,"head":"detail","detail_coring":2,"noise_coring":3,"image_means":true,"cells":["Chain2"],"normal":["ECAattention_3"]})"}) {
    auto spec = ArchSpec::from_json(json);
    torch::manual_seed(5);
    nn::TimNet net(spec);
    for (auto& p : net->named_parameters()) p.value().normal_(0, 0.3);  // gains and weights far from their init
    net->eval();
    net->to_channels_last();
    net->fold_bn();
    const int H = 40, W = 56;
    auto ir = torch::rand({1, 1, H, W}), vis = torch::rand({1, 1, H, W});
    auto ref = (net->forward(ir, vis).clamp(0, 1) * 255).round().to(torch::kUInt8);
    std::vector<uint8_t> out(H * W);
    std::vector<float> scratch;
    ASSERT_TRUE(net->forward_u8(ir, vis, out.data(), scratch));
    auto got = torch::from_blob(out.data(), {1, 1, H, W}, torch::kUInt8).to(torch::kInt32);
    auto diff = (got - ref.to(torch::kInt32)).abs();
    EXPECT_LE(diff.max().item<int>(), 1) << json;
    EXPECT_LE(diff.gt(0).sum().item<int64_t>(), H * W / 200) << json;
    EXPECT_GT(ref.to(torch::kFloat32).std().item<double>(), 5.0);  // not a flat (clamped) image
    // A size that needs padding: the kernel declines and forward() is used.
    auto odd = torch::rand({1, 1, 31, 50});
    EXPECT_FALSE(net->forward_u8(odd, odd, out.data(), scratch));
  }
  // Other heads decline too.
  nn::TimNet blend(ArchSpec::from_json(R"({"channels":8,"downscale":2,"head":"blend","cells":["Chain2"],"normal":["Identity"]})"));
  std::vector<uint8_t> out(16 * 16);
  std::vector<float> scratch;
  auto x = torch::rand({1, 1, 16, 16});
  EXPECT_FALSE(blend->forward_u8(x, x, out.data(), scratch));
}

// image_means: the stem also sees each input's whole-image mean (two constant
// planes). Without explicit means a network uses its inputs' own (inference on
// whole frames); training passes the means of the images its crops came from,
// and they change the output. Sizes that need padding use the unpadded means.
TEST(Networks, ImageMeansAreAnInputOfTheStem) {
  c10::InferenceMode guard;
  const char* json = R"({"channels":8,"downscale":4,"head":"detail","image_means":true,"cells":["Chain2"],"normal":["Identity"]})";
  auto spec = ArchSpec::from_json(json);
  EXPECT_TRUE(spec.image_means);
  EXPECT_TRUE(ArchSpec::from_json(spec.to_json()).image_means);
  EXPECT_FALSE(ArchSpec::from_json(R"({"channels":8,"cells":["Chain2"],"normal":["Identity"]})").image_means);
  EXPECT_THROW(ArchSpec::from_json(R"({"channels":8,"image_means":1,"cells":["Chain2"],"normal":["Identity"]})"), Error);
  auto two_stage = ArchSpec::named("ivif-full");
  two_stage.image_means = true;
  EXPECT_THROW(two_stage.validate(), Error);

  torch::manual_seed(11);
  nn::TimNet net(spec);
  for (auto& p : net->named_parameters()) p.value().normal_(0, 0.3);
  EXPECT_EQ(net->named_parameters()["stem.0.conv2d.weight"].size(1), 2 * 16 + 2);
  net->eval();
  auto ir = torch::rand({2, 1, 24, 32}), vis = torch::rand({2, 1, 24, 32}) * 0.5;
  auto own = net->forward(ir, vis);
  auto given = net->forward(ir, vis, ir.mean({2, 3}, true), vis.mean({2, 3}, true));
  EXPECT_LT((own - given).abs().max().item<double>(), 1e-6);
  auto other = net->forward(ir, vis, torch::full({2, 1, 1, 1}, 0.9), vis.mean({2, 3}, true));
  EXPECT_GT((own - other).abs().max().item<double>(), 1e-3);
  // 22 x 30 is padded to 24 x 32 inside: the means are still the 22 x 30 images'.
  auto small_ir = ir.narrow(2, 0, 22).narrow(3, 0, 30).contiguous(), small_vis = vis.narrow(2, 0, 22).narrow(3, 0, 30).contiguous();
  auto padded = net->forward(small_ir, small_vis);
  auto explicit_means = net->forward(small_ir, small_vis, small_ir.mean({2, 3}, true), small_vis.mean({2, 3}, true));
  EXPECT_LT((padded - explicit_means).abs().max().item<double>(), 1e-6);
}

// At inference on CPU the stem input (space-to-depth of both inputs plus the
// mean planes) is written channels-last in one pass (stem_input_cpu); training
// keeps pixel_unshuffle + cat. Same values in the same channel order: the grid
// output is the same both ways up to float rounding, for each downscale,
// with and without means, batch 2, NCHW weights (which keep the ops) and
// channels-last ones (the Fuser's, which take the one-pass input).
TEST(Networks, InferenceStemInputMatchesTheTrainingOps) {
  for (const char* json :
       {R"({"channels":8,"downscale":4,"head":"detail","image_means":true,"cells":["Chain2"],"normal":["ECAattention_3"]})",
        R"({"channels":8,"downscale":2,"head":"detail","inputs":["ir","vis"],"cells":["Chain2"],"normal":["Identity"]})"}) {
    for (bool channels_last : {false, true}) {
      torch::manual_seed(12);
      nn::FusionNet net(ArchSpec::from_json(json));
      {
        torch::NoGradGuard no_grad;
        for (auto& p : net->named_parameters()) p.value().normal_(0, 0.3);
      }
      net->eval();
      if (channels_last) nn::to_channels_last(*net);
      auto a = torch::rand({2, 1, 24, 32}), b = torch::rand({2, 1, 24, 32}) * 0.5;
      auto ma = a.mean({2, 3}, true), mb = b.mean({2, 3}, true);
      torch::Tensor with_ops, one_pass;
      {
        torch::AutoGradMode grad(true);  // the training path
        with_ops = net->grid_output(a, b, ma, mb).detach();
      }
      {
        c10::InferenceMode guard;
        one_pass = net->grid_output(a, b, ma, mb);
      }
      ASSERT_EQ(with_ops.sizes(), one_pass.sizes()) << json;
      // Float rounding only: inference also sends 1x1 convolutions to oneDNN
      // (ops.cpp conv2d_fast); a channel out of place would differ by O(1).
      const double scale = with_ops.abs().max().item<double>();
      EXPECT_LT((with_ops - one_pass).abs().max().item<double>(), 1e-5 * std::max(1.0, scale))
          << json << " channels_last " << channels_last;
      EXPECT_GT(one_pass.std().item<double>(), 1e-3);  // not a constant output
    }
  }
}

TEST(Networks, FoldingBatchNormKeepsOutput) {
  c10::InferenceMode guard;
  auto spec = ArchSpec::named("ivif-full");
  spec.channels = 8;
  spec.stage2_batch_stats = false;
  nn::TimNet net(spec);
  torch::manual_seed(3);
  {
    torch::NoGradGuard ng;
    for (auto& kv : net->named_buffers())
      if (kv.key().find("running_var") != std::string::npos) kv.value().uniform_(0.5, 2.0);
      else if (kv.key().find("running_mean") != std::string::npos) kv.value().uniform_(-0.3, 0.3);
  }
  net->eval();
  auto a = torch::rand({1, 1, 16, 20}), b = torch::rand({1, 1, 16, 20});
  auto before = net->forward(a, b);
  net->fold_bn();
  auto after = net->forward(a, b);
  EXPECT_LT((before - after).abs().max().item<float>(), 1e-4);
}
