#include "train/init_weights.h"

#include <cstring>

#include "timfusion/model_file.h"
#include "timfusion/torch/state_dict.h"

namespace timfusion::train {

namespace {

// The stem's first convolution: its input channels are the space-to-depth
// planes of both inputs, then (with image_means) the two mean planes.
constexpr const char* kStemInputConv = "stem.0.conv2d.weight";

// Appends `extra` zero input channels to an F32 [out, in, k, k] conv weight.
void widen_inputs(TensorEntry& e, int64_t extra) {
  const int64_t out = e.shape[0], in = e.shape[1], kk = e.shape[2] * e.shape[3];
  std::vector<uint8_t> data(static_cast<size_t>(out * (in + extra) * kk) * sizeof(float), 0);
  for (int64_t o = 0; o < out; ++o)
    std::memcpy(data.data() + static_cast<size_t>(o * (in + extra) * kk) * sizeof(float),
                e.data.data() + static_cast<size_t>(o * in * kk) * sizeof(float), static_cast<size_t>(in * kk) * sizeof(float));
  e.data = std::move(data);
  e.shape[1] = in + extra;
}

}  // namespace

void load_init(nn::TimNetImpl& net, const ArchSpec& spec, const std::string& path, const std::string& arch_override) {
  ModelFile f = load_model_file(path, arch_override);
  if (spec.image_means && !spec.two_stage()) {
    // By shape: the file may be read with the run's --arch (arch_override), which has image_means.
    const int64_t with_means = 2 * spec.downscale * spec.downscale + 2;
    for (auto& e : f.weights.tensors)
      if (e.name == kStemInputConv && e.dtype == DType::F32 && e.shape.size() == 4 && e.shape[1] == with_means - 2)
        widen_inputs(e, 2);
  }
  nn::load_state(net, f.weights, path);
}

}  // namespace timfusion::train
