#include "timfusion/model_file.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "timfusion/error.h"
#include "timfusion/paths.h"

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

ModelFile load_model_file(const std::string& path, const std::string& arch_override) {
  if (path.empty()) throw Error("no model file given");
  if (!std::filesystem::exists(path)) {
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
  m.weights = read_safetensors(path);
  auto meta = m.weights.metadata.find("timfusion.arch");
  try {
    if (!arch_override.empty())
      m.arch = ArchSpec::resolve(arch_override);
    else if (meta != m.weights.metadata.end())
      m.arch = ArchSpec::from_json(meta->second);
    else
      throw Error("the file does not say which architecture it holds (no timfusion.arch metadata): name one, e.g. "
                  "arch=ivif-light");
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  auto prov = m.weights.metadata.find("timfusion.provenance");
  m.provenance = prov != m.weights.metadata.end() ? prov->second : "{}";
  return m;
}

std::string default_model_path() {
  if (const char* env = std::getenv("TIMFUSION_MODEL"); env && *env) return env;
  const std::string name = "/ivif-rt.safetensors";
  for (const auto& dir : shipped_model_dirs())
    if (std::filesystem::exists(dir + name)) return dir + name;
  return installed_models_dir() + name;  // not there: the error names where it should be
}

}  // namespace timfusion
