#include "timfusion/paths.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "install_dirs.h"  // generated: TIMFUSION_PREFIX, TIMFUSION_MODELS_SUBDIR, TIMFUSION_LIBDIR_TO_MODELS

namespace fs = std::filesystem;

namespace timfusion {

namespace {

// The folder holding this library (libtimfusion.so.N, or the executable when linked statically).
fs::path library_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&library_dir), &info) == 0 || !info.dli_fname) return {};
  std::error_code ec;
  fs::path p = fs::canonical(info.dli_fname, ec);
  return ec ? fs::path() : p.parent_path();
}

// timfusion-uninstalled.json beside the uninstalled library; absent once installed.
const nlohmann::json& uninstalled_info() {
  static const nlohmann::json info = [] {
    fs::path dir = library_dir();
    if (dir.empty()) return nlohmann::json::object();
    std::ifstream in(dir / "timfusion-uninstalled.json");
    if (!in) return nlohmann::json::object();
    auto j = nlohmann::json::parse(in, nullptr, false);
    return j.is_object() ? j : nlohmann::json::object();
  }();
  return info;
}

std::string uninstalled(const char* key) {
  const auto& j = uninstalled_info();
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string installed_models_dir() { return TIMFUSION_PREFIX "/" TIMFUSION_MODELS_SUBDIR; }

std::vector<std::string> shipped_model_dirs() {
  std::vector<std::string> dirs;
  auto add = [&](const fs::path& d) {
    std::error_code ec;
    if (d.empty() || !fs::is_directory(d, ec)) return;
    std::string s = d.lexically_normal().string();
    for (const auto& x : dirs)
      if (x == s) return;
    dirs.push_back(s);
  };
  if (const char* env = std::getenv("TIMFUSION_MODELS_DIR"); env && *env) add(env);
  if (std::string src = uninstalled("models_dir"); !src.empty()) add(src);
  if (fs::path lib = library_dir(); !lib.empty() && *TIMFUSION_LIBDIR_TO_MODELS) add(lib / TIMFUSION_LIBDIR_TO_MODELS);
  add(installed_models_dir());
  return dirs;
}

std::string uninstalled_source_root() { return uninstalled("source_root"); }
std::string uninstalled_data_dir() { return uninstalled("data_dir"); }

}  // namespace timfusion
