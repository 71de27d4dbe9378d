#include "run/checkpoint_integrity.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <vector>
#include <cstdio>
#include <cstring>

#include "timfusion/error.h"

namespace timfusion::train {

namespace {

// Whether the element at i is finite: IEEE formats by their exponent bits
// (all ones = inf or NaN), so that no conversion is needed for fp16/bf16.
bool finite_at(const TensorEntry& e, size_t i) {
  const uint8_t* p = e.data.data() + i * dtype_size(e.dtype);
  switch (e.dtype) {
    case DType::F32: {
      uint32_t b;
      std::memcpy(&b, p, 4);
      return (b & 0x7F800000u) != 0x7F800000u;
    }
    case DType::F64: {
      uint64_t b;
      std::memcpy(&b, p, 8);
      return (b & 0x7FF0000000000000ull) != 0x7FF0000000000000ull;
    }
    case DType::F16: {
      uint16_t b;
      std::memcpy(&b, p, 2);
      return (b & 0x7C00u) != 0x7C00u;
    }
    case DType::BF16: {
      uint16_t b;
      std::memcpy(&b, p, 2);
      return (b & 0x7F80u) != 0x7F80u;
    }
    default: return true;
  }
}

double value_at(const TensorEntry& e, size_t i) {
  const uint8_t* p = e.data.data() + i * dtype_size(e.dtype);
  if (e.dtype == DType::F32) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
  if (e.dtype == DType::F64) {
    double v;
    std::memcpy(&v, p, 8);
    return v;
  }
  uint16_t b;
  std::memcpy(&b, p, 2);
  const bool nan = e.dtype == DType::F16 ? (b & 0x03FFu) != 0 : (b & 0x007Fu) != 0;
  return nan ? NAN : ((b & 0x8000u) ? -INFINITY : INFINITY);
}

}  // namespace

void require_finite(const SafetensorsFile& f, const std::string& path) {
  for (const auto& e : f.tensors) {
    const size_t n = e.data.size() / std::max<size_t>(1, dtype_size(e.dtype));
    for (size_t i = 0; i < n; ++i) {
      if (finite_at(e, i)) continue;
      char v[32];
      std::snprintf(v, sizeof v, "%g", value_at(e, i));
      throw Error(path + ": not written: tensor \"" + e.name + "\" holds " + v +
                  " (the weights are no longer finite: training diverged; lower lr or set grad_clip)");
    }
  }
}

std::string tensors_checksum(const SafetensorsFile& f) {
  uLong crc = crc32(0L, Z_NULL, 0);
  auto add = [&crc](const void* p, size_t n) {
    const auto* b = static_cast<const Bytef*>(p);
    while (n > 0) {  // crc32 takes a uInt length
      const uInt k = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
      crc = crc32(crc, b, k);
      b += k;
      n -= k;
    }
  };
  // By name: the order in which a file was written is not the order read back.
  std::vector<const TensorEntry*> sorted;
  for (const auto& e : f.tensors) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (const TensorEntry* t : sorted) {
    const TensorEntry& e = *t;
    add(e.name.data(), e.name.size() + 1);
    const char* dt = dtype_name(e.dtype);
    add(dt, std::strlen(dt) + 1);
    add(e.shape.data(), e.shape.size() * sizeof(int64_t));
    add(e.data.data(), e.data.size());
  }
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08lx", static_cast<unsigned long>(crc));
  return hex;
}

void write_checkpoint(const std::string& path, SafetensorsFile& f) {
  require_finite(f, path);
  f.metadata[kTensorsChecksumKey] = tensors_checksum(f);
  write_safetensors(path, f);
}

void verify_checksum(const SafetensorsFile& f, const std::string& path) {
  auto it = f.metadata.find(kTensorsChecksumKey);
  if (it == f.metadata.end()) return;
  const std::string now = tensors_checksum(f);
  if (now != it->second)
    throw Error(path + ": the checkpoint is corrupt (its tensors' CRC-32 is " + now + ", it was written as " +
                it->second + "): restore it from a copy, or start the run again");
}

}  // namespace timfusion::train
