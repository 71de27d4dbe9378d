// timfusion: where the library finds its own files, installed or not.
//
// An installed timfusion carries no path of the tree it was built in. Its
// shipped models are found relative to the library file itself
// (<libdir>/../../share/timfusion/models for libdir lib/<triplet>), so a
// DESTDIR or moved install works too, and then under the configured prefix.
// An uninstalled build finds the source tree through a small file meson
// writes next to the uninstalled library (timfusion-uninstalled.json), never
// installed: the build tree works without environment variables.
#pragma once
#include <string>
#include <vector>

namespace timfusion {

// Folders searched for shipped models (ivif-rt, ivif-light, genotypes), in order:
// $TIMFUSION_MODELS_DIR, the uninstalled build's source core/models, the install
// relative to the library, <prefix>/share/timfusion/models. Only existing ones.
std::vector<std::string> shipped_model_dirs();

// The installed models folder of the configured prefix (where `meson install` puts them).
std::string installed_models_dir();

// Uninstalled build only (empty when installed): the source tree and the shared
// data folder that meson was configured with.
std::string uninstalled_source_root();
std::string uninstalled_data_dir();

}  // namespace timfusion
