// `timfusion-train meta`: pretext meta-initialisation by first-order Reptile
// over fusion tasks (meta.h). The inner loop's Adam step is fusion_tuning.cpp's.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "meta/commands.h"
#include "meta/meta.h"
#include "run/divergence.h"
#include "run/checkpoint_integrity.h"
#include "timfusion/torch/state_dict.h"
#include "run/device.h"
#include "run/plot.h"
#include "run/run_dir.h"
#include "run/run_loop.h"
#include "timfusion/error.h"
#include "timfusion/model_file.h"

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {

const char* kMetaUsage =
    "Usage: timfusion-train meta [options]\n"
    "       timfusion-train meta --resume RUN_DIR [--steps N]\n"
    "\n"
    "Pretext meta-initialisation (TIM's PMI) by first-order Reptile: each outer step\n"
    "adapts a copy of the initialisation to one pretext task (meta.inner_steps Adam\n"
    "steps of the fusion losses) and moves the initialisation towards it by eps.\n"
    "Default tasks: IVIF (roadscene minus cddfuse_test50, msrs_seg, llvip_sample,\n"
    "m3fd_sample; tno42 is a test set), MRI-CT and MRI-SPECT (train splits; MRI in\n"
    "the ir slot, CT / SPECT luma in vis); MRI-PET is left out\n"
    "for evaluation. Default network: ivif-light at 16 channels; default recipe\n"
    "120 outer x 25 inner steps at lr 3e-4 (docs/meta-init-mri-pet.md). Writes\n"
    "model.safetensors (the meta-initialisation), log.csv, loss_curve.png.\n"
    "Adapt it with `timfusion-train adapt --init RUN/model.safetensors --lr 3e-4`.\n"
    "  --inner-steps N   --epsilon X   (meta.inner_steps, meta.epsilon; see --help-config)\n"
    "\n";

}  // namespace

std::string shared_data_dir() { return absolute_path(data_root()); }

nlohmann::json default_meta_tasks(const std::string& d) {
  const std::string hm = d + "/harvard_medical";
  auto medical = [&](const std::string& task, const std::string& other) {
    return nlohmann::json{{"ir", hm + "/" + task + "/mri"},
                          {"vis", hm + "/" + task + "/" + other},
                          {"split", hm + "/" + task + "/split.txt"},
                          {"use", "train"}};
  };
  return nlohmann::json::array(
      {{{"name", "ivif"},
        // TNO42 is a test set: never in the IVIF pretext data.
        {"data",
         {{{"dir", d + "/roadscene"}, {"exclude", d + "/roadscene/subsets/cddfuse_test50.txt"}},
          {{"dir", d + "/msrs_seg"}},
          {{"dir", d + "/llvip_sample"}},
          {{"dir", d + "/m3fd_sample"}}}}},
       {{"name", "mri-ct"}, {"data", {medical("mri_ct", "ct")}}},
       {{"name", "mri-spect"}, {"data", {medical("mri_spect", "spect")}}}});
}

std::vector<MetaTask> load_tasks(const nlohmann::json& tasks, const std::string& work_dir) {
  if (!tasks.is_array() || tasks.empty()) throw Error("meta.tasks must be a non-empty list of {\"name\", \"data\"}");
  std::vector<MetaTask> out;
  std::set<std::string> names;
  for (const auto& t : tasks) {
    if (!t.is_object() || !t.contains("name") || !t.contains("data") || !t["name"].is_string())
      throw Error("meta.tasks: each task needs \"name\" (a string) and \"data\" (a list of data entries)");
    MetaTask m;
    m.name = t["name"].get<std::string>();
    if (!names.insert(m.name).second) throw Error("meta.tasks: task \"" + m.name + "\" is listed twice");
    m.entries = t["data"];
    m.data = PairDataset::load(resolve_sources(t["data"], work_dir, "meta task " + m.name));
    out.push_back(std::move(m));
  }
  return out;
}

void copy_state(torch::nn::Module& dst, const torch::nn::Module& src) {
  torch::NoGradGuard ng;
  auto dp = dst.named_parameters(true), sp = src.named_parameters(true);
  for (const auto& kv : dp) kv.value().copy_(sp[kv.key()]);
  auto db = dst.named_buffers(true), sb = src.named_buffers(true);
  for (const auto& kv : db) kv.value().copy_(sb[kv.key()]);
}

void reptile_update(torch::nn::Module& theta, const torch::nn::Module& phi, double eps) {
  torch::NoGradGuard ng;
  auto tp = theta.named_parameters(true), pp = phi.named_parameters(true);
  for (const auto& kv : tp) {
    auto& t = kv.value();
    t.add_(pp[kv.key()] - t, eps);
  }
  auto tb = theta.named_buffers(true), pb = phi.named_buffers(true);
  for (const auto& kv : tb) {
    auto& t = kv.value();
    if (t.is_floating_point())
      t.add_(pb[kv.key()] - t, eps);
    else
      t.copy_(pb[kv.key()]);
  }
}

const CommandSpec& meta_spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "meta";
    using T = KeyType;
    s.keys = {
        {"tasks", T::Json, default_meta_tasks(shared_data_dir()), 0, 0, {},
         "pretext tasks: [{\"name\", \"data\": [entries]}]; an entry is a folder with ir/ and vis/, or "
         "{\"dir\"|\"ir\"+\"vis\", \"exclude\": names file | \"split\": split.txt + \"use\": part}. "
         "Default: IVIF (roadscene minus cddfuse_test50, msrs_seg, llvip_sample, m3fd_sample), MRI-CT and MRI-SPECT train splits (MRI in the ir slot)"},
        {"inner_steps", T::Int, 25, 1, 10000, {}, "Adam steps on one task per outer step (fresh Adam moments each time)"},
        {"epsilon", T::Number, 0.5, 0, 1, {}, "Reptile outer step size at step 0: theta += eps (phi - theta)"},
        {"epsilon_min", T::Number, 0.05, 0, 1, {}, "outer step size at the last step (linear decay)"},
        {"task_order", T::String, "round-robin", 0, 0, {"round-robin", "random"}, "which task each outer step takes"},
    };
    // 120 x 25 inner steps at lr 3e-4: the recipe of docs/meta-init-mri-pet.md
    // (k = 5 and inner lr 1e-3 gave a worse start on held-out MRI-PET).
    s.base_defaults = {{"arch", "ivif-light"}, {"channels", 16},   {"steps", 120},         {"batch", 4},
                       {"crop", 96},           {"lr", 3e-4},       {"lr_schedule", "constant"}, {"threads", 1},
                       {"checkpoint_every", 10}, {"preview_every", 0}};
    s.flags = {{"--inner-steps", "meta.inner_steps"}, {"--epsilon", "meta.epsilon"}};
    s.data_required = false;
    return s;
  }();
  return spec;
}

struct MetaLearner::Impl : CommandState {
  using CommandState::CommandState;
  MetaConfig meta = cfg.typed_section<MetaConfig>();  // the "meta" section, read once
  ArchSpec spec;
  std::vector<MetaTask> tasks;
  DevicePlan device;
  nn::TimNet theta{nullptr}, phi{nullptr};
  FusionLossWeights w;

  int task_of(int64_t k) const {
    const auto T = static_cast<uint64_t>(tasks.size());
    if (meta.task_order == "random")
      return static_cast<int>(mix64(static_cast<uint64_t>(cfg.base.optim.seed) * 0x9e37ULL + static_cast<uint64_t>(k)) % T);
    return static_cast<int>(static_cast<uint64_t>(k) % T);
  }
  double epsilon_at(int64_t k) const {
    const double e0 = meta.epsilon, e1 = meta.epsilon_min;
    const int64_t steps = cfg.base.optim.steps;
    const double p = steps > 1 ? static_cast<double>(k) / static_cast<double>(steps - 1) : 0.0;
    return e0 + (e1 - e0) * std::min(1.0, p);
  }
  MetaStats step(int64_t k);
};

MetaLearner::MetaLearner(const CommandConfig& config, const std::string& run_dir, bool quiet)
    : impl_(std::make_unique<Impl>(config, run_dir, quiet)) {
  Impl& m = *impl_;
  const Config& b = m.cfg.base;
  m.device = resolve_device(b, /*mixed_precision=*/false);  // before loading data: errors come first
  if (b.runtime.threads > 0) torch::set_num_threads(static_cast<int>(b.runtime.threads));
  m.spec = ArchSpec::resolve(b.model.arch);
  if (b.model.channels > 0) m.spec.channels = static_cast<int>(b.model.channels);
  m.spec.validate();
  m.w = fusion_loss_weights(b);
  m.tasks = load_tasks(m.meta.tasks, run_dir);
  torch::manual_seed(static_cast<uint64_t>(b.optim.seed));
  m.theta = nn::TimNet(m.spec);
  if (!b.model.init.empty()) {
    ModelFile f = load_model_file(b.model.init, b.model.arch);
    nn::load_state(*m.theta, f.weights, b.model.init);
  }
  m.phi = nn::TimNet(m.spec);
  m.theta->to(m.device.device);
  m.phi->to(m.device.device);
  copy_state(*m.phi, *m.theta);
  m.theta->train();
  m.phi->train();
}

MetaLearner::~MetaLearner() = default;
MetaStats MetaLearner::step(int64_t k) { return impl_->step(k); }
double MetaLearner::epsilon_at(int64_t k) const { return impl_->epsilon_at(k); }
SafetensorsFile MetaLearner::theta_state() const { return nn::to_safetensors(*impl_->theta); }
SafetensorsFile MetaLearner::adapted_state() const { return nn::to_safetensors(*impl_->phi); }
const std::vector<MetaTask>& MetaLearner::tasks() const { return impl_->tasks; }
const ArchSpec& MetaLearner::spec() const { return impl_->spec; }

MetaStats MetaLearner::Impl::step(int64_t k) {
  MetaStats st;
  const Config& b = cfg.base;
  st.task = task_of(k);
  st.lr = scheduled_lr(b, k);
  st.epsilon = epsilon_at(k);
  const int64_t inner = meta.inner_steps;
  copy_state(*phi, *theta);
  Adam opt(*phi);  // fresh moments: each inner loop is an independent adaptation
  const auto& task = tasks[static_cast<size_t>(st.task)];
  for (int64_t j = 0; j < inner; ++j) {
    // Batch index k*inner + j, stream 1 + task: every (step, task) draws its own crops.
    Batch batch = task.data.sample(static_cast<uint64_t>(b.optim.seed), k * inner + j, 1 + static_cast<uint64_t>(st.task),
                                   static_cast<int>(b.optim.batch), static_cast<int>(b.optim.crop), b.optim.flip);
    double l = fusion_step(*phi, opt, batch, w, st.lr, b.optim.grad_clip).total.item<double>();
    if (j == 0) st.inner_first = l;
    st.inner_last = l;
  }
  reptile_update(*theta, *phi, st.epsilon);
  done = k + 1;
  return st;
}

int MetaLearner::run(long stop_at, bool resume, const std::string& command_line) {
  Impl& m = *impl_;
  const std::string ckpt = m.dir + "/checkpoint.safetensors";
  if (resume) require_checkpoint_to_resume(ckpt, m.dir);  // never a silent restart over a finished run
  if (resume) {
    SafetensorsFile f = read_checkpoint(ckpt, m);
    load_module(*m.theta, f, "theta/", ckpt);
    if (!m.quiet) std::fprintf(stderr, "timfusion-train meta: resuming %s at step %lld\n", m.dir.c_str(), static_cast<long long>(m.done));
  }
  const int64_t steps = m.cfg.base.optim.steps, ck_every = m.cfg.base.output.checkpoint_every;
  if (m.done > steps) throw Error(ckpt + " is beyond steps = " + std::to_string(steps));
  m.sessions.push_back(command_line);
  write_run_config(m.cfg, m.dir);
  auto save = [&]() {
    SafetensorsFile f;
    save_module(f, *m.theta, "theta/");
    set_checkpoint_progress(f, m);
    describe_model(f, m.spec);
    write_checkpoint(ckpt, f);
  };
  const std::vector<std::string> cols = {"step", "task", "epsilon", "inner_first", "inner_last", "lr", "seconds"};
  CsvLog log;
  log.open(m.dir + "/log.csv", cols, resume ? m.done : -1);
  auto curve = [&]() {
    std::vector<Series> s;
    for (size_t t = 0; t < m.tasks.size(); ++t) {
      Series se;
      se.name = m.tasks[t].name + " (loss of theta's first inner step)";
      for (const auto& r : log.rows())
        if (static_cast<size_t>(r[1]) == t) se.x.push_back(r[0]), se.y.push_back(r[3]);
      s.push_back(std::move(se));
    }
    write_curve_png(m.dir + "/loss_curve.png", "timfusion-train meta: task loss at the meta-initialisation", s);
  };
  if (!m.quiet) {
    std::fprintf(stderr, "timfusion-train meta: %s, %d channels, %lld parameters; Reptile, %lld inner steps; run folder %s\n",
                 m.spec.name.c_str(), m.spec.channels, static_cast<long long>(nn::count_parameters(*m.theta)),
                 static_cast<long long>(m.meta.inner_steps), m.dir.c_str());
    std::fprintf(stderr, "  device: %s\n", m.device.describe().c_str());
    for (const auto& t : m.tasks) {
      std::fprintf(stderr, "  task %s: %zu pairs\n", t.name.c_str(), t.data.size());
      for (const auto& n : t.data.notes()) std::fprintf(stderr, "    note: %s\n", n.c_str());
    }
  }
  StepLoop loop("meta", m.dir, steps, ck_every, stop_at, m.quiet);
  MetaStats st;
  loop.step = [&] { st = m.step(m.done); };
  // One guard per pretext task: their losses have scales of their own, and a
  // task whose loss explodes stops the run, not only NaN (issue 27).
  std::vector<DivergenceGuard> divergence(m.tasks.size());
  loop.record = [&] {
    divergence.at(static_cast<size_t>(st.task)).check(st.inner_last, m.done,
                                                     "loss of task " + m.tasks[static_cast<size_t>(st.task)].name);
    log.append({static_cast<double>(m.done), static_cast<double>(st.task), st.epsilon, st.inner_first, st.inner_last, st.lr, m.elapsed});
    return m.tasks[static_cast<size_t>(st.task)].name + " " + fmt("%.4f", st.inner_first) + " -> " +
           fmt("%.4f", st.inner_last) + " eps " + fmt("%.3f", st.epsilon);
  };
  loop.flush = [&] { log.flush(); };
  loop.checkpoint = [&] {
    save();
    curve();
  };
  if (std::optional<int> code = run_step_loop(loop, m)) return *code;

  nlohmann::json tj = nlohmann::json::array();
  for (size_t t = 0; t < m.tasks.size(); ++t) {
    double sum = 0;
    size_t n = 0;
    for (const auto& r : log.rows())
      if (static_cast<size_t>(r[1]) == t && r[0] > static_cast<double>(steps) * 0.8) sum += r[3], ++n;
    tj.push_back({{"name", m.tasks[t].name}, {"data", m.tasks[t].entries}, {"pairs", m.tasks[t].data.size()},
                  {"loss_at_init_last_20pct", n ? sum / static_cast<double>(n) : NAN}});
  }
  nlohmann::json prov = {{"tool", "timfusion-train meta"},
                         {"method", "first-order Reptile over pretext fusion tasks (TIM pretext meta-initialisation)"},
                         {"git_commit", git_commit()},
                         {"command_lines", m.sessions},
                         {"tasks", tj},
                         {"outer_steps", steps},
                         {"inner_steps", m.meta.inner_steps},
                         {"epsilon", {m.meta.epsilon, m.meta.epsilon_min}},
                         {"train_seconds", std::round(m.elapsed)},
                         {"finished", utc_now()},
                         {"config", m.cfg.values()}};
  write_model_file(m.dir + "/model.safetensors", *m.theta, m.spec, prov.dump());
  if (!m.quiet)
    std::fprintf(stderr, "timfusion-train meta: done: %lld outer steps, %.0f s; meta-initialisation %s/model.safetensors\n",
                 static_cast<long long>(steps), m.elapsed, m.dir.c_str());
  return 0;
}

int cmd_meta(int argc, char** argv, int first) { return run_command<MetaLearner>(argc, argv, first, meta_spec(), kMetaUsage); }

}  // namespace timfusion::train
