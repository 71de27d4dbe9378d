// timfusion: the most intra-op threads a Fuser takes (FuserOptions::threads,
// the element's "threads", the tools' --threads).
//
// Why 64: the networks stop scaling long before (measured gains end at 4-8
// threads), every thread beyond the cores only adds OpenMP barrier waits, and
// one Fuser's count is multiplied by frame workers and model swaps: 1024 gave
// 3,079 threads and a pipeline that never finished (issue 27). 0 still means
// one per core, whatever the core count.
#pragma once

namespace timfusion {

constexpr int kMaxThreads = 64;

}  // namespace timfusion
