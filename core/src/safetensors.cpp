#include "timfusion/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "timfusion/error.h"

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

// Guards against absurd headers before allocating (the format's own limit is 100 MB).
constexpr uint64_t kMaxHeader = 100u << 20;

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
  for (auto s : shape) n *= s;
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

SafetensorsFile parse_safetensors(const std::vector<uint8_t>& bytes) {
  if (bytes.size() < 8) throw Error("file is too short to be a safetensors file (" + std::to_string(bytes.size()) + " bytes)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxHeader || n > bytes.size() - 8)
    throw Error("header length " + std::to_string(n) + " does not fit in the file (" + std::to_string(bytes.size()) +
                " bytes): not a safetensors file, or truncated");
  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n));
  } catch (const json::exception&) {
    throw Error("header is not valid JSON: not a safetensors file, or corrupt");
  }
  if (!header.is_object()) throw Error("header is not a JSON object");

  const uint64_t data_size = bytes.size() - 8 - n;
  const uint8_t* data = bytes.data() + 8 + n;
  SafetensorsFile file;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    if (key == "__metadata__") {
      if (!it->is_object()) throw Error("__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) throw Error("metadata value \"" + m.key() + "\" is not a string");
        file.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const json& v = *it;
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      throw Error("tensor \"" + key + "\" needs dtype, shape and data_offsets [begin, end]");
    TensorEntry t;
    t.name = key;
    t.dtype = parse_dtype(v["dtype"].get<std::string>(), key);
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) throw Error("tensor \"" + key + "\" has a bad shape");
      t.shape.push_back(d.get<int64_t>());
    }
    const auto& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw Error("tensor \"" + key + "\" has bad data_offsets");
    uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > data_size)
      throw Error("tensor \"" + key + "\" lies outside the file (offsets " + std::to_string(b) + ".." +
                  std::to_string(e) + ", data size " + std::to_string(data_size) + "): truncated or corrupt");
    if (e - b != static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype))
      throw Error("tensor \"" + key + "\" has " + std::to_string(e - b) + " bytes but its shape and dtype need " +
                  std::to_string(t.numel() * dtype_size(t.dtype)));
    ranges.emplace_back(b, e);
    t.data.assign(data + b, data + e);
    file.tensors.push_back(std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) throw Error("two tensors overlap in the data section: corrupt file");
  std::sort(file.tensors.begin(), file.tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) { return a.name < b.name; });
  return file;
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  try {
    return parse_safetensors(bytes);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
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
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
    if (!o) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
    o.write(reinterpret_cast<const char*>(len), 8);
    o.write(h.data(), static_cast<long>(h.size()));
    for (const auto* t : order) o.write(reinterpret_cast<const char*>(t->data.data()), static_cast<long>(t->data.size()));
    o.flush();
    if (!o) {
      std::remove(tmp.c_str());
      throw Error(path + ": write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename temporary file (" + std::strerror(errno) + ")");
  }
}

}  // namespace timfusion
