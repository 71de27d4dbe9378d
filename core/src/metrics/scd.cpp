// SCD, the sum of the correlations of differences (Aslantas & Bendes 2015; the
// analysis_SCD.m that Tang et al.'s evaluation uses): corr2(F-B, A) + corr2(F-A, B).
// corr2 is scale-free, so Tang's [0,1] inputs and our [0,255] give the same number.
#include "image_ops.h"
#include "kernels.h"

namespace timfusion::metrics_detail {

double scd(const Planes& p) {
  return corr2(p.fused - p.vis, p.ir) + corr2(p.fused - p.ir, p.vis);
}

}  // namespace timfusion::metrics_detail
