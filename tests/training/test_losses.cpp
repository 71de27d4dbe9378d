// Fusion losses, the task net and the checkpointed Adam (LibTorch).
#include <gtest/gtest.h>

#include "data/sensor_noise.h"
#include "losses/fusion_losses.h"
#include "run/checkpoint.h"
#include "task/seg_net.h"
#include "timfusion/error.h"
#include "timfusion/model_file.h"
#include "timfusion/torch/state_dict.h"
#include "train/init_weights.h"

using namespace timfusion;
using namespace timfusion::train;

TEST(Losses, ZeroAtTheirTargets) {
  torch::manual_seed(0);
  auto ir = torch::rand({2, 1, 24, 20}), vis = torch::rand({2, 1, 24, 20});
  FusionLossWeights w;
  auto target = torch::max(ir, vis);
  auto l = fusion_losses(target, ir, vis, w);
  EXPECT_NEAR(l.intensity.item<double>(), 0.0, 1e-7);
  // SSIM of an image with itself is 1; a constant image has no gradient.
  EXPECT_NEAR(ssim(ir, ir).item<double>(), 1.0, 1e-5);
  EXPECT_NEAR(sobel_magnitude(torch::full({1, 1, 9, 9}, 0.3)).abs().max().item<double>(), 0.0, 1e-6);
  // When both sources are the same image, it is the minimiser of every term.
  auto same = fusion_losses(ir, ir, ir, w);
  EXPECT_NEAR(same.total.item<double>(), 0.0, 1e-5);
}

TEST(Losses, FormulasOnSmallExamples) {
  // A vertical step edge of height 1: Sobel x gives 1+2+1 = 4 at the edge.
  auto x = torch::zeros({1, 1, 5, 6});
  x.narrow(3, 3, 3).fill_(1);
  auto g = sobel_magnitude(x);
  EXPECT_NEAR(g[0][0][2][2].item<double>(), 4.0, 1e-6);
  EXPECT_NEAR(g[0][0][2][0].item<double>(), 0.0, 1e-6);
  // L_int = mean |F - max(I,V)|.
  auto ir = torch::full({1, 1, 16, 16}, 0.2), vis = torch::full({1, 1, 16, 16}, 0.6), f = torch::full({1, 1, 16, 16}, 0.5);
  FusionLossWeights w{1.0, 0.0, 0.0, 11};
  EXPECT_NEAR(fusion_losses(f, ir, vis, w).total.item<double>(), 0.1, 1e-6);
  // SSIM of constants: luminance term only, (2ab + C1) / (a² + b² + C1).
  const double C1 = 1e-4;
  EXPECT_NEAR(ssim(f, vis).item<double>(), (2 * 0.5 * 0.6 + C1) / (0.25 + 0.36 + C1), 1e-3);  // float32 variance ~0 vs C2
}

TEST(Losses, GradientsFlowToTheFusedImage) {
  torch::manual_seed(1);
  auto ir = torch::rand({1, 1, 20, 20}), vis = torch::rand({1, 1, 20, 20});
  auto f = torch::rand({1, 1, 20, 20}).requires_grad_(true);
  fusion_losses(f, ir, vis, FusionLossWeights{}).total.backward();
  EXPECT_GT(f.grad().abs().sum().item<double>(), 0);
}

TEST(TaskNet, OddSizesAndConfusion) {
  torch::manual_seed(2);
  SegNet net(1, 4, 9);
  auto logits = net->forward(torch::rand({2, 1, 37, 29}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 9, 37, 29}));
  // Perfect prediction: mIoU 1 over the classes present.
  auto labels = torch::zeros({1, 4, 4}, torch::kInt64);
  labels[0][0][0] = 3;
  auto perfect = torch::nn::functional::one_hot(labels, 9).permute({0, 3, 1, 2}).to(torch::kFloat32);
  Confusion c(9);
  c.add(perfect, labels);
  EXPECT_DOUBLE_EQ(c.miou(), 1.0);
  EXPECT_DOUBLE_EQ(c.pixel_accuracy(), 1.0);
  // All predicted background: class 0 IoU 15/16, class 3 IoU 0.
  Confusion d(9);
  d.add(torch::nn::functional::one_hot(torch::zeros_like(labels), 9).permute({0, 3, 1, 2}).to(torch::kFloat32), labels);
  EXPECT_DOUBLE_EQ(d.miou(), (15.0 / 16.0 + 0.0) / 2);
}

TEST(TaskNet, BalancedClassWeights) {
  // Frequencies 0.81 / 0.09 / 0 / 0.01 (x 100 pixels): 1/sqrt -> 1.11, 3.33, -, 10; mean 1 over present.
  auto w = balanced_class_weights({81, 9, 0, 1});
  const double s = 1 / 0.9 + 1 / 0.3 + 1 / 0.1;
  EXPECT_NEAR(w[0].item<double>(), 3 * (1 / 0.9) / s, 1e-5);
  EXPECT_NEAR(w[1].item<double>(), 3 * (1 / 0.3) / s, 1e-5);
  EXPECT_NEAR(w[2].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(w[3].item<double>(), 3 * (1 / 0.1) / s, 1e-5);
  // The weighted loss is PyTorch's weighted mean.
  auto logits = torch::zeros({1, 4, 1, 2});
  auto labels = torch::tensor({0, 3}, torch::kInt64).view({1, 1, 2});
  EXPECT_NEAR(task_loss(logits, labels, w).item<double>(), std::log(4.0), 1e-5);
}

TEST(Adam, MatchesTorchOptimAndRoundTrips) {
  torch::manual_seed(3);
  torch::nn::Linear a(4, 3), b(4, 3);
  {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < a->parameters().size(); ++i) b->parameters()[i].copy_(a->parameters()[i]);
  }
  Adam mine(*a);
  torch::optim::Adam ref(b->parameters(), torch::optim::AdamOptions(0.01));
  auto x = torch::rand({5, 4});
  for (int i = 0; i < 5; ++i) {
    mine.zero_grad();
    a->forward(x).pow(2).sum().backward();
    mine.step(0.01);
    ref.zero_grad();
    b->forward(x).pow(2).sum().backward();
    ref.step();
  }
  for (size_t i = 0; i < a->parameters().size(); ++i)
    EXPECT_TRUE(torch::allclose(a->parameters()[i], b->parameters()[i], 1e-6, 1e-7));
  // Save and load the moments into a fresh optimiser: identical next step.
  SafetensorsFile f;
  mine.save(f, "adam/");
  torch::nn::Linear c(4, 3);
  {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < a->parameters().size(); ++i) c->parameters()[i].copy_(a->parameters()[i]);
  }
  Adam restored(*c);
  restored.load(f, "adam/");
  EXPECT_EQ(restored.t(), 5);
  for (auto* pair : {&mine, &restored}) {
    auto& net = pair == &mine ? a : c;
    pair->zero_grad();
    net->forward(x).pow(2).sum().backward();
    pair->step(0.01);
  }
  for (size_t i = 0; i < a->parameters().size(); ++i) EXPECT_TRUE(torch::equal(a->parameters()[i], c->parameters()[i]));
}

// Sensor-noise augmentation: off at 0, a pure function of (seed, step,
// stream), independent streams, in [0, 1], and of the asked-for strength.
TEST(SensorNoise, DeterministicBoundedAndOfTheRequestedStrength) {
  auto x = torch::full({8, 1, 32, 32}, 0.5);
  EXPECT_TRUE(torch::equal(add_sensor_noise(x, 0, 1, 5, 0), x));
  auto a = add_sensor_noise(x, 6, 1, 5, 0), b = add_sensor_noise(x, 6, 1, 5, 0);
  EXPECT_TRUE(torch::equal(a, b));                                     // resumable
  EXPECT_FALSE(torch::equal(a, add_sensor_noise(x, 6, 1, 5, 1)));      // IR and visible differ
  EXPECT_FALSE(torch::equal(a, add_sensor_noise(x, 6, 1, 6, 0)));      // every step differs
  EXPECT_GE(a.min().item<float>(), 0.0f);
  EXPECT_LE(a.max().item<float>(), 1.0f);
  // sigma ~ U(0, 6) grey levels: the overall std is 6/sqrt(3) = 3.46 grey levels.
  const double std_grey = (a - x).std().item<double>() * 255.0;
  EXPECT_GT(std_grey, 2.0);
  EXPECT_LT(std_grey, 5.0);
}

// loss.gradient_gain scales the texture target: for a flat fused image the
// gradient loss is exactly k times the one at k = 1.
TEST(Losses, GradientGainScalesTheTextureTarget) {
  torch::manual_seed(2);
  auto ir = torch::rand({2, 1, 16, 16}), vis = torch::rand({2, 1, 16, 16});
  auto flat = torch::full({2, 1, 16, 16}, 0.5);
  FusionLossWeights w1, w2;
  w2.gradient_gain = 2.0;
  const double g1 = fusion_losses(flat, ir, vis, w1).gradient.item<double>();
  const double g2 = fusion_losses(flat, ir, vis, w2).gradient.item<double>();
  EXPECT_GT(g1, 0.1);
  EXPECT_NEAR(g2, 2 * g1, 1e-5);
}

// L_edge keeps the stronger source edge's polarity: an inverted copy of the IR
// has the same Sobel magnitudes (L_grad is zero) but every edge flipped.
TEST(Losses, EdgePreservationPunishesFlippedEdgesThatTheMagnitudeLossAccepts) {
  torch::manual_seed(3);
  auto ir = torch::rand({2, 1, 16, 16}), vis = torch::full({2, 1, 16, 16}, 0.5);
  FusionLossWeights w;
  w.edge = 1.0;
  auto same = fusion_losses(ir, ir, vis, w), flipped = fusion_losses(1 - ir, ir, vis, w);
  EXPECT_NEAR(same.edge.item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(flipped.gradient.item<double>(), 0.0, 1e-5);
  EXPECT_GT(flipped.edge.item<double>(), 0.5);
  EXPECT_NEAR(flipped.total.item<double>() - flipped.intensity.item<double>() * w.intensity -
                  flipped.ssim.item<double>() * w.ssim,
              flipped.edge.item<double>(), 1e-5);  // in the total, with its weight
}

// The salient intensity target keeps what deviates from each image's mean:
// a dark visible region (where max(I, V) would take the IR's mid grey) and a
// bright IR target both survive; with the whole-image means of the Batch the
// crop is judged against its image, not against itself.
TEST(Losses, SalientTargetKeepsDarkVisibleAndBrightInfraredRegions) {
  const int S = 64;
  auto ir = torch::full({1, 1, S, S}, 0.5), vis = torch::full({1, 1, S, S}, 0.5);
  ir.narrow(2, 4, 16).narrow(3, 4, 16).fill_(0.95);    // warm target, top left
  vis.narrow(2, 28, 32).narrow(3, 28, 32).fill_(0.05);  // dark visible region, bottom right
  FusionLossWeights w;
  w.intensity_target = IntensityTarget::Salient;
  ImageMeans means{torch::full({1, 1, 1, 1}, 0.5), torch::full({1, 1, 1, 1}, 0.5)};
  auto t = intensity_target(ir, vis, w, means);
  EXPECT_GT(t[0][0][12][12].item<double>(), 0.9);   // IR target kept
  EXPECT_LT(t[0][0][44][44].item<double>(), 0.1);   // dark visible kept
  EXPECT_NEAR(t[0][0][2][40].item<double>(), 0.5, 1e-4);  // both flat: either
  auto max_target = intensity_target(ir, vis, FusionLossWeights{});
  EXPECT_NEAR(max_target[0][0][44][44].item<double>(), 0.5, 1e-6);  // max() loses the dark region
  // No gradient flows through the target.
  auto f = torch::full({1, 1, S, S}, 0.5).requires_grad_(true);
  auto l = fusion_losses(f, ir, vis, w, means);
  EXPECT_FALSE(intensity_target(ir.requires_grad_(false), vis, w, means).requires_grad());
  l.total.backward();
  EXPECT_GT(f.grad().abs().sum().item<double>(), 0);
  // Reference means matter: in a visible image whose mean is that dark, the
  // dark region is ordinary (no deviation), so it is no longer preferred there.
  ImageMeans dark{torch::full({1, 1, 1, 1}, 0.5), torch::full({1, 1, 1, 1}, 0.05)};
  EXPECT_GT(intensity_target(ir, vis, w, dark)[0][0][44][44].item<double>(), 0.2);
  // image_means() takes the Batch's per-crop means, or nothing when absent.
  Batch b;
  b.n = 2;
  b.ir_mean = {0.25f, 0.5f};
  b.vis_mean = {0.75f, 1.0f};
  auto m = image_means(b);
  ASSERT_TRUE(m.ir.defined());
  EXPECT_EQ(m.ir.sizes(), (std::vector<int64_t>{2, 1, 1, 1}));
  EXPECT_FLOAT_EQ(m.vis[1][0][0][0].item<float>(), 1.0f);
  b.ir_mean.clear();
  EXPECT_FALSE(image_means(b).ir.defined());
}

// --init: a file made without image_means (e.g. the meta-initialisation)
// starts a network with them. The widened stem gets zero weights for the mean
// planes, so the new network computes exactly what the file's did; any other
// difference in shape is still refused.
TEST(Init, WeightsWithoutImageMeansStartANetworkWithThem) {
  c10::InferenceMode guard;
  auto plain_spec = ArchSpec::from_json(
      R"({"name":"rt","channels":8,"downscale":2,"head":"detail","cells":["Chain2"],"normal":["Identity"]})");
  torch::manual_seed(4);
  nn::TimNet plain(plain_spec);
  for (auto& p : plain->named_parameters()) p.value().normal_(0, 0.3);
  plain->eval();
  SafetensorsFile file = nn::to_safetensors(*plain);
  describe_model(file, plain_spec, "{}");
  const std::string path = ::testing::TempDir() + "/init-without-means.safetensors";
  write_safetensors(path, file);

  ArchSpec means_spec = plain_spec;
  means_spec.image_means = true;
  nn::TimNet widened(means_spec);
  load_init(*widened, means_spec, path, "");
  widened->eval();
  auto ir = torch::rand({1, 1, 16, 20}), vis = torch::rand({1, 1, 16, 20});
  EXPECT_LT((widened->forward(ir, vis) - plain->forward(ir, vis)).abs().max().item<double>(), 1e-6);
  EXPECT_EQ(widened->named_parameters()["stem.0.conv2d.weight"].size(1), 2 * 4 + 2);

  ArchSpec wider = means_spec;
  wider.channels = 12;
  nn::TimNet other(wider);
  EXPECT_THROW(load_init(*other, wider, path, ""), Error);
}

TEST(Losses, ContrastFloorPunishesOnlyContrastBelowTheTargets) {
  torch::manual_seed(3);
  auto target = torch::rand({2, 1, 32, 32});
  // The same image, and one with twice the contrast: no penalty (one-sided).
  EXPECT_NEAR(contrast_floor(target, target, 0).item<double>(), 0.0, 1e-7);
  auto stretched = 0.5 + 2 * (target - 0.5);
  EXPECT_NEAR(contrast_floor(stretched, target, 0).item<double>(), 0.0, 1e-7);
  // Half the contrast about the same mean: the penalty is half the target's sd.
  auto flat = target.mean() + 0.5 * (target - target.mean({2, 3}, true));
  const double half_sd = 0.5 * target.std({2, 3}, /*unbiased=*/false).mean().item<double>();
  EXPECT_NEAR(contrast_floor(flat, target, 0).item<double>(), half_sd, 1e-4);
  // Local windows: a constant image against the target loses all of its local contrast.
  auto local = contrast_floor(torch::full_like(target, 0.5), target, 7).item<double>();
  EXPECT_GT(local, 0.2);  // uniform noise in [0, 1] has sd 0.29
  // It enters the total with its weight, and gradients reach the fused image.
  FusionLossWeights w;
  w.intensity = w.gradient = w.ssim = 0;
  w.contrast = 3;
  auto f = flat.clone().requires_grad_(true);
  auto l = fusion_losses(f, target, target, w);
  EXPECT_NEAR(l.total.item<double>(), 3 * l.contrast.item<double>(), 1e-6);
  l.total.backward();
  EXPECT_GT(f.grad().abs().sum().item<double>(), 0.0);
}

// loss.contrast_target=salient: with the max(I, V) intensity target, L_con
// holds the fused image's contrast at the salient target's, which is higher
// when a dark visible region meets a bright IR target (max() lifts the dark
// region and flattens the contrast).
TEST(Losses, ContrastFloorCanFollowTheSalientTargetUnderAMaxTarget) {
  // IR: a bright square on a mid-grey floor; visible: a dark half and a bright half.
  auto ir = torch::full({1, 1, 32, 32}, 0.4);
  ir.index_put_({0, 0, torch::indexing::Slice(8, 16), torch::indexing::Slice(8, 16)}, 0.95);
  auto vis = torch::full({1, 1, 32, 32}, 0.1);
  vis.index_put_({0, 0, torch::indexing::Slice(), torch::indexing::Slice(16, 32)}, 0.7);
  FusionLossWeights w;
  w.intensity = w.gradient = w.ssim = 0;
  w.contrast = 1;
  w.intensity_target = IntensityTarget::Max;
  const auto max_target = intensity_target(ir, vis, w);
  const auto salient_target = intensity_target(ir, vis, IntensityTarget::Salient, w);
  const double sd_max = max_target.std({2, 3}, false).item<double>();
  const double sd_salient = salient_target.std({2, 3}, false).item<double>();
  ASSERT_GT(sd_salient, sd_max + 0.02) << "the scene is meant to show max() flattening contrast";
  // The max target itself as the fused image: no penalty against itself,
  // the contrast it lacks against the salient target with the option on.
  EXPECT_NEAR(fusion_losses(max_target, ir, vis, w).contrast.item<double>(), 0.0, 1e-6);
  w.contrast_target = IntensityTarget::Salient;
  EXPECT_NEAR(fusion_losses(max_target, ir, vis, w).contrast.item<double>(), sd_salient - sd_max, 1e-4);
}
