// timfusion-train search: TIM's implicit hypergradient for the architecture
// weights (IAS). Internal header: includes LibTorch.
//
// Bilevel problem: min_alpha F(alpha, w*(alpha)), w*(alpha) = argmin_w f(alpha, w)
// (f: fusion loss on the weight split, F: fusion loss on the architecture
// split + latency term). The implicit function theorem gives
//     dF/dalpha = grad_a F - H_aw f (H_ww f)^-1 grad_w F.
// IAS replaces both second derivatives by Gauss-Newton outer products,
// H_ww f ~ g_w g_w^T and H_aw f ~ g_a g_w^T (g = first-order gradients of
// f), which with the pseudo-inverse of the rank-1 H_ww leaves
//     dF/dalpha ~ grad_a F - c * grad_a f,   c = <grad_w F, grad_w f> / |grad_w f|^2:
// three first-order gradients, no Hessian, no unrolled model.
//
// SIGN. The released code (IAS/architect_new.py, see shared/reference/TIM.md
// section 5) computes grad_a F + eta * c * grad_a f instead (opposite sign,
// scaled by the weight learning rate eta). tests/training/test_search.cpp
// checks both against a finite-difference hypergradient on a problem where
// the Gauss-Newton step is exact (f = 1/2 (a^T w - h(alpha))^2, F = 1/2 |w - t|^2):
// the minus form matches to 5e-9 relative error (cosine +1), the released
// form is off by 109 % and points the opposite way (cosine -1 when F has no
// direct alpha term). This implementation uses the minus form only.
#pragma once
#include <vector>

#include <torch/torch.h>

namespace timfusion::train {

struct HyperGradient {
  std::vector<torch::Tensor> g_alpha;      // the hypergradient, one per alpha tensor
  std::vector<torch::Tensor> dF_dalpha;    // grad_a F (direct)
  std::vector<torch::Tensor> df_dalpha;    // grad_a f
  std::vector<torch::Tensor> df_domega;    // grad_w f (also the weight step's gradient)
  double c = 0;                            // <grad_w F, grad_w f> / |grad_w f|^2
  double dot = 0, norm2 = 0;               // <grad_w F, grad_w f>, |grad_w f|^2
};

// F and f are scalars built from alpha and omega (graphs are consumed).
// Unused tensors get zero gradients. first_order: c = 0 (DARTS' first-order
// approximation, g_alpha = grad_a F), for ablations.
HyperGradient implicit_hypergradient(const torch::Tensor& F, const torch::Tensor& f, const std::vector<torch::Tensor>& alpha,
                                     const std::vector<torch::Tensor>& omega, bool first_order = false);

}  // namespace timfusion::train
