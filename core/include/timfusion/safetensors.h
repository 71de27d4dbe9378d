// timfusion: the safetensors weight-file format.
//
// Layout: u64 little-endian header length N, N bytes of JSON header
// {"__metadata__": {str: str}, "<key>": {"dtype", "shape", "data_offsets"}},
// then the raw little-endian tensor bytes. Reading validates the whole
// structure before anything is used; writing is atomic (temp file + rename).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace timfusion {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType t);  // "F32", ...
size_t dtype_size(DType t);

struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  int64_t numel() const;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<TensorEntry> tensors;  // sorted by name after reading

  const TensorEntry* find(const std::string& name) const;
};

// Throws Error("<path>: <problem>") on any structural problem.
SafetensorsFile read_safetensors(const std::string& path);
SafetensorsFile parse_safetensors(const std::vector<uint8_t>& bytes);
void write_safetensors(const std::string& path, const SafetensorsFile& file);

}  // namespace timfusion
