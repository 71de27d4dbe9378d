// timfusion internal: the process-wide cache of prepared networks (issue 28).
//
// Every Fuser of a process that asks for the same weight file (the same file
// on disk: device, inode, size and modification time), architecture, device
// and precision shares one immutable network: the file is read and the
// network built, moved, laid out and BN-folded once. A Fuser's forward passes
// only read the network (their scratch memory is the Fuser's own), so any
// number of threads may run it at once. Entries are held weakly: the network
// is freed with its last Fuser, and a changed file (a model swap after
// retraining) is a new key and is read again.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "timfusion/fuser.h"
#include "timfusion/model_file.h"
#include "timfusion/torch/networks.h"

namespace timfusion {

struct PreparedModel {
  ModelFile file;  // path, arch, provenance (no tensors: the network owns them)
  nn::TimNet net{nullptr};
  Device device = Device::Cpu;
  Precision precision = Precision::Fp32;
};

// The prepared network for `path` (already resolved), loading it when no
// Fuser holds it. Throws Error naming the file and the problem.
std::shared_ptr<const PreparedModel> prepared_model(const std::string& path, const std::string& arch_override,
                                                    Device device, Precision precision);

}  // namespace timfusion
