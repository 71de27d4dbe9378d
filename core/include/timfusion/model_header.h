// timfusion: which architecture a weight file holds, from its header alone.
#pragma once
#include <string>

#include "timfusion/arch.h"
#include "timfusion/safetensors.h"

namespace timfusion {

// arch_override (a built-in name or a genotype file) if given, else the
// file's timfusion.arch metadata; checked (arch_limits.h) and compared with
// the header's weight count (tensors may have no data yet), so that a
// genotype asking for more weights than the file holds fails before the
// network is built. Throws Error (without the path).
ArchSpec model_arch(const SafetensorsFile& header, const std::string& arch_override = "");

}  // namespace timfusion
