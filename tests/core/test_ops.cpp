// TIM operators on tiny tensors whose results are worked out by hand.
#include <gtest/gtest.h>

#include "timfusion/torch/networks.h"
#include "timfusion/torch/ops.h"

using namespace timfusion;
namespace tnn = timfusion::nn;

namespace {

void set(torch::Tensor t, float v) {
  torch::NoGradGuard ng;
  t.fill_(v);
}

torch::Tensor param(torch::nn::Module& m, const std::string& key) {
  for (auto& kv : m.named_parameters())
    if (kv.key() == key) return kv.value();
  for (auto& kv : m.named_buffers())
    if (kv.key() == key) return kv.value();
  ADD_FAILURE() << "no tensor " << key;
  return {};
}

}  // namespace

TEST(Ops, ConvLayerPadsByReflectionWithoutRepeatingTheEdge) {
  // A 3x3 kernel that picks the left neighbour: out(x) = in(x-1). At x=0 the
  // reflected neighbour is in(1) (d c b | a b c d), not in(0).
  tnn::ConvLayer layer(1, 1, 3);
  torch::NoGradGuard ng;
  layer->conv2d->weight.zero_();
  layer->conv2d->weight[0][0][1][0] = 1.0f;
  layer->conv2d->bias.fill_(0.5f);
  // Three identical rows (reflection needs more than one row).
  auto x = torch::tensor({1.f, 2.f, 3.f, 4.f}).view({1, 1, 1, 4}).repeat({1, 1, 3, 1});
  auto y = layer->forward(x)[0][0][1];
  EXPECT_FLOAT_EQ(y[0].item<float>(), 2.f + 0.5f);
  EXPECT_FLOAT_EQ(y[1].item<float>(), 1.f + 0.5f);
  EXPECT_FLOAT_EQ(y[3].item<float>(), 3.f + 0.5f);
}

// Channels-last inputs take a copy-based reflection pad that keeps NHWC: it
// must give exactly ReflectionPad2d's values, corners included, for pads of
// 1 and 2 (5x5 kernels), and keep the layout.
TEST(Ops, ConvLayerOnChannelsLastPadsExactlyAsReflectionPad2d) {
  torch::NoGradGuard ng;
  for (int64_t k : {3, 5}) {
    tnn::ConvLayer layer(3, 4, k);
    layer->conv2d->weight.set_data(layer->conv2d->weight.contiguous(at::MemoryFormat::ChannelsLast));
    const int64_t p = (k - 1) / 2;
    auto x = torch::rand({1, 3, 7, 9}).contiguous(at::MemoryFormat::ChannelsLast);
    auto padded = torch::nn::functional::pad(x, torch::nn::functional::PadFuncOptions({p, p, p, p}).mode(torch::kReflect))
                      .contiguous(at::MemoryFormat::ChannelsLast);
    auto expected = layer->conv2d->forward(padded);
    auto got = layer->forward(x);
    EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast)) << "k=" << k;
    EXPECT_TRUE(torch::equal(got, expected)) << "k=" << k;
  }
}

TEST(Ops, EcaAttentionMixesAlongTheChannelAxis) {
  // ECAattention_3 with identity-ish conv1 isolates the ECA scaling: channel
  // means m = (1, 2, 3); conv1d weights (0, 1, 0) -> gate sigmoid(m_c).
  auto op = tnn::make_op("ECAattention_3", 3);
  torch::NoGradGuard ng;
  auto w1 = param(*op, "conv1.weight");
  w1.zero_();
  for (int c = 0; c < 3; ++c) w1[c][c][1][1] = 1.0f;  // conv1 = identity
  auto k = param(*op, "se.conv.weight");  // [1,1,3]
  k.zero_();
  k[0][0][1] = 1.0f;
  set(param(*op, "relu.weight"), 0.25f);
  auto x = torch::stack({torch::full({2, 2}, 1.f), torch::full({2, 2}, 2.f), torch::full({2, 2}, 3.f)}).unsqueeze(0);
  auto y = op->forward(x);
  for (int c = 0; c < 3; ++c) {
    float m = c + 1.f;
    float expected = m / (1.f + std::exp(-m));
    // Interior pixels only: conv1 is zero padded, but with identity it does not matter.
    EXPECT_NEAR(y[0][c][0][0].item<float>(), expected, 1e-6) << c;
  }
  // Neighbouring channel weights: gate of channel 0 = sigmoid(0*pad + 1*m0 + 1*m1) with k = (0,1,1).
  k[0][0][2] = 1.0f;
  y = op->forward(x);
  EXPECT_NEAR(y[0][0][0][0].item<float>(), 1.f / (1.f + std::exp(-3.f)), 1e-6);
  // Last channel sees the zero padding at the channel end: sigmoid(m2 + 0).
  EXPECT_NEAR(y[0][2][0][0].item<float>(), 3.f / (1.f + std::exp(-3.f)), 1e-6);
}

TEST(Ops, DilConvHasAResidual) {
  // With a zero pointwise conv and BN(beta=0.5), DilConv returns x + 0.5.
  auto op = tnn::make_op("DilConv_3_2", 2);
  op->eval();
  torch::NoGradGuard ng;
  param(*op, "op.2.weight").zero_();
  set(param(*op, "op.3.bias"), 0.5f);
  auto x = torch::rand({1, 2, 5, 6});
  EXPECT_TRUE(torch::allclose(op->forward(x), x + 0.5f));
}

TEST(Ops, ResidualBlockAddsPReLUOfTheBranch) {
  // Branch forced to -1 everywhere: PReLU(-1) = -slope, so out = x - slope.
  auto op = tnn::make_op("Residualblocks_3_1", 2);
  op->eval();
  torch::NoGradGuard ng;
  param(*op, "op.2.weight").zero_();
  set(param(*op, "op.3.bias"), -1.f);
  set(param(*op, "op.4.weight"), 0.2f);
  auto x = torch::rand({1, 2, 4, 4});
  EXPECT_TRUE(torch::allclose(op->forward(x), x - 0.2f));
}

TEST(Ops, DenseBlockGroupsReadConsecutiveChannelPairs) {
  // conv2 has groups=C over cat[x, x1] (2C channels): group g reads channels
  // 2g, 2g+1. With 1x1-like kernels (only the centre tap) we can check it.
  auto op = tnn::make_op("Denseblocks_3_1", 2);
  torch::NoGradGuard ng;
  for (const char* k : {"conv1.conv.weight", "conv2.conv.weight", "conv3.conv.weight"}) param(*op, k).zero_();
  set(param(*op, "lrelu.weight"), 0.f);
  param(*op, "conv1.conv.weight").index_put_({torch::indexing::Slice(), 0, 1, 1}, 1.f);  // x1 = relu(x)
  // conv2 group 0 reads cat channels (0,1) = (x_0, x_1); take x_1 only.
  param(*op, "conv2.conv.weight").index_put_({0, 1, 1, 1}, 1.f);
  // x3 group 0 reads cat channels (0,1,2) = (x_0, x_1, x1_0); take channel 2 = x1_0.
  param(*op, "conv3.conv.weight").index_put_({0, 2, 1, 1}, 1.f);
  auto x = torch::rand({1, 2, 3, 3}) + 0.1f;  // positive: PReLU is identity
  auto y = op->forward(x);
  // x3_0 = x1_0 = x_0, so y_0 = 0.333 x_0 + x_0; channel 1's weights are zero: y_1 = x_1.
  EXPECT_TRUE(torch::allclose(y[0][0], x[0][0] * 1.333f, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(y[0][1], x[0][1]));
}

TEST(Ops, SpatialAttentionUsesMaxAndMeanOverChannels) {
  auto op = tnn::make_op("SPAattention_3", 2);
  torch::NoGradGuard ng;
  auto w = param(*op, "se.spatial.conv.weight");  // [1,2,3,3]
  w.zero_();
  w[0][0][1][1] = 1.f;   // max
  w[0][1][1][1] = -1.f;  // mean
  auto x = torch::stack({torch::full({2, 2}, 4.f), torch::full({2, 2}, 2.f)}).unsqueeze(0);
  auto y = op->forward(x);
  float gate = 1.f / (1.f + std::exp(-(4.f - 3.f)));
  EXPECT_NEAR(y[0][0][1][1].item<float>(), 4.f * gate, 1e-6);
  EXPECT_NEAR(y[0][1][0][0].item<float>(), 2.f * gate, 1e-6);
}

TEST(Ops, BatchNormFoldIsExactAndBatchStatsIgnoreRunningStats) {
  tnn::ReLUConvBN rcb(3, 3, 1);
  rcb->eval();
  torch::NoGradGuard ng;
  auto& bn = rcb->cb.bn;
  bn->running_mean.uniform_(-1, 1);
  bn->running_var.uniform_(0.5, 2);
  bn->weight.uniform_(0.5, 1.5);
  bn->bias.uniform_(-0.5, 0.5);
  auto x = torch::randn({1, 3, 4, 5});
  auto before = rcb->forward(x);
  rcb->fold_bn();
  EXPECT_TRUE(torch::allclose(rcb->forward(x), before, 1e-5, 1e-6));

  tnn::TimBatchNorm b(2);
  b->eval();
  b->batch_stats = true;
  b->running_mean.fill_(100.f);  // would dominate if used
  auto z = torch::randn({1, 2, 6, 6}) * 3 + 1;
  auto n = b->forward(z);
  EXPECT_NEAR(n.mean({2, 3}).abs().max().item<float>(), 0.f, 1e-5);
  EXPECT_FLOAT_EQ(b->running_mean[0].item<float>(), 100.f);
}

TEST(Ops, BlurPoolIsTheBinomialFilterWithStride2) {
  tnn::BlurPool pool(1);
  auto x = torch::zeros({1, 1, 4, 4});
  x[0][0][1][1] = 16.f;  // an impulse at (1,1)
  auto y = pool->forward(x);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  // Output (0,0) is centred on input (0,0); with reflection its window rows
  // and columns are (1, 0, 1), so the impulse sits in all four corners: 4 * 16/16.
  EXPECT_FLOAT_EQ(y[0][0][0][0].item<float>(), 4.f);
  // Output (0,1) centred on (0,2): rows (1,0,1), columns (1,2,3): two corners.
  EXPECT_FLOAT_EQ(y[0][0][0][1].item<float>(), 2.f);
  // Output (1,1) centred on (2,2): the impulse is one corner, weight 1/16.
  EXPECT_FLOAT_EQ(y[0][0][1][1].item<float>(), 1.f);
}

TEST(Ops, IdentityPassesThroughAndHasNoWeights) {
  auto op = tnn::make_op("Identity", 4);
  auto x = torch::rand({1, 4, 3, 3});
  EXPECT_TRUE(torch::equal(op->forward(x), x));
  EXPECT_EQ(op->parameters().size(), 0u);
}
