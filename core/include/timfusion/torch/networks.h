// timfusion: whole TIM networks built from an ArchSpec.
// Training-facing API (includes LibTorch): see README.md in this folder.
#pragma once
#include "timfusion/torch/cells.h"
#include "timfusion/arch.h"

namespace timfusion::nn {

// The reference's stem (ConvLayer(in, 2C) PReLU ConvLayer(2C, C) [BN] PReLU) and
// stem_out (ConvLayer(c_in, C) [PReLU] ConvLayer(C, C/2) ConvLayer(C/2, out, 1)).
// Shared with the search supernet, whose keys must match the final network's.
torch::nn::Sequential make_stem(int64_t C, bool with_bn, int64_t in = 2);
torch::nn::Sequential make_stem_out(int64_t c_in, int64_t C, bool prelu, int64_t out = 1);

// Stores every 4-d parameter and buffer of m NHWC (oneDNN's fast path on CPU).
void to_channels_last(torch::nn::Module& m);

// What the detail head does besides its raw output (arch.h: detail_coring,
// noise_coring, detail_select, residual, salient_prior).
struct DetailHeadOptions {
  double coring = 0;          // soft threshold of each detail layer, [0,1] units
  double noise_coring = 0;    // x each input's noise estimate; 0 = off
  bool select = false;        // max-abs detail instead of the sum
  bool residual = true;       // add the residual r
  double prior_softness = 0;  // salient prior's softness, [0,1] units; 0 = off

  static DetailHeadOptions of(const ArchSpec& spec);
};

// Network_Fusion9_Meta: stem -> cells -> stem_out, no final activation.
class FusionNetImpl : public torch::nn::Module {
 public:
  FusionNetImpl(const ArchSpec& spec);
  // mean_a, mean_b: [B,1,1,1] whole-image means of a and b, needed (and used)
  // only when the architecture has image_means; TimNet supplies them.
  torch::Tensor forward(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mean_a = {},
                        const torch::Tensor& mean_b = {});
  // The last conv's output on the space-to-depth grid, before the pixel
  // shuffle and the head: forward() = apply_head(pixel_shuffle(grid_output)).
  torch::Tensor grid_output(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mean_a = {},
                            const torch::Tensor& mean_b = {});
  void fold_bn();

  torch::nn::Sequential stem{nullptr}, stem_out{nullptr};
  torch::nn::ModuleList cells{nullptr};
  int64_t downscale = 1;
  Head head = Head::Image;
  DetailHeadOptions detail;  // the detail head's fields of the ArchSpec (arch.h)
  bool image_means = false;  // the stem's last two input channels are the means
};
TORCH_MODULE(FusionNet);

// Channels the last conv of a single-stage network produces per grid position.
int64_t head_channels(Head head, int64_t downscale);
// Turns the (pixel-shuffled, full-resolution) raw output into the fused image:
// identity for Head::Image; sigmoid-weighted blend of a and b plus residual for
// Blend; base/detail blend with per-pixel detail gains for Detail (arch.h).
// The Detail head's base layer of a [B,1,H,W] image: 5x5 box mean, same size.
torch::Tensor base_layer(const torch::Tensor& x);
// `detail` (Detail only): coring (each input's threshold is max(coring,
// noise_coring * its noise_sigma()) where noise_coring > 0), selection,
// residual and prior as arch.h says. mean_a, mean_b ([B,1,1,1]): the whole
// images' means, needed by the salient prior only.
torch::Tensor apply_head(Head head, const torch::Tensor& raw, const torch::Tensor& a, const torch::Tensor& b,
                         const DetailHeadOptions& detail = {}, const torch::Tensor& mean_a = {},
                         const torch::Tensor& mean_b = {});
// The salient prior's weight of a ([B,1,H,W], in [1e-3, 1 - 1e-3]):
// box(sigmoid((|box(a) - mean_a| - |box(b) - mean_b|) / softness)), 15x15
// reflect-padded box means (replicate on frames under 8 pixels), softness in
// [0,1] units. No gradient flows through it.
constexpr int64_t kPriorWindow = 15;  // the salient target's window (loss.salient_window's default)
constexpr double kPriorMargin = 1e-3;  // keeps logit(p) finite; z can still move the weight anywhere
torch::Tensor salient_prior(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mean_a,
                            const torch::Tensor& mean_b, double softness);
// detail_select's share of the first input's detail, per pixel:
// clamp((|d_a| - |d_b|) / kSelectionRamp + 1/2, 0, 1). A ramp of one grey
// level instead of a hard switch, so that two nearly equal details of
// opposite sign, whose order float rounding may swap between implementations
// (this, the CPU kernel, ONNX), give nearly the same output.
constexpr double kSelectionRamp = 1.0 / 255.0;
torch::Tensor selection_of_first(const torch::Tensor& detail_a, const torch::Tensor& detail_b);
// The prior-corrected base weight sigmoid(z + logit(p)), written as
// s p / (s p + (1 - s)(1 - p)) with s = sigmoid(z): no logit to evaluate, and
// the CPU kernel computes the same expression.
torch::Tensor weight_with_prior(const torch::Tensor& sigmoid_z, const torch::Tensor& prior);
// The detail head's coring threshold of each image of x ([B,1,H,W]):
// [B,1,1,1], max(coring, noise_coring * noise_sigma(x)).
torch::Tensor coring_threshold(const torch::Tensor& x, double coring, double noise_coring);

// A complete model as users see it: f(ir, vis) with both [B,1,H,W] in
// [0,1], output [B,1,H,W] (not clamped). Applies the reference's argument
// order, pads to the architecture's multiple and crops back. Parameter
// names: the reference's keys; two-stage models prefix "stage1."/"stage2.".
class TimNetImpl : public torch::nn::Module {
 public:
  explicit TimNetImpl(const ArchSpec& spec);
  // ir_mean, vis_mean: [B,1,1,1] means of the whole images that ir and vis
  // were cropped from (training on crops); undefined = the means of ir and
  // vis as given. Used only by architectures with image_means.
  torch::Tensor forward(const torch::Tensor& ir, const torch::Tensor& vis, const torch::Tensor& ir_mean = {},
                        const torch::Tensor& vis_mean = {});
  // Inference on CPU straight to 8-bit luma, round(clamp(forward, 0, 1) * 255),
  // through the detail head's one-pass kernel (detail_head_cpu.h). Returns
  // false, doing nothing, where that kernel does not apply (another head, two
  // stages, float32 inputs not on CPU, batch > 1, a size that needs padding): the caller
  // then uses forward(). ir, vis: [1,1,H,W] contiguous; out: H*W bytes.
  bool forward_u8(const torch::Tensor& ir, const torch::Tensor& vis, uint8_t* out, std::vector<float>& scratch);
  // What Fuser runs per frame on CPU (and timfusion-bench times): forward_u8
  // where its kernel applies, else round(clamp(forward, 0, 1) * 255) into out.
  // Same arguments; the inputs are float32 in any case (the layers convert to
  // the weights' precision themselves).
  void forward_to_u8(const torch::Tensor& ir, const torch::Tensor& vis, uint8_t* out, std::vector<float>& scratch);
  // For inference: fold BNs into their convs (after weights are loaded).
  void fold_bn();
  // Stores 4-d weights NHWC: oneDNN's fast path on CPU (~1.5x on 3x3 convs).
  // Call before fold_bn() so folded weights inherit the layout.
  void to_channels_last();
  const ArchSpec& spec() const { return spec_; }

 private:
  ArchSpec spec_;
  FusionNet stage1_{nullptr};
  std::shared_ptr<torch::nn::Module> stage2_;  // a Stage2 (networks.cpp)
};
TORCH_MODULE(TimNet);

int64_t count_parameters(torch::nn::Module& m);

}  // namespace timfusion::nn
