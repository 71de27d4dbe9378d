#include "timfusion/model_file.h"

#include <atomic>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "timfusion/arch_limits.h"
#include "timfusion/error.h"
#include "timfusion/model_header.h"
#include "timfusion/safetensors_reader.h"
#include "timfusion/paths.h"
#include "timfusion/version.h"

#include <nlohmann/json.hpp>

namespace timfusion {

namespace {

std::vector<std::string> model_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("TIMFUSION_MODEL"); env && *env)
    dirs.push_back(std::filesystem::path(env).parent_path().string());
  for (auto& d : shipped_model_dirs()) dirs.push_back(d);
  return dirs;
}

}  // namespace

std::string resolve_model_path(const std::string& name_or_path) {
  if (name_or_path.empty()) return default_model_path();
  if (std::filesystem::exists(name_or_path) || name_or_path.find('/') != std::string::npos ||
      name_or_path.find(".safetensors") != std::string::npos)
    return name_or_path;
  for (const auto& dir : model_dirs()) {
    auto p = std::filesystem::path(dir) / (name_or_path + ".safetensors");
    if (std::filesystem::exists(p)) return p.string();
  }
  return name_or_path;
}

ArchSpec model_arch(const SafetensorsFile& header, const std::string& arch_override) {
  ArchSpec arch;
  auto meta = header.metadata.find("timfusion.arch");
  if (!arch_override.empty())
    arch = ArchSpec::resolve(arch_override);
  else if (meta != header.metadata.end())
    arch = ArchSpec::from_json(meta->second);
  else
    throw Error("the file does not say which architecture it holds (no timfusion.arch metadata): name one, e.g. "
                "arch=ivif-light");
  int64_t values = 0;  // float tensors only: the integer ones are BN batch counters
  for (const auto& t : header.tensors)
    if (t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16 || t.dtype == DType::F64)
      values += t.numel();  // each <= 2^34, at most 65536 tensors: no overflow
  const int64_t need = min_weight_count(arch);
  if (need > values)
    throw Error("architecture \"" + arch.name + "\" needs at least " + std::to_string(need) +
                " weights but the file holds " + std::to_string(values) +
                ": the file holds another architecture, or its genotype does not match its weights");
  return arch;
}

namespace {
std::atomic<uint64_t> g_model_file_reads{0};
}  // namespace

uint64_t model_file_reads() { return g_model_file_reads.load(); }

ModelFile load_model_file(const std::string& path, const std::string& arch_override) {
  if (path.empty()) throw Error("no model file given");
  std::error_code exists_ec;
  if (!std::filesystem::exists(path, exists_ec)) {
    std::string known;
    for (const auto& dir : model_dirs()) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(dir, ec))
        if (e.path().extension() == ".safetensors" && known.find(e.path().stem().string()) == std::string::npos)
          known += (known.empty() ? "" : ", ") + e.path().stem().string();
    }
    throw Error(path + ": model file not found" + (known.empty() ? "" : " (shipped models: " + known + ")"));
  }
  ModelFile m;
  m.path = path;
  // The genotype is read and checked against the header before any tensor
  // data is read and before the network is built: a genotype asking for a
  // network far larger than the file's weights costs nothing.
  m.weights = read_safetensors_checked(path, [&](const SafetensorsFile& header) { m.arch = model_arch(header, arch_override); });
  auto prov = m.weights.metadata.find("timfusion.provenance");
  m.provenance = prov != m.weights.metadata.end() ? prov->second : "{}";
  ++g_model_file_reads;
  return m;
}

void describe_model(SafetensorsFile& file, const ArchSpec& arch, const std::string& provenance_json) {
  file.metadata["timfusion.arch"] = arch.to_json();
  if (provenance_json.empty()) return;
  // Every described weight file says which timfusion made it (the meson project version).
  auto prov = nlohmann::json::parse(provenance_json, nullptr, false);
  if (prov.is_object() && !prov.contains("timfusion_version")) {
    prov["timfusion_version"] = TIMFUSION_VERSION;
    file.metadata["timfusion.provenance"] = prov.dump();
  } else {
    file.metadata["timfusion.provenance"] = provenance_json;
  }
}

void write_model_file(const std::string& path, SafetensorsFile weights, const ArchSpec& arch,
                      const std::string& provenance_json) {
  describe_model(weights, arch, provenance_json);
  write_safetensors(path, weights);
}

std::string default_model_path() {
  if (const char* env = std::getenv("TIMFUSION_MODEL"); env && *env) return env;
  const std::string name = "/ivif-rt.safetensors";
  for (const auto& dir : shipped_model_dirs())
    if (std::filesystem::exists(dir + name)) return dir + name;
  return installed_models_dir() + name;  // not there: the error names where it should be
}

}  // namespace timfusion
