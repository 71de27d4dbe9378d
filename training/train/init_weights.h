// timfusion-train: loading the run's --init weights into a fresh network.
#pragma once
#include <string>

#include "timfusion/arch.h"
#include "timfusion/torch/networks.h"

namespace timfusion::train {

// Loads the weight file `path` (read with `arch_override`, as --arch) into
// `net`, whose architecture is `spec`. One mismatch is bridged on purpose: a
// file made without image_means (e.g. a meta-initialisation) can start a
// network with them. Its stem's first conv gets zero weights for the two mean
// planes, so the new network starts out computing exactly what the file did
// and learns from there. Anything else that differs is an error (load_state).
void load_init(nn::TimNetImpl& net, const ArchSpec& spec, const std::string& path, const std::string& arch_override);

}  // namespace timfusion::train
