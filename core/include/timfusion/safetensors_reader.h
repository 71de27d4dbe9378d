// timfusion: reading safetensors files from others, bounded.
//
// read_safetensors (safetensors.h) reads through this: the header is read and
// checked (size, JSON depth, entry count, duplicate keys, integer shapes
// without overflow, offsets inside the file, no overlaps, no unused bytes)
// before any tensor data is read, and a caller can reject the file from its
// header alone (load_model_file checks the genotype against it).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "timfusion/safetensors.h"

namespace timfusion {

// Limits of the reader: far above every real weight file or training
// checkpoint (ivif-full: ~300 tensors, a header of ~40 KB).
constexpr uint64_t kMaxSafetensorsHeader = uint64_t{16} << 20;  // bytes of JSON
constexpr size_t kMaxSafetensorsTensors = 65536;
constexpr uint64_t kMaxSafetensorsFile = uint64_t{4} << 30;
constexpr int64_t kMaxTensorElements = int64_t{1} << 34;  // per tensor, and per dimension

// Called with the parsed header (tensors with shapes but no data yet) before
// the data is read; throws Error to reject the file.
using SafetensorsHeaderCheck = std::function<void(const SafetensorsFile& header)>;

// read_safetensors with a header check. Regular files only (input_file.h),
// at most kMaxSafetensorsFile bytes. Throws Error("<path>: <problem>").
SafetensorsFile read_safetensors_checked(const std::string& path, const SafetensorsHeaderCheck& check);

}  // namespace timfusion
