// timfusion: moving weights between torch modules and safetensors files.
// Training-facing API (includes LibTorch): see README.md in this folder.
#pragma once
#include <string>

#include <torch/torch.h>

#include "timfusion/safetensors.h"

namespace timfusion::nn {

// Copies every parameter and buffer of `module` from `file`, by name.
// Throws Error naming the first problem: a missing key, an unexpected key
// (a file for another architecture), a shape or dtype mismatch, NaN/Inf.
// `what` prefixes the messages (the file name).
void load_state(torch::nn::Module& module, const SafetensorsFile& file, const std::string& what);

// Parameters and buffers as tensors (F32, num_batches_tracked I64).
SafetensorsFile to_safetensors(const torch::nn::Module& module);

// Conversions used by the trainer for its own checkpoint tensors.
TensorEntry to_entry(const std::string& name, const torch::Tensor& t);
torch::Tensor from_entry(const TensorEntry& e);

}  // namespace timfusion::nn
