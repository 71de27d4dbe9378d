#include "timfusion/torch/networks.h"

#include "nn/detail_head_cpu.h"
#include "nn/noise_sigma.h"
#include "nn/stem_input_cpu.h"

#include "timfusion/error.h"
#include "timfusion/noise_level.h"

namespace F = torch::nn::functional;

namespace timfusion::nn {

torch::nn::Sequential make_stem(int64_t C, bool with_bn, int64_t in) {
  torch::nn::Sequential s(ConvLayer(in, 2 * C, 3), torch::nn::PReLU(), ConvLayer(2 * C, C, 3));
  if (with_bn) s->push_back(TimBatchNorm(C));
  s->push_back(torch::nn::PReLU());
  return s;
}

torch::nn::Sequential make_stem_out(int64_t c_in, int64_t C, bool prelu, int64_t out) {
  torch::nn::Sequential s(ConvLayer(c_in, C, 3));
  if (prelu) s->push_back(torch::nn::PReLU());
  s->push_back(ConvLayer(C, C / 2, 3));
  s->push_back(ConvLayer(C / 2, out, 1));
  return s;
}

namespace {

torch::nn::ModuleList make_cells(int64_t C, const std::vector<std::string>& types, const std::vector<std::string>& normal,
                                 const std::vector<std::string>& chain_fusion) {
  torch::nn::ModuleList cells;
  for (const auto& t : types) cells->push_back(make_cell(t, C, normal, chain_fusion));
  return cells;
}

torch::Tensor run_cells(torch::nn::ModuleList& cells, torch::Tensor x) {
  for (auto& c : *cells) x = c->as<CellBase>()->forward(x);
  return x;
}

void fold_cells(torch::nn::ModuleList& cells) {
  for (auto& c : *cells) c->as<CellBase>()->fold_bn();
}

// The precision a stem's weights are stored in: the one its layers compute in.
torch::ScalarType weight_dtype(torch::nn::Sequential& stem) {
  return stem->ptr(0)->as<ConvLayerImpl>()->conv2d->weight.scalar_type();
}

// body(x) computed in the weights' precision, returned in x's. A reduced-
// precision model (bf16 on CPU) thus takes and returns float32 tensors, and
// what runs at full resolution outside the layers (padding, the heads' box
// sums and blends) stays float32: cumulative sums over a 640-pixel row in
// bf16's 8-bit mantissa would be off by whole grey levels. Where the types
// already match (float32 inference; training, also under autocast) nothing
// is converted.
template <class Body>
torch::Tensor in_weight_precision(const torch::Tensor& x, torch::nn::Sequential& stem, Body body) {
  const auto w = weight_dtype(stem);
  if (x.scalar_type() == w) return body(x);
  return body(x.to(w)).to(x.scalar_type());
}

// [max_c, max_c, mean_c] -> 1x1 conv -> sigmoid (spatial_attn_layer2).
class MaskLayer : public torch::nn::Module {
 public:
  MaskLayer() { spatial = register_module("spatial", BasicConv(3, 1, 1)); }
  torch::Tensor forward(const torch::Tensor& x) {
    auto mx = std::get<0>(x.max(1, true));
    return torch::sigmoid(spatial(torch::cat({mx, mx, x.mean(1, true)}, 1)));
  }
  BasicConv spatial{nullptr};
};

// Second stage of the two-stage models: two streams refine (input, stage-1
// result); IVIF merges them with a spatial mask (Network_Fusion9_3), MMIF
// concatenates them under a tanh head (Network_Fusion9_2).
class Stage2 : public torch::nn::Module {
 public:
  Stage2(const ArchSpec& spec) : ivif_(spec.kind == NetKind::IvifTwoStage) {
    const int64_t C = spec.channels;
    std::vector<std::string> chain(spec.stage2_cells, "Chain2");
    if (ivif_) spa = register_module("spa", std::make_shared<MaskLayer>());
    stem2 = register_module("stem2", make_stem(C, true));
    stem_out2 = register_module("stem_out2", make_stem_out(C, C, true));
    stem3 = register_module("stem3", make_stem(C, true));
    stem_out3 = register_module("stem_out3", make_stem_out(C, C, true));
    stem_out4 = register_module("stem_out4", make_stem_out(ivif_ ? C : 2 * C, C, false));
    cells2 = register_module("cells2", make_cells(C, chain, spec.stage2_g1, {}));
    cells3 = register_module("cells3", make_cells(C, chain, spec.stage2_g2, {}));
    if (spec.stage2_batch_stats)
      for (auto& m : modules(/*include_self=*/false))
        if (auto bn = std::dynamic_pointer_cast<TimBatchNormImpl>(m)) bn->batch_stats = true;
  }

  // stem_out2/3 are the reference's auxiliary (training-time) heads: their
  // weights are kept for key compatibility but inference does not run them.
  torch::Tensor forward(const torch::Tensor& first, const torch::Tensor& second, const torch::Tensor& fused) {
    // The three inputs as channels of one tensor, converted once: [first, second, fused].
    return in_weight_precision(torch::cat({first, second, fused}, 1), stem2, [&](const torch::Tensor& x) {
      auto f = x.narrow(1, 2, 1);
      auto f1 = run_cells(cells3, stem2->forward(torch::cat({x.narrow(1, 0, 1), f}, 1)));
      auto f2 = run_cells(cells2, stem3->forward(torch::cat({x.narrow(1, 1, 1), f}, 1)));
      if (ivif_) {
        auto mask = spa->forward(f1);
        return stem_out4->forward(mask * f1 + (1 - mask) * f2);
      }
      return torch::tanh(stem_out4->forward(torch::cat({f1, f2}, 1)));
    });
  }

  void fold_bn() {
    fold_cells(cells2);
    fold_cells(cells3);
  }

  bool ivif_;
  std::shared_ptr<MaskLayer> spa;
  torch::nn::Sequential stem2{nullptr}, stem_out2{nullptr}, stem3{nullptr}, stem_out3{nullptr}, stem_out4{nullptr};
  torch::nn::ModuleList cells2{nullptr}, cells3{nullptr};
};

}  // namespace

int64_t head_channels(Head head, int64_t downscale) {
  const int64_t per_pixel = head == Head::Image ? 1 : head == Head::Blend ? 2 : 4;
  return per_pixel * downscale * downscale;
}

torch::Tensor base_layer(const torch::Tensor& x) {
  // 5x5 box mean: the smallest window whose residual holds the fine texture
  // (what SF/AG/EI and the eye see as sharpness); reflection keeps borders unbiased.
  // Running sums instead of avg_pool2d: 2.5x faster on one core at 640x480,
  // where the head runs at full resolution every frame. The padding has one
  // extra leading row/column so that sum[j+5] - sum[j] is exactly the window
  // of output j (the extra entry cancels).
  const bool tiny = x.size(2) <= 3 || x.size(3) <= 3;
  auto opts = F::PadFuncOptions({3, 2, 3, 2});
  if (tiny)
    opts.mode(torch::kReplicate);
  else
    opts.mode(torch::kReflect);
  auto c = F::pad(x, opts).cumsum(3);
  auto rows = c.narrow(3, 5, x.size(3)) - c.narrow(3, 0, x.size(3));
  c = rows.cumsum(2);
  return (c.narrow(2, 5, x.size(2)) - c.narrow(2, 0, x.size(2))).mul_(1.0 / 25);
}

namespace {

// Soft threshold (coring): small detail, mostly sensor noise, goes to zero;
// larger detail keeps its sign and loses t.
torch::Tensor cored(torch::Tensor detail, double t) {
  if (t <= 0) return detail;
  return detail.sub_(detail.clamp(-t, t));
}

// The same with a threshold per image ([B,1,1,1]).
torch::Tensor cored(torch::Tensor detail, const torch::Tensor& t) {
  return detail - torch::clamp(detail, -t, t);
}

}  // namespace

torch::Tensor coring_threshold(const torch::Tensor& x, double coring, double noise_coring) {
  auto t = noise_sigma(x).mul_(noise_coring);
  return t.clamp_min_(coring);
}

namespace {

// k x k box mean by running sums (as base_layer), reflect-padded so that the
// size is kept (replicate where a side is too short to reflect; frames are at
// least 8 pixels, kMinImageSide, so only crops in tests get there). A zero
// leading row and column make sum[j+k] - sum[j] exactly window j.
torch::Tensor box_mean(const torch::Tensor& x, int64_t k) {
  const int64_t lo = k / 2, hi = (k - 1) / 2;
  const bool tiny = x.size(2) <= lo || x.size(3) <= lo;
  auto opts = F::PadFuncOptions({lo, hi, lo, hi});
  if (tiny)
    opts.mode(torch::kReplicate);
  else
    opts.mode(torch::kReflect);
  auto c = F::pad(F::pad(x, opts), F::PadFuncOptions({1, 0, 1, 0})).cumsum(3);
  auto rows = c.narrow(3, k, x.size(3)) - c.narrow(3, 0, x.size(3));
  c = rows.cumsum(2);
  return (c.narrow(2, k, x.size(2)) - c.narrow(2, 0, x.size(2))).mul_(1.0 / static_cast<double>(k * k));
}

}  // namespace

torch::Tensor salient_prior(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mean_a,
                            const torch::Tensor& mean_b, double softness) {
  torch::NoGradGuard no_grad;
  auto dev_a = (box_mean(a, kPriorWindow) - mean_a).abs_();
  auto dev_b = (box_mean(b, kPriorWindow) - mean_b).abs_();
  return box_mean(torch::sigmoid(dev_a.sub_(dev_b).div_(softness)), kPriorWindow)
      .clamp_(kPriorMargin, 1 - kPriorMargin);
}

torch::Tensor weight_with_prior(const torch::Tensor& sigmoid_z, const torch::Tensor& prior) {
  auto num = sigmoid_z * prior;
  return num / (num + (1 - sigmoid_z) * (1 - prior));
}

torch::Tensor selection_of_first(const torch::Tensor& detail_a, const torch::Tensor& detail_b) {
  return (detail_a.abs() - detail_b.abs()).mul_(1.0 / kSelectionRamp).add_(0.5).clamp_(0, 1);
}

DetailHeadOptions DetailHeadOptions::of(const ArchSpec& spec) {
  DetailHeadOptions o;
  o.coring = spec.detail_coring / 255.0;
  o.noise_coring = spec.noise_coring;
  o.select = spec.detail_select;
  o.residual = spec.residual;
  o.prior_softness = spec.salient_prior / 255.0;
  return o;
}

torch::Tensor apply_head(Head head, const torch::Tensor& raw, const torch::Tensor& a, const torch::Tensor& b,
                         const DetailHeadOptions& detail, const torch::Tensor& mean_a, const torch::Tensor& mean_b) {
  if (head == Head::Image) return raw;
  if (head == Head::Blend) {
    auto w = torch::sigmoid(raw.narrow(1, 0, 1));
    return torch::addcmul(b + raw.narrow(1, 1, 1), w, a - b);
  }
  // Detail: blend the base layers, add each input's detail with its own gain in (0, 2).
  auto base_a = base_layer(a), base_b = base_layer(b);
  auto w = torch::sigmoid(raw.narrow(1, 0, 1));
  if (detail.prior_softness > 0) {
    if (!mean_a.defined() || !mean_b.defined()) throw Error("internal: the salient prior needs the inputs' means");
    w = weight_with_prior(w, salient_prior(a, b, mean_a, mean_b, detail.prior_softness));
  }
  auto gain_a = 2 * torch::sigmoid(raw.narrow(1, 2, 1)), gain_b = 2 * torch::sigmoid(raw.narrow(1, 3, 1));
  auto out = torch::addcmul(detail.residual ? base_b + raw.narrow(1, 1, 1) : base_b, w, base_a - base_b);
  torch::Tensor detail_a, detail_b;
  if (detail.noise_coring > 0) {
    detail_a = cored(a - base_a, coring_threshold(a, detail.coring, detail.noise_coring));
    detail_b = cored(b - base_b, coring_threshold(b, detail.coring, detail.noise_coring));
  } else {
    detail_a = cored(a - base_a, detail.coring);
    detail_b = cored(b - base_b, detail.coring);
  }
  if (detail.select) {
    auto keep_a = selection_of_first(detail_a, detail_b);
    return out + keep_a * (gain_a * detail_a) + (1 - keep_a) * (gain_b * detail_b);
  }
  out = torch::addcmul(out, gain_a, detail_a);
  return torch::addcmul(out, gain_b, detail_b);
}

FusionNetImpl::FusionNetImpl(const ArchSpec& spec)
    : downscale(spec.downscale),
      head(spec.head),
      detail(DetailHeadOptions::of(spec)),
      image_means(spec.image_means) {
  const int64_t C = spec.channels, s2 = downscale * downscale;
  stem = register_module("stem", make_stem(C, false, 2 * s2 + (image_means ? 2 : 0)));
  cells = register_module("cells", make_cells(C, spec.cells, spec.normal, spec.chain_fusion));
  stem_out = register_module("stem_out", make_stem_out(C, C, true, head_channels(head, downscale)));
}

torch::Tensor FusionNetImpl::grid_output(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mean_a,
                                         const torch::Tensor& mean_b) {
  if (image_means && (!mean_a.defined() || !mean_b.defined()))
    throw Error("internal: an image_means network needs its inputs' means");
  auto layers = [&](const torch::Tensor& x) { return stem_out->forward(run_cells(cells, stem->forward(x))); };
  // Inference on CPU with channels-last weights (the Fuser's): the stem input
  // in one pass, channels-last (stem_input_cpu.h), the layout the convolution
  // would convert it to anyway, so the result is the same to the bit. NCHW
  // weights keep the ops: a channels-last input would switch their layout.
  const auto& first_weight = stem->ptr(0)->as<ConvLayerImpl>()->conv2d->weight;
  if (downscale > 1 && first_weight.is_contiguous(at::MemoryFormat::ChannelsLast) &&
      stem_input_cpu_applies(a, b, downscale)) {
    auto x = stem_input_cpu(a, b, downscale, image_means ? mean_a : torch::Tensor(), image_means ? mean_b : torch::Tensor());
    return in_weight_precision(x, stem, layers);
  }
  return in_weight_precision(torch::cat({a, b}, 1), stem, [&](torch::Tensor x) {
    // Space-to-depth: each s x s block becomes channels, so every layer touches s^2 fewer positions.
    if (downscale > 1) x = torch::pixel_unshuffle(x, downscale);
    if (image_means) {
      // Constant planes: the stem's (reflection-padded) first conv turns them
      // into a per-image bias, e.g. x - mean, at the cost of two input channels.
      // The means (float32) in the layers' precision.
      auto plane = [&](const torch::Tensor& mean) {
        return mean.to(x.dtype()).reshape({x.size(0), 1, 1, 1}).expand({x.size(0), 1, x.size(2), x.size(3)});
      };
      x = torch::cat({x, plane(mean_a), plane(mean_b)}, 1);
    }
    return layers(x);
  });
}

torch::Tensor FusionNetImpl::forward(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mean_a,
                                     const torch::Tensor& mean_b) {
  auto raw = grid_output(a, b, mean_a, mean_b);
  if (downscale > 1) raw = torch::pixel_shuffle(raw, downscale);
  return apply_head(head, raw, a, b, detail, mean_a, mean_b);
}

void FusionNetImpl::fold_bn() { fold_cells(cells); }

TimNetImpl::TimNetImpl(const ArchSpec& spec) : spec_(spec) {
  spec_.validate();
  stage1_ = FusionNet(spec_);
  if (!spec_.two_stage()) {
    // Single-stage keys carry no prefix: adopt stage 1's children directly.
    register_module("stem", stage1_->stem);
    register_module("cells", stage1_->cells);
    register_module("stem_out", stage1_->stem_out);
  } else {
    register_module("stage1", stage1_);
    stage2_ = register_module("stage2", std::make_shared<Stage2>(spec_));
  }
}

namespace {

// Rows (or columns) to add to a side of n so that it is a multiple of m: the
// bottom/right padding forward() adds and crops off again.
int64_t padding_to_multiple(int64_t n, int64_t m) { return (m - n % m) % m; }

// The mean an image_means network sees: the given one (training: the crop's
// whole image), else the unpadded input's own.
torch::Tensor mean_or_own(const torch::Tensor& given, const torch::Tensor& img, bool wanted) {
  if (!wanted || given.defined()) return given;
  return img.mean({2, 3}, /*keepdim=*/true);
}

}  // namespace

torch::Tensor TimNetImpl::forward(const torch::Tensor& ir, const torch::Tensor& vis, const torch::Tensor& ir_mean,
                                  const torch::Tensor& vis_mean) {
  const int64_t H = ir.size(2), W = ir.size(3), m = spec_.pad_multiple();
  torch::Tensor i = ir, v = vis;
  // Before padding: the means are the images' own, not the padded planes'.
  const torch::Tensor mi = mean_or_own(ir_mean, ir, spec_.image_means), mv = mean_or_own(vis_mean, vis, spec_.image_means);
  const int64_t ph = padding_to_multiple(H, m), pw = padding_to_multiple(W, m);
  if (ph || pw) {
    // Bottom/right reflection padding, cropped off again below.
    auto opts = F::PadFuncOptions({0, pw, 0, ph});
    if (H > ph && W > pw)
      opts.mode(torch::kReflect);
    else
      opts.mode(torch::kReplicate);
    i = F::pad(ir, opts);
    v = F::pad(vis, opts);
  }
  auto pick = [&](Input which) { return which == Input::Ir ? i : v; };
  auto pick_mean = [&](Input which) { return which == Input::Ir ? mi : mv; };
  torch::Tensor out = stage1_->forward(pick(spec_.inputs[0]), pick(spec_.inputs[1]), pick_mean(spec_.inputs[0]),
                                       pick_mean(spec_.inputs[1]));
  if (stage2_) {
    auto s2 = std::static_pointer_cast<Stage2>(stage2_);
    // The IVIF stage 2 takes (vis, ir); the MMIF ones keep stage 1's order.
    if (s2->ivif_)
      out = s2->forward(v, i, out);
    else
      out = s2->forward(pick(spec_.inputs[0]), pick(spec_.inputs[1]), out);
  }
  if (ph || pw) out = out.narrow(2, 0, H).narrow(3, 0, W);
  return out;
}

bool TimNetImpl::forward_u8(const torch::Tensor& ir, const torch::Tensor& vis, uint8_t* out,
                            std::vector<float>& scratch) {
  const int64_t H = ir.size(2), W = ir.size(3), m = spec_.pad_multiple();
  const int64_t min_side = spec_.salient_prior > 0 ? 8 : 3;  // salient_prior_cpu reflects 7 pixels
  if (stage2_ || spec_.head != Head::Detail || padding_to_multiple(H, m) || padding_to_multiple(W, m) || H < min_side ||
      W < min_side || ir.size(0) != 1 || !ir.device().is_cpu() || ir.scalar_type() != torch::kFloat32 || vis.scalar_type() != torch::kFloat32 ||
      !ir.is_contiguous() || !vis.is_contiguous())
    return false;
  const torch::Tensor& first = spec_.inputs[0] == Input::Ir ? ir : vis;
  const torch::Tensor& second = spec_.inputs[1] == Input::Ir ? ir : vis;
  // Each input's coring threshold (its noise floor where noise_coring is set).
  const DetailHeadOptions& head = stage1_->detail;
  auto threshold = [&](const torch::Tensor& x) {
    return head.noise_coring > 0
               ? std::max(head.coring, head.noise_coring * noise_level_unit(cv::Mat(static_cast<int>(H), static_cast<int>(W),
                                                                                      CV_32F, x.data_ptr<float>())))
               : head.coring;
  };
  const auto mean_first = mean_or_own({}, first, spec_.image_means), mean_second = mean_or_own({}, second, spec_.image_means);
  DetailKernelOptions options;
  options.coring = {threshold(first), threshold(second)};
  options.select = head.select;
  options.residual = head.residual;
  if (head.prior_softness > 0) {
    // Grown once per size and reused (the kernel's own scratch is sized per call).
    thread_local std::vector<float> prior;
    prior.resize(static_cast<size_t>(H * W));
    salient_prior_cpu(first.data_ptr<float>(), second.data_ptr<float>(), H, W, mean_first.item<float>(),
                      mean_second.item<float>(), head.prior_softness, prior.data());
    options.prior = prior.data();
  }
  detail_head_to_u8(stage1_->grid_output(first, second, mean_first, mean_second), stage1_->downscale,
                    first.data_ptr<float>(), second.data_ptr<float>(), H, W, options, out, scratch);
  return true;
}

void TimNetImpl::forward_to_u8(const torch::Tensor& ir, const torch::Tensor& vis, uint8_t* out,
                               std::vector<float>& scratch) {
  if (forward_u8(ir, vis, out, scratch)) return;
  auto y = forward(ir, vis).to(torch::kFloat32).clamp(0, 1).mul_(255).round_();
  // A copy into uint8 truncates: exact here, the values are whole numbers.
  torch::from_blob(out, {ir.size(0), 1, ir.size(2), ir.size(3)}, torch::TensorOptions().dtype(torch::kUInt8)).copy_(y);
}

void TimNetImpl::fold_bn() {
  stage1_->fold_bn();
  if (stage2_) std::static_pointer_cast<Stage2>(stage2_)->fold_bn();
}

void to_channels_last(torch::nn::Module& m) {
  torch::NoGradGuard ng;
  for (auto& p : m.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  for (auto& b : m.buffers())
    if (b.dim() == 4) b.set_data(b.contiguous(at::MemoryFormat::ChannelsLast));
}

void TimNetImpl::to_channels_last() { nn::to_channels_last(*this); }

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace timfusion::nn
