// timfusion: how large a network a genotype may describe.
//
// Genotypes come from weight files that users download, so every numeric
// field is bounded (kFieldBounds in arch.cpp: channels 2..1024, kernel 1..15,
// dilation 1..8, cells and ops per list 1..16, stage2.cells 1..16, downscale
// 1/2/4), numbers must be JSON integers (no 1e30, no 2.0, no wrap-around) and
// the whole network has at most kMaxNetworkWeights weights. ArchSpec::validate
// and from_json enforce them. A new numeric field gets its row in
// kFieldBounds and a check_bound() in ArchSpec::validate.
#pragma once
#include <cstdint>

#include "timfusion/arch.h"

namespace timfusion {

// 64 M weights (256 MB in fp32; ivif-light has 0.13 M, ivif-full 1.2 M).
constexpr int64_t kMaxNetworkWeights = int64_t{64} << 20;

// A lower bound of the network's weight count (its convolution weights),
// from the genotype alone: nothing is allocated. A weight file must hold at
// least this many values, which is checked before the network is built
// (model_header.h). Saturates at INT64_MAX. Defined in arch_size.cpp.
int64_t min_weight_count(const ArchSpec& arch);

}  // namespace timfusion
