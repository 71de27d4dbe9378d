// timfusion-train search: the IAS hypergradient (sign verdict against finite
// differences), the supernet, the latency table, the searched genotype in
// core, and a few search steps. Fast: channels 4, 16-32 px, 1 thread.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "losses/fusion_losses.h"
#include "timfusion/torch/networks.h"
#include "run/checkpoint.h"
#include "run/run_dir.h"
#include "timfusion/safetensors.h"
#include "run/command_config.h"
#include "search/commands.h"
#include "search/hypergradient.h"
#include "search/search.h"
#include "search/supernet.h"
#include "timfusion/arch.h"
#include "timfusion/error.h"
#include "training_test_util.h"

using namespace timfusion;
using namespace timfusion::train;

namespace {

// ---------------------------------------------------------------- toy bilevel problem
//
// omega in R^n, alpha in R^m.
//   lower f(alpha, w) = 1/2 (a^T w - h(alpha))^2      (one linear residual)
//   upper F(alpha, w) = 1/2 |w - t|^2 + gamma q(alpha)
// Gradient descent on f from w0 moves along a and converges to
//   w*(alpha) = w0 + a (h(alpha) - a^T w0) / |a|^2,
// so the true hypergradient is dF/dalpha = gamma grad q + ((w* - t)^T a / |a|^2) grad h,
// checked here against central finite differences of F(alpha, w*(alpha)).
// With a single linear residual the Gauss-Newton matrices are exact on the
// range of a, so the IAS formula grad_a F - c grad_a f (c = <grad_w F, grad_w f>/|grad_w f|^2)
// evaluated at any w on the descent path (residual r != 0) equals
// gamma grad q + ((w - t)^T a / |a|^2) grad h, and tends to the true value as r -> 0.
struct Toy {
  torch::Tensor a, t, w0, b;
  double gamma = 0.3;

  explicit Toy(int64_t n = 5, double gamma_ = 0.3) : gamma(gamma_) {
    auto opts = torch::TensorOptions().dtype(torch::kFloat64);
    torch::manual_seed(7);
    a = torch::randn({n}, opts);
    t = torch::randn({n}, opts);
    w0 = torch::randn({n}, opts);
    b = torch::tensor({1.3, -0.7, 0.4}, opts);
  }
  torch::Tensor h(const torch::Tensor& al) const { return (b * torch::sin(al)).sum() + al[0] * al[1]; }
  torch::Tensor q(const torch::Tensor& al) const { return 0.5 * al.pow(2).sum(); }
  torch::Tensor f(const torch::Tensor& al, const torch::Tensor& w) const { return 0.5 * ((a * w).sum() - h(al)).pow(2); }
  torch::Tensor F(const torch::Tensor& al, const torch::Tensor& w) const {
    return 0.5 * (w - t).pow(2).sum() + gamma * q(al);
  }
  torch::Tensor w_star(const torch::Tensor& al) const {
    return w0 + a * (h(al) - (a * w0).sum()) / a.pow(2).sum();
  }
  // Gradient descent on f (lr eta) for k steps from w0.
  torch::Tensor w_path(const torch::Tensor& al, int k, double eta) const {
    auto w = w0.clone();
    for (int i = 0; i < k; ++i) w = w - eta * ((a * w).sum() - h(al)) * a;
    return w;
  }
  // Central differences of Phi(alpha) = F(alpha, w*(alpha)).
  torch::Tensor fd(const torch::Tensor& al, double eps = 1e-6) const {
    auto g = torch::zeros_like(al);
    for (int64_t i = 0; i < al.size(0); ++i) {
      auto p = al.clone(), m = al.clone();
      p[i] += eps;
      m[i] -= eps;
      g[i] = (F(p, w_star(p)) - F(m, w_star(m))) / (2 * eps);
    }
    return g;
  }
  // The IAS evaluation through the implementation, at (alpha, w).
  HyperGradient ias(const torch::Tensor& al_in, const torch::Tensor& w_in) const {
    auto al = al_in.clone().set_requires_grad(true);
    auto w = w_in.clone().set_requires_grad(true);
    return implicit_hypergradient(F(al, w), f(al, w), {al}, {w});
  }
};

double rel_err(const torch::Tensor& x, const torch::Tensor& ref) {
  return (x - ref).norm().item<double>() / ref.norm().item<double>();
}
double cosine(const torch::Tensor& x, const torch::Tensor& y) {
  return (x * y).sum().item<double>() / (x.norm().item<double>() * y.norm().item<double>());
}

}  // namespace

TEST(Hypergradient, FiniteDifferencesMatchTheClosedForm) {
  Toy toy;
  auto al = torch::tensor({0.4, -1.1, 0.9}, torch::kFloat64);
  auto ws = toy.w_star(al);
  auto x = al.clone().set_requires_grad(true);
  auto gh = torch::autograd::grad({toy.h(x)}, {x})[0];
  auto exact = toy.gamma * al + ((ws - toy.t) * toy.a).sum() / toy.a.pow(2).sum() * gh;
  EXPECT_LT(rel_err(toy.fd(al), exact), 1e-8);
}

// The sign verdict: grad_a F - c grad_a f matches the finite-difference
// hypergradient; the released code's grad_a F + eta c grad_a f does not.
TEST(Hypergradient, ImplicitMinusFormMatchesFiniteDifferencesAndReferenceSignFails) {
  const double eta = 0.5 / Toy().a.pow(2).sum().item<double>();  // weight lr on the descent path
  for (double gamma : {0.0, 0.3}) {
    Toy toy(5, gamma);
    auto al = torch::tensor({0.4, -1.1, 0.9}, torch::kFloat64);
    auto fd = toy.fd(al);
    // A point on the descent path near convergence: r = (1/2)^30 r0 != 0.
    auto w = toy.w_path(al, 30, eta);
    const double r = ((toy.a * w).sum() - toy.h(al)).item<double>();
    ASSERT_NE(r, 0.0);
    HyperGradient hg = toy.ias(al, w);
    const auto& ours = hg.g_alpha[0];
    auto released = hg.dF_dalpha[0] + eta * hg.c * hg.df_dalpha[0];  // IAS/architect_new.py
    auto released_unscaled = hg.dF_dalpha[0] + hg.c * hg.df_dalpha[0];
    const double e_ours = rel_err(ours, fd), e_rel = rel_err(released, fd), e_rel1 = rel_err(released_unscaled, fd);
    std::printf("[sign verdict] gamma %.1f, residual r = %.3g: |g - FD|/|FD|: implicit (minus) %.2e, "
                "released (+eta c) %.3f, (+c) %.3f; cosine to FD: %.6f, %.6f, %.6f\n",
                gamma, r, e_ours, e_rel, e_rel1, cosine(ours, fd), cosine(released, fd), cosine(released_unscaled, fd));
    EXPECT_LT(e_ours, 1e-6);
    EXPECT_GT(e_rel, 0.2);
    EXPECT_GT(e_rel1, 0.2);
    if (gamma == 0.0) {  // purely implicit: the released sign points exactly the wrong way
      EXPECT_NEAR(cosine(released, fd), -1.0, 1e-9);
      EXPECT_NEAR(cosine(ours, fd), 1.0, 1e-9);
    }
  }
}

// Anywhere on the path (large residual) the formula equals its closed form
// gamma grad q + ((w - t)^T a / |a|^2) grad h: Gauss-Newton is exact here.
TEST(Hypergradient, ExactOnTheDescentPathForALinearResidual) {
  Toy toy;
  auto al = torch::tensor({-0.3, 0.8, 1.7}, torch::kFloat64);
  const double eta = 0.5 / toy.a.pow(2).sum().item<double>();
  for (int k : {1, 3, 8}) {
    auto w = toy.w_path(al, k, eta);
    HyperGradient hg = toy.ias(al, w);
    auto x = al.clone().set_requires_grad(true);
    auto gh = torch::autograd::grad({toy.h(x)}, {x})[0];
    auto closed = toy.gamma * al + ((w - toy.t) * toy.a).sum() / toy.a.pow(2).sum() * gh;
    EXPECT_LT(rel_err(hg.g_alpha[0], closed), 1e-12) << "k = " << k;
    // c = <w - t, r a> / (r^2 |a|^2)
    const double r = ((toy.a * w).sum() - toy.h(al)).item<double>();
    EXPECT_NEAR(hg.c, ((w - toy.t) * toy.a).sum().item<double>() / (r * toy.a.pow(2).sum().item<double>()), 1e-9 * std::abs(hg.c));
  }
}

TEST(Hypergradient, FirstOrderAndZeroLowerGradient) {
  Toy toy;
  auto al = torch::tensor({0.1, 0.2, 0.3}, torch::kFloat64).set_requires_grad(true);
  auto w = toy.w_path(al.detach(), 2, 0.1).set_requires_grad(true);
  auto h1 = implicit_hypergradient(toy.F(al, w), toy.f(al, w), {al}, {w}, /*first_order=*/true);
  EXPECT_EQ(h1.c, 0.0);
  EXPECT_TRUE(torch::allclose(h1.g_alpha[0], h1.dF_dalpha[0]));
  // At the exact lower minimum grad_w f = 0: the pseudo-inverse gives c = 0, no NaN.
  auto ws = toy.w_star(al.detach()).set_requires_grad(true);
  auto al2 = al.detach().clone().set_requires_grad(true);
  auto h2 = implicit_hypergradient(toy.F(al2, ws), 0.0 * toy.f(al2, ws), {al2}, {ws});
  EXPECT_EQ(h2.c, 0.0);
  EXPECT_TRUE(torch::isfinite(h2.g_alpha[0]).all().item<bool>());
}

// ---------------------------------------------------------------- supernet

namespace {

SuperNetOptions tiny_options() {
  SuperNetOptions o;
  o.channels = 4;
  o.downscale = 2;
  o.cells = 2;
  o.candidates = {"Residualblocks_3_1", "DilConv_3_2", "SPAattention_3", "Identity"};
  return o;
}

LatencyTable synthetic_table(const SuperNetOptions& o) {
  LatencyTable t;
  t.channels = o.channels, t.downscale = o.downscale, t.cells = o.cells, t.edges = o.edges, t.reps = 1;
  t.ops = o.candidates;
  double ms = 0.5;
  for (const auto& n : o.candidates) t.op_ms[n] = t.op_ms_median[n] = (n == "Identity" ? 0.0 : (ms += 0.25));
  t.fixed_ms = t.fixed_ms_median = 1.5;
  return t;
}

SearchBatch random_batch(int64_t n, int64_t s, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::rand({n, 1, s, s}), torch::rand({n, 1, s, s})};
}

}  // namespace

// The implementation's c and g_alpha equal values assembled by hand with
// separate autograd calls on a tiny real supernet.
TEST(SearchSupernet, HypergradientEqualsHandAssembledAutograd) {
  torch::set_num_threads(1);
  torch::manual_seed(3);
  SuperNet net(tiny_options());
  net->train();
  {
    torch::NoGradGuard ng;
    net->alpha().copy_(torch::randn_like(net->alpha()) * 0.5);
  }
  const LatencyTable lat = synthetic_table(net->options());
  const double lambda = 0.05;
  FusionLossWeights w;
  w.ssim_window = 7;
  SearchBatch tr = random_batch(2, 16, 11), va = random_batch(2, 16, 12);

  IasStep s = ias_hypergradient(*net, &lat, lambda, tr, va, w);

  // By hand.
  auto& alpha = net->alpha();
  auto omega = net->parameters();
  auto F = fusion_losses(net->forward(va.ir, va.vis), va.ir, va.vis, w).total + lambda * lat.expected(torch::softmax(alpha, 1));
  auto gFa = torch::autograd::grad({F}, {alpha}, {}, true)[0];
  auto gFw = torch::autograd::grad({F}, omega, {}, false, false, true);
  auto f = fusion_losses(net->forward(tr.ir, tr.vis), tr.ir, tr.vis, w).total;
  auto gfa = torch::autograd::grad({f}, {alpha}, {}, true)[0];
  auto gfw = torch::autograd::grad({f}, omega, {}, false, false, true);
  double dot = 0, nn2 = 0;
  for (size_t i = 0; i < omega.size(); ++i) {
    if (!gfw[i].defined()) continue;
    nn2 += gfw[i].to(torch::kFloat64).pow(2).sum().item<double>();
    if (gFw[i].defined()) dot += (gFw[i].to(torch::kFloat64) * gfw[i].to(torch::kFloat64)).sum().item<double>();
  }
  const double c = dot / nn2;
  auto g = gFa - c * gfa;
  std::printf("[supernet] c = %.6g (hand %.6g), |g_alpha| = %.4g, F = %.4f, f = %.4f, E[lat] = %.3f ms\n", s.h.c, c,
              s.h.g_alpha[0].norm().item<double>(), s.F, s.f, s.latency_ms);
  EXPECT_NEAR(s.h.c, c, 1e-6 * std::abs(c) + 1e-12);
  EXPECT_TRUE(torch::allclose(s.h.g_alpha[0], g, 1e-5, 1e-8));
  EXPECT_TRUE(torch::allclose(s.h.df_dalpha[0], gfa, 1e-5, 1e-9));
  EXPECT_TRUE(torch::allclose(s.h.dF_dalpha[0], gFa, 1e-5, 1e-9));
  EXPECT_NEAR(s.F, F.item<double>(), 1e-6);
  // The latency term only enters grad_a F, and pushes away from slow ops.
  EXPECT_GT(std::abs(c), 0.0);
  EXPECT_EQ(s.h.df_domega.size(), omega.size());
}

// A latency budget: under it the latency term is zero (F is the fusion loss
// alone); over it, F grows by lambda per ms above the budget.
TEST(SearchSupernet, LatencyBudgetPenalisesOnlyTheExcess) {
  torch::set_num_threads(1);
  torch::manual_seed(5);
  SuperNet net(tiny_options());
  net->train();
  const LatencyTable lat = synthetic_table(net->options());
  FusionLossWeights w;
  w.ssim_window = 7;
  SearchBatch tr = random_batch(2, 16, 21), va = random_batch(2, 16, 22);
  const double lambda = 0.05;
  IasStep free = ias_hypergradient(*net, &lat, lambda, tr, va, w, false, /*budget_ms=*/1e6);
  EXPECT_GT(free.latency_ms, 0.0);
  EXPECT_NEAR(free.F, free.F_fusion, 1e-6);
  const double budget = free.latency_ms - 2.0;  // 2 ms over the budget
  IasStep over = ias_hypergradient(*net, &lat, lambda, tr, va, w, false, budget);
  EXPECT_NEAR(over.F - over.F_fusion, lambda * 2.0, 1e-4);
}

TEST(SearchSupernet, LatencyTermGradientFavoursCheapOps) {
  SuperNetOptions o = tiny_options();
  LatencyTable lat = synthetic_table(o);
  auto alpha = torch::zeros({o.edges, static_cast<int64_t>(o.candidates.size())}).set_requires_grad(true);
  auto e = lat.expected(torch::softmax(alpha, 1));
  // Uniform: fixed + cells * edges * mean(lat).
  double mean = 0;
  for (const auto& n : o.candidates) mean += lat.op_ms[n] / static_cast<double>(o.candidates.size());
  EXPECT_NEAR(e.item<double>(), lat.fixed_ms + o.cells * o.edges * mean, 1e-5);
  auto g = torch::autograd::grad({e}, {alpha})[0];
  // d E / d alpha_ek = cells * p_k (lat_k - mean): negative exactly for the cheaper-than-average ops.
  for (size_t k = 0; k < o.candidates.size(); ++k) {
    const double expect = o.cells * (1.0 / o.candidates.size()) * (lat.op_ms[o.candidates[k]] - mean);
    EXPECT_NEAR(g[0][static_cast<int64_t>(k)].item<double>(), expect, 1e-5);
  }
  // One-hot probabilities reproduce predict().
  auto onehot = torch::zeros({o.edges, static_cast<int64_t>(o.candidates.size())});
  onehot[0][1] = 1, onehot[1][3] = 1;
  EXPECT_NEAR(lat.expected(onehot).item<double>(), lat.predict({o.candidates[1], o.candidates[3]}), 1e-5);
}

// The derived genotype is a JSON file core builds (ArchSpec::from_json) and
// whose TimNet runs (any H x W: TimNet pads to the downscale).
TEST(SearchSupernet, DerivedGenotypeBuildsAndRunsInCore) {
  torch::set_num_threads(1);
  SuperNetOptions o = tiny_options();
  o.downscale = 4;
  SuperNet net(o);
  {
    torch::NoGradGuard ng;
    net->alpha().zero_();
    net->alpha()[0][2] = 1.0;  // SPAattention_3
    net->alpha()[1][1] = 0.5;  // DilConv_3_2
  }
  ArchSpec g = net->derive("ivif-rt-test");
  EXPECT_EQ(g.normal, (std::vector<std::string>{"SPAattention_3", "DilConv_3_2"}));
  const std::string dir = tftest::temp_dir("search-genotype");
  write_text_atomic(dir + "/genotype.json", genotype_json(g));
  ArchSpec back = ArchSpec::resolve(dir + "/genotype.json");
  EXPECT_EQ(back.to_json(), g.to_json());
  EXPECT_EQ(back.downscale, 4);
  EXPECT_EQ(back.channels, 4);
  EXPECT_EQ(back.cells, (std::vector<std::string>{"Chain2", "Chain2"}));
  nn::TimNet tn(back);
  tn->eval();
  torch::NoGradGuard ng;
  auto ir = torch::rand({1, 1, 30, 42}), vis = torch::rand({1, 1, 30, 42});
  auto y = tn->forward(ir, vis);
  EXPECT_EQ(y.sizes(), ir.sizes());
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  // The supernet's shared modules have the final network's key layout (stem, cells.i.preprocess1, stem_out).
  auto sn = net->named_parameters();
  for (const auto& kv : tn->named_parameters()) {
    const auto& k = kv.key();
    if (k.find("._ops.") != std::string::npos) continue;
    ASSERT_TRUE(sn.contains(k)) << k;
    EXPECT_EQ(sn[k].sizes(), kv.value().sizes()) << k;
  }
}

TEST(SearchLatency, TableIsWellFormedAndRoundTrips) {
  torch::set_num_threads(1);
  SuperNetOptions o = tiny_options();
  LatencyTable t = measure_latency(o, 64, 48, 1, 2);
  ASSERT_EQ(t.ops, o.candidates);
  for (const auto& n : o.candidates) {
    ASSERT_TRUE(t.op_ms.count(n));
    EXPECT_TRUE(std::isfinite(t.op_ms[n]));
    EXPECT_GE(t.op_ms[n], 0.0);
    EXPECT_GE(t.op_ms_median[n], t.op_ms[n]);
  }
  EXPECT_GT(t.fixed_ms, 0.0);
  EXPECT_TRUE(t.matches(o, 64, 48, 1));
  EXPECT_FALSE(t.matches(o, 64, 48, 2));
  EXPECT_FALSE(t.matches(o, 640, 480, 1));
  LatencyTable back = LatencyTable::from_json(nlohmann::json::parse(t.to_json().dump()));
  EXPECT_EQ(back.to_json(), t.to_json());
  EXPECT_TRUE(back.matches(o, 64, 48, 1));
  EXPECT_NE(t.markdown().find("| Identity |"), std::string::npos);
  EXPECT_THROW(LatencyTable::from_json(nlohmann::json{{"width", 3}}), Error);
}

TEST(SearchSupernet, OptionsAreChecked) {
  SuperNetOptions o = tiny_options();
  o.candidates = {"Residualblocks_3_1", "Residualblocks_3_1"};
  EXPECT_THROW(o.validate(), Error);
  o.candidates = {"Residualblocks_3_1", "Nope_3_1"};
  EXPECT_THROW(o.validate(), Error);
  o = tiny_options();
  o.downscale = 3;
  EXPECT_THROW(o.validate(), Error);
}

// ---------------------------------------------------------------- the command

namespace {

CommandConfig search_config(const std::string& data, const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"timfusion-train", "search", "--data", data, "--out", out, "--channels", "4",
                                   "--crop", "32", "--batch", "2", "--threads", "1", "--quiet", "--steps", "4",
                                   "--set", "search.latency_width=64", "--set", "search.latency_height=48",
                                   "--set", "search.latency_reps=1", "--set", "search.alpha_start=1",
                                   "--set", "loss.ssim_window=7",
                                   "--set", "search.candidates=[\"Residualblocks_3_1\",\"SPAattention_3\",\"Identity\"]"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  CommandArgs a = parse_command_args(static_cast<int>(argv.size()), argv.data(), 2, search_spec());
  CommandConfig c = resolve_command_config(a, search_spec());
  prepare_run_dir(c, a);
  return c;
}

}  // namespace

TEST(SearchCommand, StepsMoveAlphaAndWeights) {
  const std::string root = tftest::temp_dir("search-steps");
  trtest::make_pairs(root + "/d", {"a", "b", "c", "d"}, 40, 36, true);
  CommandConfig c = search_config(root + "/d", root + "/run");
  EXPECT_EQ(c.typed_section<SearchConfig>().downscale, 2);
  EXPECT_EQ(c.base.model.channels, 4);
  Searcher s(c, root + "/run");
  EXPECT_TRUE(std::filesystem::exists(root + "/run/latency.json"));
  auto a0 = s.supernet().alpha().detach().clone();
  auto w0 = s.supernet().parameters()[0].detach().clone();
  SearchStats st0 = s.step(0);  // weights only (alpha_start = 1)
  EXPECT_TRUE(torch::equal(s.supernet().alpha().detach(), a0));
  EXPECT_FALSE(torch::equal(s.supernet().parameters()[0].detach(), w0));
  EXPECT_TRUE(std::isnan(st0.c));
  SearchStats st1 = s.step(1);
  EXPECT_FALSE(torch::equal(s.supernet().alpha().detach(), a0));
  EXPECT_TRUE(std::isfinite(st1.c));
  EXPECT_TRUE(std::isfinite(st1.F_fusion));
  EXPECT_GT(st1.latency_ms, 0.0);
  // First Adam step on alpha: every entry moves by alpha_lr against the sign of g_alpha.
  auto moved = (s.supernet().alpha().detach() - a0).abs();
  EXPECT_LE(moved.max().item<double>(), c.typed_section<SearchConfig>().alpha_lr * (1 + 1e-4));
  ArchSpec g = s.genotype();
  EXPECT_EQ(g.normal.size(), 2u);
  EXPECT_NE(s.alpha_markdown().find("SPAattention_3"), std::string::npos);
  const std::string csv = s.alpha_csv();
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);  // header + 3 candidates
}

// A whole run through the command entry point, then an interrupted run
// resumed: identical genotype, alpha table and weights.
TEST(SearchCommand, RunWritesOutputsAndResumeIsExact) {
  const std::string root = tftest::temp_dir("search-run");
  trtest::make_pairs(root + "/d", {"a", "b", "c", "d"}, 40, 36, false);
  auto run = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> args = {"timfusion-train", "search", "--data", root + "/d", "--out", out, "--channels", "4",
                                     "--crop", "32", "--batch", "2", "--threads", "1", "--quiet", "--steps", "4",
                                     "--checkpoint-every", "2", "--set", "search.latency_width=64",
                                     "--set", "search.latency_height=48", "--set", "search.latency_reps=1",
                                     "--set", "search.alpha_start=1", "--set", "loss.ssim_window=7", "--downscale", "2",
                                     "--latency-weight", "0.1"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    return cmd_search(static_cast<int>(argv.size()), argv.data(), 2);
  };
  ASSERT_EQ(run(root + "/full", {}), 0);
  for (const char* f : {"genotype.json", "alpha.md", "alpha.csv", "latency.json", "log.csv", "alpha_log.csv",
                        "config.json", "checkpoint.safetensors", "loss_curve.png", "alpha.png"})
    EXPECT_TRUE(std::filesystem::exists(root + "/full/" + f)) << f;
  ArchSpec g = ArchSpec::resolve(root + "/full/genotype.json");
  EXPECT_EQ(g.name, "ivif-rt");
  EXPECT_EQ(g.downscale, 2);
  // The same latency table (timings differ from run to run): the run folder's
  // latency.json is reused when it holds the same configuration.
  std::filesystem::create_directories(root + "/part");
  std::filesystem::copy_file(root + "/full/latency.json", root + "/part/latency.json");
  ASSERT_EQ(run(root + "/part", {"--stop-at", "3"}), 0);  // killed after step 3: checkpoint of step 2
  EXPECT_FALSE(std::filesystem::exists(root + "/part/genotype.json"));
  std::vector<std::string> rargs = {"timfusion-train", "search", "--resume", root + "/part", "--quiet"};
  std::vector<char*> argv;
  for (auto& s : rargs) argv.push_back(s.data());
  ASSERT_EQ(cmd_search(static_cast<int>(argv.size()), argv.data(), 2), 0);
  auto read = [](const std::string& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  EXPECT_EQ(read(root + "/part/alpha.csv"), read(root + "/full/alpha.csv"));
  EXPECT_EQ(read(root + "/part/genotype.json"), read(root + "/full/genotype.json"));
  EXPECT_EQ(read(root + "/part/alpha_log.csv"), read(root + "/full/alpha_log.csv"));
  std::string why;
  EXPECT_TRUE(same_tensors(read_safetensors(root + "/part/checkpoint.safetensors"),
                           read_safetensors(root + "/full/checkpoint.safetensors"), &why))
      << why;
  const std::string log = read(root + "/part/log.csv");
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 5);  // header + steps 1..4, each once
}
