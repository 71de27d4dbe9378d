#include "timfusion/torch/state_dict.h"

#include <cstring>
#include <set>

#include "timfusion/error.h"

namespace timfusion::nn {

namespace {

torch::ScalarType scalar_type(DType t) {
  switch (t) {
    case DType::F32: return torch::kFloat32;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::F64: return torch::kFloat64;
    case DType::I64: return torch::kInt64;
    case DType::I32: return torch::kInt32;
    case DType::I16: return torch::kInt16;
    case DType::I8: return torch::kInt8;
    case DType::U8: return torch::kUInt8;
    case DType::BOOL: return torch::kBool;
  }
  return torch::kFloat32;
}

DType dtype_of(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return DType::F32;
    case torch::kFloat16: return DType::F16;
    case torch::kBFloat16: return DType::BF16;
    case torch::kFloat64: return DType::F64;
    case torch::kInt64: return DType::I64;
    case torch::kInt32: return DType::I32;
    case torch::kUInt8: return DType::U8;
    default: throw Error("cannot store tensor dtype in safetensors");
  }
}

std::string shape_str(c10::IntArrayRef s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64; }

}  // namespace

torch::Tensor from_entry(const TensorEntry& e) {
  auto t = torch::empty(e.shape, torch::TensorOptions().dtype(scalar_type(e.dtype)));
  if (!e.data.empty()) std::memcpy(t.data_ptr(), e.data.data(), e.data.size());
  return t;
}

TensorEntry to_entry(const std::string& name, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  TensorEntry e;
  e.name = name;
  e.dtype = dtype_of(c.scalar_type());
  e.shape.assign(c.sizes().begin(), c.sizes().end());
  e.data.resize(c.numel() * c.element_size());
  if (!e.data.empty()) std::memcpy(e.data.data(), c.data_ptr(), e.data.size());
  return e;
}

void load_state(torch::nn::Module& module, const SafetensorsFile& file, const std::string& what) {
  auto params = module.named_parameters(true);
  auto buffers = module.named_buffers(true);
  std::set<std::string> expected;
  torch::NoGradGuard ng;
  auto copy_in = [&](const std::string& key, torch::Tensor& dst) {
    expected.insert(key);
    const TensorEntry* e = file.find(key);
    bool is_counter = key.size() >= 19 && key.compare(key.size() - 19, 19, "num_batches_tracked") == 0;
    if (!e) {
      if (is_counter) return;  // bookkeeping only; inference never reads it
      throw Error(what + ": missing weight \"" + key + "\" (" + shape_str(dst.sizes()) +
                  "): the file holds another architecture, or was saved with other key names");
    }
    if (!std::equal(e->shape.begin(), e->shape.end(), dst.sizes().begin(), dst.sizes().end()))
      throw Error(what + ": weight \"" + key + "\" has shape " + shape_str(e->shape) + " but the architecture needs " +
                  shape_str(dst.sizes()) + ": the file holds another architecture or width");
    if (is_float(e->dtype) != dst.is_floating_point())
      throw Error(what + ": weight \"" + key + "\" has dtype " + dtype_name(e->dtype) + ", expected " +
                  (dst.is_floating_point() ? "a float type" : "an integer type"));
    auto src = from_entry(*e);
    if (src.is_floating_point() && !torch::isfinite(src).all().item<bool>())
      throw Error(what + ": weight \"" + key + "\" contains NaN or Inf");
    dst.copy_(src.to(dst.scalar_type()));
  };
  for (auto& kv : params) copy_in(kv.key(), kv.value());
  for (auto& kv : buffers) copy_in(kv.key(), kv.value());
  for (const auto& t : file.tensors)
    if (!expected.count(t.name))
      throw Error(what + ": unexpected weight \"" + t.name +
                  "\": the file holds another architecture (or a 'module.' prefix from DataParallel)");
}

SafetensorsFile to_safetensors(const torch::nn::Module& module) {
  SafetensorsFile f;
  for (const auto& kv : module.named_parameters(true)) f.tensors.push_back(to_entry(kv.key(), kv.value()));
  for (const auto& kv : module.named_buffers(true)) f.tensors.push_back(to_entry(kv.key(), kv.value()));
  std::sort(f.tensors.begin(), f.tensors.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return f;
}

}  // namespace timfusion::nn
