#include "search/hypergradient.h"

namespace timfusion::train {

namespace {

std::vector<torch::Tensor> grads(const torch::Tensor& y, const std::vector<torch::Tensor>& xs) {
  auto g = torch::autograd::grad({y}, xs, /*grad_outputs=*/{}, /*retain_graph=*/false, /*create_graph=*/false,
                                 /*allow_unused=*/true);
  for (size_t i = 0; i < g.size(); ++i)
    if (!g[i].defined()) g[i] = torch::zeros_like(xs[i]);
  return g;
}

}  // namespace

HyperGradient implicit_hypergradient(const torch::Tensor& F, const torch::Tensor& f, const std::vector<torch::Tensor>& alpha,
                                     const std::vector<torch::Tensor>& omega, bool first_order) {
  std::vector<torch::Tensor> all(alpha);
  all.insert(all.end(), omega.begin(), omega.end());
  // Gradient evaluations 1+2 (one backward pass of F): grad_a F, grad_w F.
  auto gF = grads(F, all);
  // Gradient evaluation 3 (one backward pass of f): grad_a f, grad_w f.
  auto gf = grads(f, all);

  HyperGradient h;
  const size_t na = alpha.size();
  h.dF_dalpha.assign(gF.begin(), gF.begin() + static_cast<long>(na));
  h.df_dalpha.assign(gf.begin(), gf.begin() + static_cast<long>(na));
  h.df_domega.assign(gf.begin() + static_cast<long>(na), gf.end());
  torch::NoGradGuard ng;
  double dot = 0, norm2 = 0;
  for (size_t i = na; i < all.size(); ++i) {
    // Accumulate in double: millions of products of small numbers.
    dot += (gF[i].to(torch::kFloat64) * gf[i].to(torch::kFloat64)).sum().item<double>();
    norm2 += gf[i].to(torch::kFloat64).pow(2).sum().item<double>();
  }
  h.dot = dot;
  h.norm2 = norm2;
  // Pseudo-inverse of the rank-1 Gauss-Newton matrix: 0 when grad_w f = 0.
  h.c = (first_order || norm2 <= 0 || !std::isfinite(norm2)) ? 0.0 : dot / norm2;
  for (size_t i = 0; i < na; ++i) h.g_alpha.push_back(h.dF_dalpha[i] - h.c * h.df_dalpha[i]);  // minus: see header
  return h;
}

}  // namespace timfusion::train
