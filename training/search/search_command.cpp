// `timfusion-train search`: implicit architecture search with a latency budget.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "data/pair_dataset.h"
#include "timfusion/torch/state_dict.h"
#include "run/divergence.h"
#include "run/checkpoint.h"
#include "run/checkpoint_integrity.h"
#include "run/plot.h"
#include "run/run_dir.h"
#include "run/run_loop.h"
#include "timfusion/torch/networks.h"
#include "search/commands.h"
#include "search/search.h"
#include "run/device.h"
#include "timfusion/error.h"

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {


const std::vector<std::string> kColumns = {"step", "f_train", "F_val_fusion", "latency_ms", "c", "g_alpha_norm", "lr",
                                           "seconds"};

SearchBatch batch_of(const PairDataset& d, uint64_t seed, int64_t k, uint64_t stream, int n, int crop, bool flip,
                     const torch::Device& device) {
  Batch b = d.sample(seed, k, stream, n, crop, flip);
  return {planes_on(b.ir, b.n, b.h, b.w, device), planes_on(b.vis, b.n, b.h, b.w, device)};
}

const char* kUsage =
    "Usage: timfusion-train search --data DIR [--exclude FILE] [--data DIR ...] [options]\n"
    "       timfusion-train search --resume RUN_DIR [--steps N]\n"
    "\n"
    "TIM's implicit architecture search (IAS): a supernet whose Chain2 cells mix\n"
    "every candidate op (softmax over alpha, one genotype shared by all cells) is\n"
    "trained on half of the pairs (weights) while alpha follows the implicit\n"
    "Gauss-Newton hypergradient  grad_a F - c grad_a f,  c = <grad_w F, grad_w f>/|grad_w f|^2\n"
    "of the other half's fusion loss plus lambda * expected latency (ms, from a\n"
    "per-op table measured on this machine at the target frame size). Writes\n"
    "genotype.json (for core / timfusion-train train --arch), alpha.md, alpha.csv,\n"
    "latency.json, log.csv, alpha_log.csv, loss_curve.png, alpha.png.\n"
    "\n"
    "Search options (also --set search.KEY=VALUE; see --help-config):\n"
    "  --downscale 1|2|4         space-to-depth factor of the network (search.downscale)\n"
    "  --head image|blend|detail output head of the network (search.head; arch.h)\n"
    "  --cells N                 Chain2 cells (search.cells)\n"
    "  --latency-weight X        lambda, loss per ms of expected latency (search.latency_weight)\n"
    "  --latency-threads N       threads for the latency table (search.latency_threads, default 1)\n"
    "  --latency-budget MS       E[latency] that costs nothing (search.latency_budget, default 0)\n"
    "  --alpha-lr X              Adam lr of alpha (search.alpha_lr)\n"
    "  --first-order             ablation: c = 0 (search.hypergradient=first-order)\n"
    "  --name NAME               name in the genotype (search.name)\n"
    "  --channels N              supernet width (shared key; default 8)\n"
    "\n";

}  // namespace

const CommandSpec& search_spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "search";
    using T = KeyType;
    nlohmann::json cands = SuperNetOptions::default_candidates();
    s.keys = {
        {"name", T::String, "ivif-rt", 0, 0, {}, "name written into the genotype"},
        {"downscale", T::Int, 2, 1, 4, {}, "space-to-depth factor of the searched network: 1, 2 or 4"},
        {"head", T::String, "image", 0, 0, {"image", "blend", "detail"},
         "output head: image (reference), blend (sigmoid-weighted inputs + residual at full resolution) or "
         "detail (blended base layers + each input's detail with its own gain)"},
        {"cells", T::Int, 2, 1, 8, {}, "Chain2 cells (all share one genotype of 2 ops, as the reference)"},
        {"candidates", T::Json, cands, 0, 0, {}, "candidate ops of every edge (TIM op names)"},
        {"alpha_lr", T::Number, 1e-2, 1e-9, 10, {}, "Adam learning rate of alpha (betas 0.5, 0.999 as the reference)"},
        {"alpha_start", T::Int, 50, 0, 1e9, {}, "steps that train the weights only before alpha moves"},
        {"val_fraction", T::Number, 0.5, 0.05, 0.95, {}, "share of the pairs (evenly spaced in name order) for the alpha split"},
        {"latency_weight", T::Number, 0.02, 0, 1e6, {}, "lambda: upper-level loss per ms of expected latency"},
        {"latency_budget", T::Number, 0.0, 0, 1e6, {},
         "ms per frame (the latency table's E[latency], fixed part included) that costs nothing: the "
         "penalty is lambda * max(0, E[latency] - budget); 0 = plain lambda * E[latency]"},
        {"latency_width", T::Int, 640, 16, 8192, {}, "frame width the latency table is measured at"},
        {"latency_height", T::Int, 480, 16, 8192, {}, "frame height the latency table is measured at"},
        {"latency_threads", T::Int, 1, 1, 256, {}, "threads for the latency table (the deployment's thread count)"},
        {"latency_reps", T::Int, 10, 1, 1000, {}, "timed runs per op (the best is used)"},
        {"hypergradient", T::String, "implicit", 0, 0, {"implicit", "first-order"},
         "implicit: grad_a F - c grad_a f (IAS); first-order: grad_a F (ablation)"},
    };
    s.base_defaults = {{"steps", 300}, {"batch", 4},        {"crop", 64},        {"lr", 3e-3},
                       {"lr_min", 3e-4}, {"channels", 8}, {"threads", 1},      {"checkpoint_every", 50},
                       {"preview_every", 0}};
    s.flags = {{"--downscale", "search.downscale"},
               {"--head", "search.head"},
               {"--cells", "search.cells"},
               {"--latency-weight", "search.latency_weight"},
               {"--latency-threads", "search.latency_threads"},
               {"--latency-budget", "search.latency_budget"},
               {"--alpha-lr", "search.alpha_lr"},
               {"--first-order", "search.hypergradient=first-order"},
               {"--name", "search.name"}};
    return s;
  }();
  return spec;
}

IasStep ias_hypergradient(SuperNetImpl& net, const LatencyTable* lat, double lambda, const SearchBatch& train,
                          const SearchBatch& val, const FusionLossWeights& w, bool first_order, double budget_ms) {
  IasStep s;
  // Upper level F on the alpha split: fusion loss + lambda * E[latency].
  auto Fl = fusion_losses(net.forward(val.ir, val.vis), val.ir, val.vis, w);
  torch::Tensor F = Fl.total;
  if (lat && lambda > 0) {
    auto e = lat->expected(net.probabilities());
    s.latency_ms = e.item<double>();
    F = F + lambda * torch::relu(e - budget_ms);
  } else if (lat) {
    s.latency_ms = lat->expected(net.probabilities()).item<double>();
  }
  // Lower level f on the weight split (no latency: it does not depend on omega).
  auto fl = fusion_losses(net.forward(train.ir, train.vis), train.ir, train.vis, w);
  s.F = F.item<double>();
  s.F_fusion = Fl.total.item<double>();
  s.f = fl.total.item<double>();
  s.h = implicit_hypergradient(F, fl.total, {net.alpha()}, net.parameters(), first_order);
  return s;
}

struct Searcher::Impl : CommandState {
  using CommandState::CommandState;
  SearchConfig search = cfg.typed_section<SearchConfig>();  // the "search" section, read once
  SuperNetOptions so;
  PairDataset wdata, adata;  // weight split (f), architecture split (F)
  DevicePlan device;
  SuperNet net{nullptr};
  std::shared_ptr<torch::nn::Module> arch;  // holds alpha as a parameter for Adam / checkpoints
  std::unique_ptr<Adam> opt, aopt;
  LatencyTable lat;
  FusionLossWeights w;
  std::vector<std::string> notes;

  SearchStats step(int64_t k);
  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);
};

Searcher::Searcher(const CommandConfig& config, const std::string& run_dir, bool quiet)
    : impl_(std::make_unique<Impl>(config, run_dir, quiet)) {
  Impl& m = *impl_;
  const Config& b = m.cfg.base;
  if (b.runtime.threads > 0) torch::set_num_threads(static_cast<int>(b.runtime.threads));
  m.so.channels = b.model.channels > 0 ? static_cast<int>(b.model.channels) : 8;
  m.so.downscale = static_cast<int>(m.search.downscale);
  m.so.head = parse_head(m.search.head);
  m.so.cells = static_cast<int>(m.search.cells);
  m.so.edges = 2;
  m.so.candidates = m.search.candidates;
  m.so.validate();
  if (b.optim.crop % m.so.downscale) throw Error("search: crop must be divisible by search.downscale");
  m.w = fusion_loss_weights(b);

  PairDataset all = PairDataset::load(b.data_sources());
  m.notes = all.notes();
  const auto n_val = static_cast<size_t>(std::lround(static_cast<double>(all.size()) * m.search.val_fraction));
  if (n_val < 1 || n_val >= all.size())
    throw Error("search: needs at least 2 pairs to split into a weight and an architecture set (have " +
                std::to_string(all.size()) + ")");
  std::tie(m.wdata, m.adata) = all.split_holdout(n_val);  // evenly spaced in name order

  torch::manual_seed(static_cast<uint64_t>(b.optim.seed));
  m.net = SuperNet(m.so);
  m.device = resolve_device(b, /*mixed_precision=*/false);
  m.net->to(m.device.device);
  // alpha is no registered parameter of the supernet (the arch optimiser owns
  // it): moved in place, so the supernet and `arch` keep sharing it.
  m.net->alpha().set_data(m.net->alpha().data().to(m.device.device));
  m.net->train();
  m.arch = std::make_shared<torch::nn::Module>();
  m.arch->register_parameter("alpha", m.net->alpha());
  m.opt = std::make_unique<Adam>(*m.net);
  m.aopt = std::make_unique<Adam>(*m.arch, 0.5, 0.999);  // the reference's arch optimiser betas

  // Latency table: cached in the run folder (a resumed run keeps its table).
  const int lw = static_cast<int>(m.search.latency_width), lh = static_cast<int>(m.search.latency_height);
  const int lt = static_cast<int>(m.search.latency_threads);
  const std::string cache = run_dir + "/latency.json";
  bool have = false;
  if (fs::exists(cache)) {
    LatencyTable t = LatencyTable::from_json(nlohmann::json::parse(read_text(cache)));
    if (t.matches(m.so, lw, lh, lt)) m.lat = t, have = true;
  }
  if (!have) {
    if (!quiet) std::fprintf(stderr, "timfusion-train search: measuring the per-op latency table (%d thread(s))...\n", lt);
    m.lat = measure_latency(m.so, lw, lh, lt, static_cast<int>(m.search.latency_reps));
    fs::create_directories(run_dir);
    write_text_atomic(cache, m.lat.to_json().dump(2) + "\n");
  }
}

Searcher::~Searcher() = default;

SuperNetImpl& Searcher::supernet() { return *impl_->net; }
const LatencyTable& Searcher::latency() const { return impl_->lat; }
ArchSpec Searcher::genotype() const { return impl_->net->derive(impl_->search.name); }
SearchStats Searcher::step(int64_t k) { return impl_->step(k); }

SearchStats Searcher::Impl::step(int64_t k) {
  SearchStats st;
  const Config& b = cfg.base;
  st.lr = scheduled_lr(b, k);
  const uint64_t seed = static_cast<uint64_t>(b.optim.seed);
  const int n = static_cast<int>(b.optim.batch), crop = static_cast<int>(b.optim.crop);
  const bool flip = b.optim.flip;
  SearchBatch tr = batch_of(wdata, seed, k, 0, n, crop, flip, device.device);
  auto params = net->parameters();
  opt->zero_grad();
  if (k >= search.alpha_start) {
    SearchBatch va = batch_of(adata, seed, k, 1, n, crop, flip, device.device);
    IasStep s = ias_hypergradient(*net, &lat, search.latency_weight, tr, va, w, search.hypergradient == "first-order",
                                  search.latency_budget);
    {
      torch::NoGradGuard ng;
      net->alpha().mutable_grad() = s.h.g_alpha[0].clone();
      for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = s.h.df_domega[i].clone();
    }
    aopt->step(search.alpha_lr);
    st.f = s.f, st.F_fusion = s.F_fusion, st.latency_ms = s.latency_ms, st.c = s.h.c;
    st.g_alpha_norm = s.h.g_alpha[0].norm().item<double>();
  } else {
    auto l = fusion_losses(net->forward(tr.ir, tr.vis), tr.ir, tr.vis, w);
    l.total.backward();
    if (net->alpha().grad().defined()) net->alpha().mutable_grad().zero_();
    st.f = l.total.item<double>();
    st.latency_ms = lat.expected(net->probabilities()).item<double>();
  }
  if (b.optim.grad_clip > 0) clip_grad_norm(*net, b.optim.grad_clip);
  opt->step(st.lr);
  done = k + 1;
  return st;
}

void Searcher::Impl::save_checkpoint(const std::string& path) const {
  SafetensorsFile f;
  save_module(f, *net, "supernet/");
  opt->save(f, "adam.omega/");
  save_module(f, *arch, "arch/");
  aopt->save(f, "adam.alpha/");
  set_checkpoint_progress(f, *this);
  f.metadata["timfusion.search"] = nlohmann::json{{"candidates", so.candidates}, {"channels", so.channels},
                                                  {"downscale", so.downscale},
                                                  {"head", head_name(so.head)}, {"cells", so.cells}}
                                       .dump();
  write_checkpoint(path, f);
}

void Searcher::Impl::load_checkpoint(const std::string& path) {
  SafetensorsFile f = read_checkpoint(path, *this);
  load_module(*net, f, "supernet/", path);
  opt->load(f, "adam.omega/");
  load_module(*arch, f, "arch/", path);
  aopt->load(f, "adam.alpha/");
}

std::string Searcher::alpha_csv() const {
  const auto& so = impl_->so;
  auto a = impl_->net->alpha().detach(), p = impl_->net->probabilities().detach();
  std::string s = "op,latency_ms";
  for (int e = 0; e < so.edges; ++e) s += ",edge" + std::to_string(e) + "_alpha,edge" + std::to_string(e) + "_softmax";
  s += "\n";
  for (size_t k = 0; k < so.candidates.size(); ++k) {
    s += so.candidates[k] + "," + fmt("%.5f", impl_->lat.op_ms.at(so.candidates[k]));
    for (int e = 0; e < so.edges; ++e)
      s += "," + fmt("%.6f", a[e][static_cast<int64_t>(k)].item<double>()) + "," + fmt("%.6f", p[e][static_cast<int64_t>(k)].item<double>());
    s += "\n";
  }
  return s;
}

std::string Searcher::alpha_markdown() const {
  const auto& so = impl_->so;
  auto a = impl_->net->alpha().detach(), p = impl_->net->probabilities().detach();
  auto best = a.argmax(1);
  std::string s = "| op | latency ms |";
  for (int e = 0; e < so.edges; ++e) s += " edge " + std::to_string(e) + " softmax (alpha) |";
  s += "\n|---|---|";
  for (int e = 0; e < so.edges; ++e) s += "---|";
  s += "\n";
  for (size_t k = 0; k < so.candidates.size(); ++k) {
    s += "| " + so.candidates[k] + " | " + fmt("%.3f", impl_->lat.op_ms.at(so.candidates[k])) + " |";
    for (int e = 0; e < so.edges; ++e) {
      const bool win = best[e].item<int64_t>() == static_cast<int64_t>(k);
      s += std::string(" ") + (win ? "**" : "") + fmt("%.3f", p[e][static_cast<int64_t>(k)].item<double>()) +
           (win ? "**" : "") + " (" + fmt("%+.3f", a[e][static_cast<int64_t>(k)].item<double>()) + ") |";
    }
    s += "\n";
  }
  return s;
}

int Searcher::run(long stop_at, bool resume, const std::string& command_line) {
  Impl& m = *impl_;
  const std::string ckpt = m.dir + "/checkpoint.safetensors";
  if (resume) {
    require_checkpoint_to_resume(ckpt, m.dir);
    m.load_checkpoint(ckpt);
    if (!m.quiet)
      std::fprintf(stderr, "timfusion-train search: resuming %s at step %lld\n", m.dir.c_str(), static_cast<long long>(m.done));
  }
  const int64_t steps = m.cfg.base.optim.steps, ck_every = m.cfg.base.output.checkpoint_every;
  if (m.done > steps)
    throw Error(ckpt + " is at step " + std::to_string(m.done) + ", beyond steps = " + std::to_string(steps));
  m.sessions.push_back(command_line);
  write_run_config(m.cfg, m.dir);

  CsvLog log, alog;
  log.open(m.dir + "/log.csv", kColumns, resume ? m.done : -1);
  std::vector<std::string> acols = {"step"};
  for (int e = 0; e < m.so.edges; ++e)
    for (const auto& c : m.so.candidates) acols.push_back("edge" + std::to_string(e) + "." + c);
  alog.open(m.dir + "/alpha_log.csv", acols, resume ? m.done : -1);

  auto plots = [&]() {
    std::vector<Series> s;
    for (size_t c : {1, 2}) {
      Series se;
      se.name = kColumns[c];
      for (const auto& r : log.rows()) se.x.push_back(r[0]), se.y.push_back(r[c]);
      s.push_back(std::move(se));
    }
    write_curve_png(m.dir + "/loss_curve.png", "timfusion-train search: fusion losses (f: weight split, F: alpha split)", s);
    std::vector<Series> a;
    for (size_t c = 1; c < acols.size(); ++c) {
      Series se;
      se.name = acols[c];
      for (const auto& r : alog.rows()) se.x.push_back(r[0]), se.y.push_back(r[c]);
      a.push_back(std::move(se));
    }
    write_curve_png(m.dir + "/alpha.png", "softmax(alpha) per edge and op", a, 1200, 700);
  };

  if (!m.quiet) {
    std::fprintf(stderr, "timfusion-train search: supernet %d channels, downscale %d, %d cells x 2 edges x %zu ops, %lld weights\n",
                 m.so.channels, m.so.downscale, m.so.cells, m.so.candidates.size(),
                 static_cast<long long>(nn::count_parameters(*m.net)));
    std::fprintf(stderr, "  weight split %zu pairs, alpha split %zu pairs; run folder %s\n", m.wdata.size(), m.adata.size(),
                 m.dir.c_str());
    for (const auto& n : m.notes) std::fprintf(stderr, "  note: %s\n", n.c_str());
    std::printf("%s\n", m.lat.markdown().c_str());
    std::fflush(stdout);
  }

  StepLoop loop("search", m.dir, steps, ck_every, stop_at, m.quiet);
  SearchStats st;
  loop.step = [&] { st = m.step(m.done); };
  DivergenceGuard divergence;  // an exploding loss stops the search, not only NaN (issue 27)
  loop.record = [&] {
    divergence.check(st.f, m.done);
    log.append({static_cast<double>(m.done), st.f, st.F_fusion, st.latency_ms, st.c, st.g_alpha_norm, st.lr, m.elapsed});
    std::vector<double> arow = {static_cast<double>(m.done)};
    auto p = m.net->probabilities().detach();
    for (int e = 0; e < m.so.edges; ++e)
      for (size_t k = 0; k < m.so.candidates.size(); ++k) arow.push_back(p[e][static_cast<int64_t>(k)].item<double>());
    alog.append(arow);
    std::string status = "f " + fmt("%.4f", log.recent_mean(1, 20));
    if (std::isfinite(st.F_fusion)) status += " F " + fmt("%.4f", st.F_fusion) + " c " + fmt("%+.3f", st.c);
    return status + " E[lat] " + fmt("%.2f", st.latency_ms) + " ms";
  };
  loop.flush = [&] {
    log.flush();
    alog.flush();
  };
  loop.checkpoint = [&] {
    m.save_checkpoint(ckpt);
    plots();
  };
  if (std::optional<int> code = run_step_loop(loop, m)) return *code;

  // Outputs: the genotype, the alpha table, and the derived network's latency.
  ArchSpec g = genotype();
  write_text_atomic(m.dir + "/genotype.json", genotype_json(g));
  write_text_atomic(m.dir + "/alpha.csv", alpha_csv());
  const double predicted = m.lat.predict(g.normal);
  auto [best, med] = time_network(g, m.lat.width, m.lat.height, m.lat.threads, static_cast<int>(m.search.latency_reps));
  std::string md = "# Implicit architecture search: " + g.name + "\n\n";
  md += "Run folder: `" + m.dir + "`; " + std::to_string(steps) + " steps, " + fmt("%.0f", m.elapsed) + " s.\n\n";
  md += "Command: `" + (m.sessions.empty() ? std::string() : m.sessions.front()) + "`\n\n";
  md += "Hypergradient: " + m.search.hypergradient + "; latency weight lambda = " + fmt("%g", m.search.latency_weight) +
        " per ms over a budget of " + fmt("%g", m.search.latency_budget) + " ms; alpha lr " + fmt("%g", m.search.alpha_lr) + ".\n\n";
  md += "## softmax(alpha) per edge (raw alpha in parentheses; bold = chosen)\n\n" + alpha_markdown() + "\n";
  md += "Genotype: `" + g.to_json() + "`\n\n";
  md += "Latency of the derived network at " + std::to_string(m.lat.width) + "x" + std::to_string(m.lat.height) + ", " +
        std::to_string(m.lat.threads) + " thread(s): predicted from the table " + fmt("%.2f", predicted) +
        " ms, measured " + fmt("%.2f", best) + " ms (best), " + fmt("%.2f", med) + " ms (median) = " +
        fmt("%.1f", 1000.0 / med) + " fps.\n\n## " + m.lat.markdown();
  write_text_atomic(m.dir + "/alpha.md", md);

  std::printf("\nsoftmax(alpha) per edge (bold = chosen):\n%s\n", alpha_markdown().c_str());
  std::printf("genotype: %s\n", g.to_json().c_str());
  std::printf("latency at %dx%d, %d thread(s): predicted %.2f ms, measured %.2f ms best / %.2f ms median (%.1f fps)\n",
              m.lat.width, m.lat.height, m.lat.threads, predicted, best, med, 1000.0 / med);
  std::printf("written: %s/genotype.json, alpha.md, alpha.csv, latency.json\n", m.dir.c_str());
  return 0;
}

int cmd_search(int argc, char** argv, int first) {
  return run_command<Searcher>(argc, argv, first, search_spec(), kUsage);
}

}  // namespace timfusion::train
