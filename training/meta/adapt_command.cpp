// `timfusion-train adapt`: fine-tunes weights to a new task with held-out
// evaluation along the way (meta.h); `adapt --compare` is adapt_compare.cpp.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "meta/adapt_compare.h"
#include "meta/commands.h"
#include "meta/meta.h"
#include "run/divergence.h"
#include "run/checkpoint_integrity.h"
#include "timfusion/torch/state_dict.h"
#include "run/plot.h"
#include "run/run_dir.h"
#include "run/run_loop.h"
#include "timfusion/error.h"
#include "timfusion/metrics.h"
#include "run/device.h"
#include "timfusion/model_file.h"

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {

const char* kAdaptUsage =
    "Usage: timfusion-train adapt --init W.safetensors (--split-dir DIR | --data DIR ...) [options]\n"
    "       timfusion-train adapt --compare RUN[=LABEL] --compare RUN[=LABEL] ... [--plot OUT.png] [--table OUT.md]\n"
    "\n"
    "Fine-tunes weights (a meta-initialisation, any model, or a random init when\n"
    "--init is not given: --arch/--channels) to a new task for a few hundred Adam\n"
    "steps, evaluating the held-out pairs (fusion-loss terms, --metrics) after the\n"
    "steps in adapt.eval_at. --split-dir DIR takes a folder with split.txt\n"
    "(harvard_medical/<task>): trains on \"train\", evaluates on \"test\".\n"
    "Writes model.safetensors, log.csv, eval.csv, loss_curve.png. For a\n"
    "meta-initialisation use its inner-loop lr (meta's default: --lr 3e-4).\n"
    "--compare draws eval.csv of several runs against the step (one panel per column).\n"
    "\n";

}  // namespace

const CommandSpec& adapt_spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "adapt";
    using T = KeyType;
    s.keys = {
        {"split_dir", T::String, "", 0, 0, {},
         "a task folder with split.txt (e.g. harvard_medical/mri_pet): trains on its train part, evaluates on its test part"},
        {"train", T::Json, nlohmann::json::array(), 0, 0, {}, "training entries (as meta.tasks' data); empty: split_dir or data"},
        {"eval", T::Json, nlohmann::json::array(), 0, 0, {}, "held-out entries evaluated along the way; empty: split_dir's test part"},
        {"eval_at", T::Json, nlohmann::json::array({0, 5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 500}), 0, 0, {},
         "steps after which the held-out pairs are evaluated (and the last step)"},
        {"eval_every", T::Int, 0, 0, 1e9, {}, "also evaluate every N steps (0: only eval_at)"},
        {"metrics", T::String, "mi,qabf,vif,ssim", 0, 0, {}, "core fusion metrics on the held-out pairs (timfusion-eval names)"},
        {"bn_recalibrate", T::Int, 0, 0, 1e6, {},
         "before each evaluation and before writing the model, re-estimate the BatchNorm statistics as the average "
         "over N training batches (batch x crop, as in training); 0: keep the running averages of the last batches"},
    };
    s.base_defaults = {{"steps", 300}, {"batch", 4}, {"crop", 96}, {"lr", 1e-3}, {"lr_schedule", "constant"},
                       {"threads", 1}, {"checkpoint_every", 50}, {"preview_every", 0}};
    s.flags = {{"--split-dir", "adapt.split_dir"}, {"--metrics", "adapt.metrics"}, {"--bn-recalibrate", "adapt.bn_recalibrate"}};
    s.data_required = false;
    return s;
  }();
  return spec;
}

struct Adapter::Impl : CommandState {
  using CommandState::CommandState;
  AdaptConfig adapt = cfg.typed_section<AdaptConfig>();  // the "adapt" section, read once
  ArchSpec spec;
  std::string init_desc;
  PairDataset train, held;
  std::vector<DataSource> train_src, held_src;
  DevicePlan device;
  nn::TimNet net{nullptr};
  std::unique_ptr<Adam> opt;
  FusionLossWeights w;
  std::vector<std::string> metrics;

  void recalibrate() {
    const Config& b = cfg.base;
    if (adapt.bn_recalibrate > 0)
      recalibrate_bn(*net, train, static_cast<int>(adapt.bn_recalibrate), static_cast<int>(b.optim.batch),
                     static_cast<int>(b.optim.crop), static_cast<uint64_t>(b.optim.seed));
  }
};

Adapter::Adapter(const CommandConfig& config, const std::string& run_dir, bool quiet)
    : impl_(std::make_unique<Impl>(config, run_dir, quiet)) {
  Impl& m = *impl_;
  const Config& b = m.cfg.base;
  if (b.runtime.threads > 0) torch::set_num_threads(static_cast<int>(b.runtime.threads));
  m.w = fusion_loss_weights(b);
  m.metrics = m.adapt.metrics.empty() ? std::vector<std::string>{} : parse_metric_list(m.adapt.metrics);

  nlohmann::json tr = m.adapt.train, ev = m.adapt.eval;
  if (!m.adapt.split_dir.empty()) {
    auto [a, t] = split_dir_entries(m.adapt.split_dir);
    if (tr.empty()) tr = nlohmann::json::array({a});
    if (ev.empty()) ev = nlohmann::json::array({t});
  }
  if (tr.empty()) tr = b.data;
  if (tr.empty()) throw Error("adapt: no training data: give --split-dir DIR, --data DIR or adapt.train");
  m.train_src = resolve_sources(tr, run_dir, "adapt training data");
  m.train = PairDataset::load(m.train_src);
  if (!ev.empty()) {
    m.held_src = resolve_sources(ev, run_dir, "adapt held-out data");
    m.held = PairDataset::load(m.held_src);
    std::set<std::string> train_names;
    for (size_t i = 0; i < m.train.size(); ++i) train_names.insert(m.train.at(i).source + "/" + m.train.at(i).name);
    for (size_t i = 0; i < m.held.size(); ++i)
      if (train_names.count(m.held.at(i).source + "/" + m.held.at(i).name))
        throw Error("adapt: held-out pair " + m.held.at(i).name + " is also a training pair");
  }

  torch::manual_seed(static_cast<uint64_t>(b.optim.seed));
  if (!b.model.init.empty()) {
    ModelFile f = load_model_file(b.model.init);
    m.spec = f.arch;
    if (b.model.channels > 0 && b.model.channels != m.spec.channels)
      throw Error("adapt: --channels " + std::to_string(b.model.channels) + " differs from the init's " +
                  std::to_string(m.spec.channels));
    m.net = nn::TimNet(m.spec);
    nn::load_state(*m.net, f.weights, b.model.init);
    m.init_desc = b.model.init;
  } else {
    m.spec = ArchSpec::resolve(b.model.arch);
    if (b.model.channels > 0) m.spec.channels = static_cast<int>(b.model.channels);
    m.spec.validate();
    m.net = nn::TimNet(m.spec);
    m.init_desc = "random (seed " + std::to_string(b.optim.seed) + ")";
  }
  m.device = resolve_device(b, /*mixed_precision=*/false);
  m.net->to(m.device.device);
  m.net->train();
  m.opt = std::make_unique<Adam>(*m.net);
}

Adapter::~Adapter() = default;
SafetensorsFile Adapter::state() const { return nn::to_safetensors(*impl_->net); }
const ArchSpec& Adapter::spec() const { return impl_->spec; }
EvalResult Adapter::evaluate_now() {
  impl_->recalibrate();
  return evaluate(*impl_->net, impl_->held, impl_->w, impl_->metrics);
}

AdaptStats Adapter::step(int64_t k) {
  Impl& m = *impl_;
  const Config& b = m.cfg.base;
  AdaptStats st;
  st.lr = scheduled_lr(b, k);
  Batch batch = m.train.sample(static_cast<uint64_t>(b.optim.seed), k, 0, static_cast<int>(b.optim.batch),
                               static_cast<int>(b.optim.crop), b.optim.flip);
  FusionLosses l = fusion_step(*m.net, *m.opt, batch, m.w, st.lr, b.optim.grad_clip);
  st.loss = l.total.item<double>();
  st.intensity = l.intensity.item<double>();
  st.gradient = l.gradient.item<double>();
  st.ssim = l.ssim.item<double>();
  m.done = k + 1;
  return st;
}

int Adapter::run(long stop_at, bool resume, const std::string& command_line) {
  Impl& m = *impl_;
  const std::string ckpt = m.dir + "/checkpoint.safetensors";
  if (resume) require_checkpoint_to_resume(ckpt, m.dir);  // never a silent restart over a finished run
  if (resume) {
    SafetensorsFile f = read_checkpoint(ckpt, m);
    load_module(*m.net, f, "fusion/", ckpt);
    m.opt->load(f, "adam.fusion/");
  }
  const int64_t steps = m.cfg.base.optim.steps, ck_every = m.cfg.base.output.checkpoint_every;
  if (m.done > steps) throw Error(ckpt + " is beyond steps = " + std::to_string(steps));
  m.sessions.push_back(command_line);
  write_run_config(m.cfg, m.dir);
  auto save = [&]() {
    SafetensorsFile f;
    save_module(f, *m.net, "fusion/");
    m.opt->save(f, "adam.fusion/");
    set_checkpoint_progress(f, m);
    describe_model(f, m.spec);
    write_checkpoint(ckpt, f);
  };
  std::set<int64_t> eval_steps;
  for (const auto& v : m.adapt.eval_at)
    if (v.is_number_integer() && v.get<int64_t>() <= steps) eval_steps.insert(v.get<int64_t>());
  if (m.adapt.eval_every > 0)
    for (int64_t s = 0; s <= steps; s += m.adapt.eval_every) eval_steps.insert(s);
  eval_steps.insert(steps);

  const std::vector<std::string> cols = {"step", "loss", "intensity", "gradient", "ssim", "lr", "seconds"};
  std::vector<std::string> ecols = {"step", "loss", "intensity", "gradient", "ssim_loss"};
  for (const auto& n : m.metrics) ecols.push_back(n);
  CsvLog log, elog;
  log.open(m.dir + "/log.csv", cols, resume ? m.done : -1);
  const bool have_eval = m.held.size() > 0;
  if (have_eval) elog.open(m.dir + "/eval.csv", ecols, resume ? m.done : -1);
  auto eval_row = [&]() {
    m.recalibrate();
    EvalResult r = evaluate(*m.net, m.held, m.w, m.metrics);
    std::vector<double> row = {static_cast<double>(m.done), r.loss, r.intensity, r.gradient, r.ssim};
    for (const auto& n : m.metrics) row.push_back(r.metrics[n]);
    elog.append(row);
    elog.flush();
    return r;
  };
  if (!m.quiet) {
    std::fprintf(stderr, "timfusion-train adapt: %s, %d channels, init %s; %zu training pairs, %zu held out; run folder %s\n",
                 m.spec.name.c_str(), m.spec.channels, m.init_desc.c_str(), m.train.size(), m.held.size(), m.dir.c_str());
    for (const auto& n : m.train.notes()) std::fprintf(stderr, "  note: %s\n", n.c_str());
  }
  if (have_eval && m.done == 0 && eval_steps.count(0)) eval_row();

  StepLoop loop("adapt", m.dir, steps, ck_every, stop_at, m.quiet);
  loop.announce_stop_at = false;
  AdaptStats st;
  loop.step = [&] { st = step(m.done); };
  DivergenceGuard divergence;  // an exploding loss stops adaptation, not only NaN (issue 27)
  loop.record = [&] {
    divergence.check(st.loss, m.done);
    log.append({static_cast<double>(m.done), st.loss, st.intensity, st.gradient, st.ssim, st.lr, m.elapsed});
    std::string status = "loss " + fmt("%.4f", log.recent_mean(1, 20));
    if (have_eval && eval_steps.count(m.done)) {
      EvalResult r = eval_row();
      status += " held-out " + fmt("%.4f", r.loss);
    }
    return status;
  };
  loop.flush = [&] { log.flush(); };
  loop.checkpoint = save;
  if (std::optional<int> code = run_step_loop(loop, m)) return *code;
  m.recalibrate();
  {
    std::vector<Series> s(1);
    s[0].name = "training loss";
    for (const auto& r : log.rows()) s[0].x.push_back(r[0]), s[0].y.push_back(r[1]);
    if (have_eval) {
      Series e;
      e.name = "held-out loss";
      for (const auto& r : elog.rows()) e.x.push_back(r[0]), e.y.push_back(r[1]);
      s.push_back(e);
    }
    write_curve_png(m.dir + "/loss_curve.png", "timfusion-train adapt", s);
  }
  nlohmann::json held_j = nlohmann::json::object();
  if (have_eval && !elog.rows().empty()) {
    const auto& r = elog.rows().back();
    for (size_t c = 1; c < ecols.size(); ++c) held_j[ecols[c]] = r[c];
    held_j["pairs"] = m.held.size();
  }
  nlohmann::json prov = {{"tool", "timfusion-train adapt"},
                         {"init", m.init_desc},
                         {"git_commit", git_commit()},
                         {"command_lines", m.sessions},
                         {"data", m.train.provenance(m.train_src)},
                         {"held_out", m.held.provenance(m.held_src)},
                         {"held_out_final", held_j},
                         {"steps", steps},
                         {"train_seconds", std::round(m.elapsed)},
                         {"finished", utc_now()},
                         {"config", m.cfg.values()}};
  write_model_file(m.dir + "/model.safetensors", *m.net, m.spec, prov.dump());
  if (!m.quiet) {
    std::fprintf(stderr, "timfusion-train adapt: done: %lld steps, %.0f s; weights %s/model.safetensors\n",
                 static_cast<long long>(steps), m.elapsed, m.dir.c_str());
    if (have_eval) std::fprintf(stderr, "  held-out curve: %s/eval.csv\n", m.dir.c_str());
  }
  return 0;
}

int cmd_adapt(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i)
    if (std::string(argv[i]) == "--compare") return cmd_adapt_compare(argc, argv, first);
  return run_command<Adapter>(argc, argv, first, adapt_spec(), kAdaptUsage);
}

}  // namespace timfusion::train
