// Internal: each metric on one gray triple (see planes.h). The registry averages
// them over colour channels; the arguments of VIFB's functions are (VIS, IR, F).
#pragma once
#include "planes.h"

namespace timfusion::metrics_detail {

// Fused-image statistics (entropy_stats.cpp, gradients.cpp).
double entropy(const Planes& p);
double std_dev(const Planes& p);
double spatial_frequency(const Planes& p);
double average_gradient(const Planes& p);
double edge_intensity(const Planes& p);

// Information and error measures (mutual_info.cpp, cross_entropy.cpp, errors.cpp, scd.cpp).
double mutual_information(const Planes& p);
double cross_entropy(const Planes& p);
double psnr_vifb(const Planes& p);
double rmse_vifb(const Planes& p);
double psnr(const Planes& p);
double rmse(const Planes& p);
double scd(const Planes& p);

// Structure and perception (ssim.cpp, vif.cpp, qabf.cpp, nabf.cpp, qcb.cpp, qcv.cpp).
double ssim(const Planes& p);
double vif(const Planes& p);
double qabf(const Planes& p);
double nabf(const Planes& p);
double qcb(const Planes& p);
double qcv(const Planes& p);

}  // namespace timfusion::metrics_detail
