#include "timfusion/model_file.h"

#include <cstdlib>
#include <filesystem>

#include "timfusion/error.h"

namespace timfusion {

ModelFile load_model_file(const std::string& path, const std::string& arch_override) {
  if (path.empty()) throw Error("no model file given");
  if (!std::filesystem::exists(path)) throw Error(path + ": model file not found");
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
  const std::string name = "/ivif-light.safetensors";
  for (const char* dir : {TIMFUSION_MODELS_DIR, TIMFUSION_SOURCE_MODELS_DIR})
    if (std::filesystem::exists(dir + name)) return dir + name;
  return TIMFUSION_MODELS_DIR + name;
}

}  // namespace timfusion
