#include "timfusion/safetensors.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

#include "strict_json.h"
#include "timfusion/atomic_file.h"
#include "timfusion/error.h"
#include "timfusion/input_file.h"
#include "timfusion/safetensors_reader.h"

using nlohmann::json;

namespace timfusion {

namespace {

struct DTypeInfo {
  DType type;
  const char* name;
  size_t size;
};
const DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2}, {DType::F64, "F64", 8},
    {DType::I64, "I64", 8}, {DType::I32, "I32", 4}, {DType::I16, "I16", 2},   {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1},
};

DType parse_dtype(const std::string& s, const std::string& key) {
  for (const auto& d : kDTypes)
    if (s == d.name) return d.type;
  throw Error("tensor \"" + key + "\" has unsupported dtype \"" + s + "\"");
}

}  // namespace

const char* dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.name;
  return "?";
}

size_t dtype_size(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.size;
  return 0;
}

int64_t TensorEntry::numel() const {
  int64_t n = 1;
  for (auto d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      throw Error("tensor \"" + name + "\" has a negative or too large shape");
  return n;
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = std::lower_bound(tensors.begin(), tensors.end(), name,
                             [](const TensorEntry& e, const std::string& n) { return e.name < n; });
  if (it != tensors.end() && it->name == name) return &*it;
  for (const auto& t : tensors)  // unsorted (being built by a writer)
    if (t.name == name) return &t;
  return nullptr;
}

namespace {

// Shapes: at most this many dimensions (real tensors have up to 4).
constexpr size_t kMaxDims = 8;

std::string short_name(const std::string& key) { return key.size() > 80 ? key.substr(0, 80) + "..." : key; }

// A non-negative JSON integer no larger than max, else Error(what). Floats
// (2.0, 1e30) and negative numbers are refused, never converted.
uint64_t json_count(const json& v, uint64_t max, const std::string& what) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() > max) throw Error(what);
  return v.get<uint64_t>();
}

struct Header {
  SafetensorsFile file;  // tensors without data, in header order
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // data_offsets of file.tensors[i]
};

// Everything but the data: a header that passes describes data that exactly
// fills data_size bytes (no overlaps, no holes), so reading it costs no more
// memory than the file's size.
Header parse_header(const char* text, uint64_t n, uint64_t data_size) {
  json header;
  JsonLimits limits;
  limits.max_depth = 3;  // {"name": {"shape": [...]}}
  limits.max_top_level_keys = kMaxSafetensorsTensors + 1;  // + __metadata__
  try {
    header = parse_strict_json(text, text + n, limits);
  } catch (const Error& e) {
    throw Error(std::string("header: ") + e.what() + ": not a safetensors file, or corrupt");
  }
  if (!header.is_object()) throw Error("header is not a JSON object");

  Header h;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    if (key == "__metadata__") {
      if (!it->is_object()) throw Error("__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) throw Error("metadata value \"" + short_name(m.key()) + "\" is not a string");
        h.file.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const std::string who = "tensor \"" + short_name(key) + "\"";
    const json& v = *it;
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      throw Error(who + " needs dtype, shape and data_offsets [begin, end]");
    TensorEntry t;
    t.name = key;
    t.dtype = parse_dtype(v["dtype"].get<std::string>(), short_name(key));
    if (v["shape"].size() > kMaxDims) throw Error(who + " has more than " + std::to_string(kMaxDims) + " dimensions");
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      const uint64_t dim = json_count(d, kMaxTensorElements, who + " has a bad shape (dimensions must be whole numbers from 0 to 2^34)");
      t.shape.push_back(static_cast<int64_t>(dim));
      // Checked before multiplying: 2^34 * 2^34 would wrap 64 bits (2^32 x 2^32 wrapped to 0).
      if (dim != 0 && numel > static_cast<uint64_t>(kMaxTensorElements) / dim)
        throw Error(who + " has more than 2^34 elements");
      numel *= dim;
    }
    const auto& off = v["data_offsets"];
    const std::string bad_offsets = who + " has bad data_offsets (whole numbers within the file)";
    const uint64_t b = json_count(off[0], data_size, bad_offsets), e = json_count(off[1], data_size, bad_offsets);
    if (b > e || e > data_size)
      throw Error(who + " lies outside the file (offsets " + std::to_string(b) + ".." + std::to_string(e) +
                  ", data size " + std::to_string(data_size) + "): truncated or corrupt");
    const uint64_t need = numel * dtype_size(t.dtype);  // <= 2^34 * 8: no overflow
    if (e - b != need)
      throw Error(who + " has " + std::to_string(e - b) + " bytes but its shape and dtype need " + std::to_string(need));
    h.ranges.emplace_back(b, e);
    h.file.tensors.push_back(std::move(t));
  }
  std::vector<std::pair<uint64_t, uint64_t>> sorted = h.ranges;
  std::sort(sorted.begin(), sorted.end());
  uint64_t covered = 0;
  for (const auto& [b, e] : sorted) {
    if (b < covered) throw Error("two tensors overlap in the data section: corrupt file");
    if (b > covered) break;
    covered = e;
  }
  // As the safetensors format demands: the data section holds the tensors and nothing else.
  if (covered != data_size)
    throw Error("the data section has bytes that no tensor uses (from offset " + std::to_string(covered) + " of " +
                std::to_string(data_size) + "): corrupt file");
  return h;
}

uint64_t header_length(const uint8_t* first8, uint64_t file_size) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | first8[i];
  if (n > kMaxSafetensorsHeader || n > file_size - 8)
    throw Error("header length " + std::to_string(n) + " does not fit in the file (" + std::to_string(file_size) +
                " bytes" + (n > kMaxSafetensorsHeader ? ", limit " + byte_size_str(kMaxSafetensorsHeader) : "") +
                "): not a safetensors file, or truncated");
  return n;
}

void sort_by_name(SafetensorsFile& file) {
  std::sort(file.tensors.begin(), file.tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) { return a.name < b.name; });
}

}  // namespace

SafetensorsFile parse_safetensors(const std::vector<uint8_t>& bytes) {
  if (bytes.size() < 8) throw Error("file is too short to be a safetensors file (" + std::to_string(bytes.size()) + " bytes)");
  const uint64_t n = header_length(bytes.data(), bytes.size());
  Header h = parse_header(reinterpret_cast<const char*>(bytes.data()) + 8, n, bytes.size() - 8 - n);
  const uint8_t* data = bytes.data() + 8 + n;
  for (size_t i = 0; i < h.file.tensors.size(); ++i)
    h.file.tensors[i].data.assign(data + h.ranges[i].first, data + h.ranges[i].second);
  sort_by_name(h.file);
  return std::move(h.file);
}

SafetensorsFile read_safetensors(const std::string& path) { return read_safetensors_checked(path, {}); }

SafetensorsFile read_safetensors_checked(const std::string& path, const SafetensorsHeaderCheck& check) {
  InputFile f(path, kMaxSafetensorsFile, "weight file");
  try {
    if (f.size() < 8) throw Error("file is too short to be a safetensors file (" + std::to_string(f.size()) + " bytes)");
    uint8_t len[8];
    f.read_at(0, len, 8);
    const uint64_t n = header_length(len, f.size());
    std::string text(n, '\0');
    f.read_at(8, text.data(), n);
    Header h = parse_header(text.data(), n, f.size() - 8 - n);
    if (check) check(h.file);
    for (size_t i = 0; i < h.file.tensors.size(); ++i) {
      auto& t = h.file.tensors[i];
      t.data.resize(h.ranges[i].second - h.ranges[i].first);
      f.read_at(8 + n + h.ranges[i].first, t.data.data(), t.data.size());
    }
    sort_by_name(h.file);
    return std::move(h.file);
  } catch (const Error& e) {
    const std::string what = e.what();
    throw Error(what.rfind(path + ":", 0) == 0 ? what : path + ": " + what);
  }
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  json header = json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::vector<const TensorEntry*> order;
  for (const auto& t : file.tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->name < b->name; });
  uint64_t offset = 0;
  for (const auto* t : order) {
    if (t->data.size() != static_cast<size_t>(t->numel()) * dtype_size(t->dtype))
      throw Error("tensor \"" + t->name + "\": data size does not match its shape");
    header[t->name] = {{"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->data.size()}}};
    offset += t->data.size();
  }
  std::string h = header.dump();
  h.resize((h.size() + 7) / 8 * 8, ' ');  // 8-byte aligned data, as the reference writer does
  uint64_t n = h.size();

  // Atomic: a crash never leaves a half-written weight file under `path`.
  AtomicFile o(path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  o.write(len, 8);
  o.write(h.data(), h.size());
  for (const auto* t : order) o.write(t->data.data(), t->data.size());
  o.commit();
}

}  // namespace timfusion
