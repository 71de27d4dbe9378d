// `timfusion-train meta` and `timfusion-train adapt`.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "meta/commands.h"
#include "meta/meta.h"
#include "nn/state_dict.h"
#include "run/plot.h"
#include "run/run_dir.h"
#include "run/run_loop.h"
#include "timfusion/error.h"
#include "timfusion/metrics.h"
#include "timfusion/model_file.h"
#include "timfusion/pairs.h"

#ifndef TIMFUSION_DATA_DIR
#define TIMFUSION_DATA_DIR "../shared/data"
#endif

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {



torch::Tensor to_tensor(const std::vector<float>& v, int n, int h, int w) {
  return torch::from_blob(const_cast<float*>(v.data()), {n, 1, h, w}, torch::kFloat32).clone();
}

cv::Mat to_u8(const torch::Tensor& t) {  // [1,1,H,W] -> CV_8UC1, round(clamp(y,0,1)*255)
  auto c = (t.detach().clamp(0, 1) * 255).round().to(torch::kUInt8).contiguous();
  cv::Mat m(static_cast<int>(c.size(2)), static_cast<int>(c.size(3)), CV_8UC1, c.data_ptr<uint8_t>());
  return m.clone();
}

cv::Mat as_u8(const cv::Mat& m) {
  if (m.depth() == CV_8U) return m;
  cv::Mat u;
  m.convertTo(u, CV_8U, 255.0);
  return u;
}


}  // namespace

// ---------------------------------------------------------------- shared pieces

std::string shared_data_dir() {
  const char* env = std::getenv("TIMFUSION_DATA_DIR");
  return fs::absolute(env && *env ? env : TIMFUSION_DATA_DIR).lexically_normal().string();
}

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
        {"data", {{{"dir", d + "/roadscene"}, {"exclude", d + "/roadscene/subsets/cddfuse_test50.txt"}}, {{"dir", d + "/tno42"}}}}},
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

double fusion_step(nn::TimNetImpl& net, Adam& opt, const Batch& b, const FusionLossWeights& w, double lr, double grad_clip) {
  auto ir = to_tensor(b.ir, b.n, b.h, b.w), vis = to_tensor(b.vis, b.n, b.h, b.w);
  auto l = fusion_losses(net.forward(ir, vis), ir, vis, w);
  opt.zero_grad();
  l.total.backward();
  if (grad_clip > 0) clip_grad_norm(net, grad_clip);
  opt.step(lr);
  return l.total.item<double>();
}

EvalResult evaluate(nn::TimNetImpl& net, const PairDataset& data, const FusionLossWeights& w,
                    const std::vector<std::string>& metrics) {
  EvalResult r;
  const bool was_training = net.is_training();
  net.eval();
  torch::NoGradGuard ng;
  for (size_t i = 0; i < data.size(); ++i) {
    Batch b = data.center(i, 0);
    auto ir = to_tensor(b.ir, 1, b.h, b.w), vis = to_tensor(b.vis, 1, b.h, b.w);
    auto fused = net.forward(ir, vis);
    auto l = fusion_losses(fused, ir, vis, w);
    r.loss += l.total.item<double>();
    r.intensity += l.intensity.item<double>();
    r.gradient += l.gradient.item<double>();
    r.ssim += l.ssim.item<double>();
    if (!metrics.empty()) {
      const Sample& s = data.at(i);
      cv::Mat f8 = to_u8(fused);
      for (const auto& m : metrics) r.metrics[m] += compute_metric(m, as_u8(s.ir), as_u8(s.vis_y), f8);
    }
    ++r.pairs;
  }
  if (was_training) net.train();
  const double n = std::max<double>(1.0, static_cast<double>(r.pairs));
  r.loss /= n, r.intensity /= n, r.gradient /= n, r.ssim /= n;
  for (auto& [k, v] : r.metrics) v /= n;
  return r;
}

// ---------------------------------------------------------------- meta

const CommandSpec& meta_spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "meta";
    using T = SectionType;
    s.keys = {
        {"tasks", T::Json, default_meta_tasks(shared_data_dir()), 0, 0, {},
         "pretext tasks: [{\"name\", \"data\": [entries]}]; an entry is a folder with ir/ and vis/, or "
         "{\"dir\"|\"ir\"+\"vis\", \"exclude\": names file | \"split\": split.txt + \"use\": part}. "
         "Default: IVIF (roadscene minus cddfuse_test50, tno42), MRI-CT and MRI-SPECT train splits (MRI in the ir slot)"},
        {"inner_steps", T::Int, 5, 1, 10000, {}, "Adam steps on one task per outer step (fresh Adam moments each time)"},
        {"epsilon", T::Number, 0.5, 0, 1, {}, "Reptile outer step size at step 0: theta += eps (phi - theta)"},
        {"epsilon_min", T::Number, 0.05, 0, 1, {}, "outer step size at the last step (linear decay)"},
        {"task_order", T::String, "round-robin", 0, 0, {"round-robin", "random"}, "which task each outer step takes"},
    };
    s.base_defaults = {{"arch", "ivif-light"}, {"channels", 16},   {"steps", 300},         {"batch", 4},
                       {"crop", 96},           {"lr", 1e-3},       {"lr_schedule", "constant"}, {"threads", 1},
                       {"checkpoint_every", 25}, {"preview_every", 0}};
    s.flags = {{"--inner-steps", "meta.inner_steps"}, {"--epsilon", "meta.epsilon"}};
    s.data_required = false;
    return s;
  }();
  return spec;
}

struct MetaLearner::Impl : RunProgress {
  CommandConfig cfg;
  std::string dir;
  bool quiet = true;
  ArchSpec spec;
  std::vector<MetaTask> tasks;
  nn::TimNet theta{nullptr}, phi{nullptr};
  FusionLossWeights w;

  int task_of(int64_t k) const {
    const auto T = static_cast<uint64_t>(tasks.size());
    if (cfg.s("task_order") == "random")
      return static_cast<int>(mix64(static_cast<uint64_t>(cfg.base.i("seed")) * 0x9e37ULL + static_cast<uint64_t>(k)) % T);
    return static_cast<int>(static_cast<uint64_t>(k) % T);
  }
  double epsilon_at(int64_t k) const {
    const double e0 = cfg.d("epsilon"), e1 = cfg.d("epsilon_min");
    const int64_t steps = cfg.base.i("steps");
    const double p = steps > 1 ? static_cast<double>(k) / static_cast<double>(steps - 1) : 0.0;
    return e0 + (e1 - e0) * std::min(1.0, p);
  }
  MetaStats step(int64_t k);
};

MetaLearner::MetaLearner(const CommandConfig& config, const std::string& run_dir, bool quiet) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.cfg = config;
  m.dir = run_dir;
  m.quiet = quiet;
  const Config& b = m.cfg.base;
  if (b.i("threads") > 0) torch::set_num_threads(static_cast<int>(b.i("threads")));
  m.spec = ArchSpec::resolve(b.s("arch"));
  if (b.i("channels") > 0) m.spec.channels = static_cast<int>(b.i("channels"));
  m.spec.validate();
  m.w = fusion_loss_weights(b);
  m.tasks = load_tasks(m.cfg.at("tasks"), run_dir);
  torch::manual_seed(static_cast<uint64_t>(b.i("seed")));
  m.theta = nn::TimNet(m.spec);
  if (!b.s("init").empty()) {
    ModelFile f = load_model_file(b.s("init"), b.s("arch"));
    nn::load_state(*m.theta, f.weights, b.s("init"));
  }
  m.phi = nn::TimNet(m.spec);
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
  const int64_t inner = cfg.i("inner_steps");
  copy_state(*phi, *theta);
  Adam opt(*phi);  // fresh moments: each inner loop is an independent adaptation
  const auto& task = tasks[static_cast<size_t>(st.task)];
  for (int64_t j = 0; j < inner; ++j) {
    // Batch index k*inner + j, stream 1 + task: every (step, task) draws its own crops.
    Batch batch = task.data.sample(static_cast<uint64_t>(b.i("seed")), k * inner + j, 1 + static_cast<uint64_t>(st.task),
                                   static_cast<int>(b.i("batch")), static_cast<int>(b.i("crop")), b.b("flip"));
    double l = fusion_step(*phi, opt, batch, w, st.lr, b.d("grad_clip"));
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
  if (resume && fs::exists(ckpt)) {
    SafetensorsFile f = read_checkpoint(ckpt, m);
    load_module(*m.theta, f, "theta/", ckpt);
    if (!m.quiet) std::fprintf(stderr, "timfusion-train meta: resuming %s at step %lld\n", m.dir.c_str(), static_cast<long long>(m.done));
  }
  const int64_t steps = m.cfg.base.i("steps"), ck_every = m.cfg.base.i("checkpoint_every");
  if (m.done > steps) throw Error(ckpt + " is beyond steps = " + std::to_string(steps));
  m.sessions.push_back(command_line);
  write_run_config(m.cfg, m.dir);
  auto save = [&]() {
    SafetensorsFile f;
    save_module(f, *m.theta, "theta/");
    set_checkpoint_progress(f, m);
    f.metadata["timfusion.arch"] = m.spec.to_json();
    write_safetensors(ckpt, f);
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
                 static_cast<long long>(m.cfg.i("inner_steps")), m.dir.c_str());
    for (const auto& t : m.tasks) {
      std::fprintf(stderr, "  task %s: %zu pairs\n", t.name.c_str(), t.data.size());
      for (const auto& n : t.data.notes()) std::fprintf(stderr, "    note: %s\n", n.c_str());
    }
  }
  StepLoop loop;
  loop.command = "meta";
  loop.run_dir = m.dir;
  loop.steps = steps;
  loop.checkpoint_every = ck_every;
  loop.stop_at = stop_at;
  loop.quiet = m.quiet;
  MetaStats st;
  loop.step = [&] { st = m.step(m.done); };
  loop.record = [&] {
    if (!std::isfinite(st.inner_last))
      throw Error("the loss became " + fmt("%g", st.inner_last) + " at step " + std::to_string(m.done) + ": lower lr");
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
                         {"inner_steps", m.cfg.i("inner_steps")},
                         {"epsilon", {m.cfg.d("epsilon"), m.cfg.d("epsilon_min")}},
                         {"train_seconds", std::round(m.elapsed)},
                         {"finished", utc_now()},
                         {"config", m.cfg.values()}};
  write_model_file(m.dir + "/model.safetensors", *m.theta, m.spec, prov.dump());
  if (!m.quiet)
    std::fprintf(stderr, "timfusion-train meta: done: %lld outer steps, %.0f s; meta-initialisation %s/model.safetensors\n",
                 static_cast<long long>(steps), m.elapsed, m.dir.c_str());
  return 0;
}

// ---------------------------------------------------------------- adapt

const CommandSpec& adapt_spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "adapt";
    using T = SectionType;
    s.keys = {
        {"split_dir", T::String, "", 0, 0, {},
         "a task folder with split.txt (e.g. harvard_medical/mri_pet): trains on its train part, evaluates on its test part"},
        {"train", T::Json, nlohmann::json::array(), 0, 0, {}, "training entries (as meta.tasks' data); empty: split_dir or data"},
        {"eval", T::Json, nlohmann::json::array(), 0, 0, {}, "held-out entries evaluated along the way; empty: split_dir's test part"},
        {"eval_at", T::Json, nlohmann::json::array({0, 5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 500}), 0, 0, {},
         "steps after which the held-out pairs are evaluated (and the last step)"},
        {"eval_every", T::Int, 0, 0, 1e9, {}, "also evaluate every N steps (0: only eval_at)"},
        {"metrics", T::String, "mi,qabf,vif,ssim", 0, 0, {}, "core fusion metrics on the held-out pairs (timfusion-eval names)"},
    };
    s.base_defaults = {{"steps", 300}, {"batch", 4}, {"crop", 96}, {"lr", 1e-3}, {"lr_schedule", "constant"},
                       {"threads", 1}, {"checkpoint_every", 50}, {"preview_every", 0}};
    s.flags = {{"--split-dir", "adapt.split_dir"}, {"--metrics", "adapt.metrics"}};
    s.data_required = false;
    return s;
  }();
  return spec;
}

struct Adapter::Impl : RunProgress {
  CommandConfig cfg;
  std::string dir;
  bool quiet = true;
  ArchSpec spec;
  std::string init_desc;
  PairDataset train, held;
  std::vector<DataSource> train_src, held_src;
  nn::TimNet net{nullptr};
  std::unique_ptr<Adam> opt;
  FusionLossWeights w;
  std::vector<std::string> metrics;
};

Adapter::Adapter(const CommandConfig& config, const std::string& run_dir, bool quiet) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.cfg = config;
  m.dir = run_dir;
  m.quiet = quiet;
  const Config& b = m.cfg.base;
  if (b.i("threads") > 0) torch::set_num_threads(static_cast<int>(b.i("threads")));
  m.w = fusion_loss_weights(b);
  m.metrics = m.cfg.s("metrics").empty() ? std::vector<std::string>{} : parse_metric_list(m.cfg.s("metrics"));

  nlohmann::json tr = m.cfg.at("train"), ev = m.cfg.at("eval");
  if (!m.cfg.s("split_dir").empty()) {
    auto [a, t] = split_dir_entries(m.cfg.s("split_dir"));
    if (tr.empty()) tr = nlohmann::json::array({a});
    if (ev.empty()) ev = nlohmann::json::array({t});
  }
  if (tr.empty()) tr = b.at("data");
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

  torch::manual_seed(static_cast<uint64_t>(b.i("seed")));
  if (!b.s("init").empty()) {
    ModelFile f = load_model_file(b.s("init"));
    m.spec = f.arch;
    if (b.i("channels") > 0 && b.i("channels") != m.spec.channels)
      throw Error("adapt: --channels " + std::to_string(b.i("channels")) + " differs from the init's " +
                  std::to_string(m.spec.channels));
    m.net = nn::TimNet(m.spec);
    nn::load_state(*m.net, f.weights, b.s("init"));
    m.init_desc = b.s("init");
  } else {
    m.spec = ArchSpec::resolve(b.s("arch"));
    if (b.i("channels") > 0) m.spec.channels = static_cast<int>(b.i("channels"));
    m.spec.validate();
    m.net = nn::TimNet(m.spec);
    m.init_desc = "random (seed " + std::to_string(b.i("seed")) + ")";
  }
  m.net->train();
  m.opt = std::make_unique<Adam>(*m.net);
}

Adapter::~Adapter() = default;
SafetensorsFile Adapter::state() const { return nn::to_safetensors(*impl_->net); }
const ArchSpec& Adapter::spec() const { return impl_->spec; }
EvalResult Adapter::evaluate_now() { return evaluate(*impl_->net, impl_->held, impl_->w, impl_->metrics); }

AdaptStats Adapter::step(int64_t k) {
  Impl& m = *impl_;
  const Config& b = m.cfg.base;
  AdaptStats st;
  st.lr = scheduled_lr(b, k);
  Batch batch = m.train.sample(static_cast<uint64_t>(b.i("seed")), k, 0, static_cast<int>(b.i("batch")),
                               static_cast<int>(b.i("crop")), b.b("flip"));
  auto ir = to_tensor(batch.ir, batch.n, batch.h, batch.w), vis = to_tensor(batch.vis, batch.n, batch.h, batch.w);
  auto l = fusion_losses(m.net->forward(ir, vis), ir, vis, m.w);
  m.opt->zero_grad();
  l.total.backward();
  if (b.d("grad_clip") > 0) clip_grad_norm(*m.net, b.d("grad_clip"));
  m.opt->step(st.lr);
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
  if (resume && fs::exists(ckpt)) {
    SafetensorsFile f = read_checkpoint(ckpt, m);
    load_module(*m.net, f, "fusion/", ckpt);
    m.opt->load(f, "adam.fusion/");
  }
  const int64_t steps = m.cfg.base.i("steps"), ck_every = m.cfg.base.i("checkpoint_every");
  if (m.done > steps) throw Error(ckpt + " is beyond steps = " + std::to_string(steps));
  m.sessions.push_back(command_line);
  write_run_config(m.cfg, m.dir);
  auto save = [&]() {
    SafetensorsFile f;
    save_module(f, *m.net, "fusion/");
    m.opt->save(f, "adam.fusion/");
    set_checkpoint_progress(f, m);
    f.metadata["timfusion.arch"] = m.spec.to_json();
    write_safetensors(ckpt, f);
  };
  std::set<int64_t> eval_steps;
  for (const auto& v : m.cfg.at("eval_at"))
    if (v.is_number_integer() && v.get<int64_t>() <= steps) eval_steps.insert(v.get<int64_t>());
  if (m.cfg.i("eval_every") > 0)
    for (int64_t s = 0; s <= steps; s += m.cfg.i("eval_every")) eval_steps.insert(s);
  eval_steps.insert(steps);

  const std::vector<std::string> cols = {"step", "loss", "intensity", "gradient", "ssim", "lr", "seconds"};
  std::vector<std::string> ecols = {"step", "loss", "intensity", "gradient", "ssim_loss"};
  for (const auto& n : m.metrics) ecols.push_back(n);
  CsvLog log, elog;
  log.open(m.dir + "/log.csv", cols, resume ? m.done : -1);
  const bool have_eval = m.held.size() > 0;
  if (have_eval) elog.open(m.dir + "/eval.csv", ecols, resume ? m.done : -1);
  auto eval_row = [&]() {
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

  StepLoop loop;
  loop.command = "adapt";
  loop.run_dir = m.dir;
  loop.steps = steps;
  loop.checkpoint_every = ck_every;
  loop.stop_at = stop_at;
  loop.quiet = m.quiet;
  loop.announce_stop_at = false;
  AdaptStats st;
  loop.step = [&] { st = step(m.done); };
  loop.record = [&] {
    if (!std::isfinite(st.loss))
      throw Error("the loss became " + fmt("%g", st.loss) + " at step " + std::to_string(m.done) + ": lower lr");
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

// ---------------------------------------------------------------- compare

namespace {

struct Curve {
  std::string label;
  std::vector<double> x, y;
};

// One panel: linear axes, lines with markers, legend.
cv::Mat draw_panel(const std::string& title, const std::vector<Curve>& curves_in, bool lower_better, bool log_y, int W, int H) {
  // Log axis: plot log10(y) (values <= 0 dropped), label ticks with y.
  std::vector<Curve> curves = curves_in;
  if (log_y)
    for (auto& c : curves)
      for (auto& v : c.y) v = v > 0 ? std::log10(v) : NAN;
  static const cv::Scalar colours[] = {{200, 80, 20}, {40, 40, 220}, {30, 150, 30}, {160, 40, 160}, {20, 140, 200}};
  cv::Mat img(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  const int L = 70, R = 15, T = 30, B = 45;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& c : curves)
    for (size_t i = 0; i < c.x.size(); ++i)
      if (std::isfinite(c.y[i])) x0 = std::min(x0, c.x[i]), x1 = std::max(x1, c.x[i]), y0 = std::min(y0, c.y[i]), y1 = std::max(y1, c.y[i]);
  if (x0 > x1) return img;
  if (x1 == x0) x1 = x0 + 1;
  const double pad = (y1 - y0) * 0.06 + 1e-9;
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return L + static_cast<int>((x - x0) / (x1 - x0) * (W - L - R)); };
  auto py = [&](double y) { return H - B - static_cast<int>((y - y0) / (y1 - y0) * (H - T - B)); };
  cv::rectangle(img, {L, T}, {W - R, H - B}, {0, 0, 0}, 1);
  for (int i = 0; i <= 4; ++i) {
    double yv = y0 + (y1 - y0) * i / 4.0, xv = x0 + (x1 - x0) * i / 4.0;
    cv::line(img, {L, py(yv)}, {W - R, py(yv)}, {225, 225, 225}, 1);
    cv::putText(img, fmt("%.4g", log_y ? std::pow(10.0, yv) : yv), {4, py(yv) + 4}, cv::FONT_HERSHEY_SIMPLEX, 0.38, {0, 0, 0}, 1, cv::LINE_AA);
    cv::putText(img, fmt("%.0f", xv), {px(xv) - 10, H - B + 16}, cv::FONT_HERSHEY_SIMPLEX, 0.38, {0, 0, 0}, 1, cv::LINE_AA);
  }
  cv::putText(img, "adaptation step", {W / 2 - 50, H - 8}, cv::FONT_HERSHEY_SIMPLEX, 0.42, {0, 0, 0}, 1, cv::LINE_AA);
  cv::putText(img, title + (log_y ? ", log scale" : "") + (lower_better ? " (lower is better)" : " (higher is better)"), {L, 20}, cv::FONT_HERSHEY_SIMPLEX,
              0.5, {0, 0, 0}, 1, cv::LINE_AA);
  // Runs labelled "NAME#seed" share NAME's colour; repeats are drawn thinner
  // and listed once in the legend.
  std::vector<std::string> keys;
  for (size_t ci = 0; ci < curves.size(); ++ci) {
    const auto& c = curves[ci];
    const std::string key = c.label.substr(0, c.label.find('#'));
    size_t ki = std::find(keys.begin(), keys.end(), key) - keys.begin();
    const bool repeat = ki < keys.size();
    if (!repeat) keys.push_back(key);
    const auto col = colours[ki % 5];
    std::vector<cv::Point> pts;
    for (size_t i = 0; i < c.x.size(); ++i)
      if (std::isfinite(c.y[i])) pts.emplace_back(px(c.x[i]), py(c.y[i]));
    if (pts.size() > 1) cv::polylines(img, pts, false, col, repeat ? 1 : 2, cv::LINE_AA);
    for (const auto& p : pts) cv::circle(img, p, repeat ? 2 : 3, col, cv::FILLED, cv::LINE_AA);
    if (repeat) continue;
    // Legend where the curves are not: top for lower-is-better, bottom otherwise.
    const int ly = lower_better ? T + 14 + 16 * static_cast<int>(ki) : H - B - 12 - 16 * static_cast<int>(ki);
    cv::line(img, {W - R - 230, ly}, {W - R - 205, ly}, col, 2);
    cv::putText(img, key, {W - R - 200, ly + 4}, cv::FONT_HERSHEY_SIMPLEX, 0.4, {0, 0, 0}, 1, cv::LINE_AA);
  }
  return img;
}

}  // namespace

void compare_adapt_runs(const std::vector<std::pair<std::string, std::string>>& runs, const std::string& png,
                        const std::string& markdown) {
  if (runs.empty()) throw Error("--compare needs at least one run folder");
  std::vector<std::vector<std::vector<std::string>>> tables;
  for (const auto& [dir, label] : runs) {
    tables.push_back(read_csv(dir + "/eval.csv"));
    if (tables.back().size() < 2) throw Error(dir + "/eval.csv has no rows");
  }
  const auto header = tables[0][0];
  std::vector<cv::Mat> panels;
  for (size_t c = 1; c < header.size(); ++c) {
    std::vector<Curve> curves;
    for (size_t r = 0; r < runs.size(); ++r) {
      const auto& t = tables[r];
      size_t col = std::find(t[0].begin(), t[0].end(), header[c]) - t[0].begin();
      if (col >= t[0].size()) continue;
      Curve cv_;
      cv_.label = runs[r].second;
      for (size_t i = 1; i < t.size(); ++i) cv_.x.push_back(std::stod(t[i][0])), cv_.y.push_back(std::stod(t[i][col]));
      curves.push_back(cv_);
    }
    const std::string& name = header[c];
    const bool lower = name == "loss" || name == "intensity" || name == "gradient" || name == "ssim_loss" ||
                       (is_metric(name) && !higher_is_better(name));
    const std::string title = name == "loss" ? "held-out fusion loss" : (is_metric(name) ? name : name + " term");
    if (name == "loss" || is_metric(name)) panels.push_back(draw_panel(title, curves, lower, name == "loss", 560, 340));
  }
  // Grid of 2 columns.
  std::vector<cv::Mat> rows;
  for (size_t i = 0; i < panels.size(); i += 2) {
    cv::Mat row;
    if (i + 1 < panels.size())
      cv::hconcat(panels[i], panels[i + 1], row);
    else
      cv::hconcat(panels[i], cv::Mat(panels[i].rows, panels[i].cols, CV_8UC3, cv::Scalar(255, 255, 255)), row);
    rows.push_back(row);
  }
  cv::Mat grid;
  cv::vconcat(rows, grid);
  if (!png.empty()) write_image(png, grid);
  // Markdown: every run's value per step for each column, plus the mean of
  // the runs sharing a "NAME#..." label when there are several.
  std::vector<std::string> keys;
  std::map<std::string, std::vector<size_t>> members;
  for (size_t r = 0; r < runs.size(); ++r) {
    const std::string key = runs[r].second.substr(0, runs[r].second.find('#'));
    if (!members.count(key)) keys.push_back(key);
    members[key].push_back(r);
  }
  std::vector<std::string> mean_keys;
  for (const auto& k : keys)
    if (members[k].size() > 1) mean_keys.push_back(k);
  auto value = [&](size_t r, const std::string& step, const std::string& name) {
    const auto& t = tables[r];
    size_t col = std::find(t[0].begin(), t[0].end(), name) - t[0].begin();
    for (size_t j = 1; j < t.size(); ++j)
      if (t[j][0] == step && col < t[j].size()) return std::stod(t[j][col]);
    return std::nan("");
  };
  std::ostringstream os;
  for (size_t c = 1; c < header.size(); ++c) {
    os << "\n**" << header[c] << "**\n\n| step |";
    for (const auto& r : runs) os << " " << r.second << " |";
    for (const auto& k : mean_keys) os << " " << k << " mean |";
    os << "\n|---|";
    for (size_t r = 0; r < runs.size() + mean_keys.size(); ++r) os << "---|";
    os << "\n";
    for (size_t i = 1; i < tables[0].size(); ++i) {
      const std::string& step = tables[0][i][0];
      os << "| " << step << " |";
      for (size_t r = 0; r < runs.size(); ++r) {
        const double v = value(r, step, header[c]);
        os << " " << (std::isnan(v) ? std::string("–") : fmt("%.4f", v)) << " |";
      }
      for (const auto& k : mean_keys) {
        double sum = 0;
        for (size_t r : members[k]) sum += value(r, step, header[c]);
        os << " " << (std::isnan(sum) ? std::string("–") : fmt("%.4f", sum / static_cast<double>(members[k].size())))
           << " |";
      }
      os << "\n";
    }
  }
  if (!markdown.empty()) write_text_atomic(markdown, os.str());
  std::fputs(os.str().c_str(), stdout);
}

// ---------------------------------------------------------------- commands

namespace {

const char* kMetaUsage =
    "Usage: timfusion-train meta [options]\n"
    "       timfusion-train meta --resume RUN_DIR [--steps N]\n"
    "\n"
    "Pretext meta-initialisation (TIM's PMI) by first-order Reptile: each outer step\n"
    "adapts a copy of the initialisation to one pretext task (meta.inner_steps Adam\n"
    "steps of the fusion losses) and moves the initialisation towards it by eps.\n"
    "Default tasks: IVIF (roadscene minus cddfuse_test50, tno42), MRI-CT and MRI-SPECT\n"
    "(train splits; MRI in the ir slot, CT / SPECT luma in vis); MRI-PET is left out\n"
    "for evaluation. Default network: ivif-light at 16 channels. Writes\n"
    "model.safetensors (the meta-initialisation), log.csv, loss_curve.png.\n"
    "  --inner-steps N   --epsilon X   (meta.inner_steps, meta.epsilon; see --help-config)\n"
    "\n";

const char* kAdaptUsage =
    "Usage: timfusion-train adapt --init W.safetensors (--split-dir DIR | --data DIR ...) [options]\n"
    "       timfusion-train adapt --compare RUN[=LABEL] --compare RUN[=LABEL] ... [--plot OUT.png] [--table OUT.md]\n"
    "\n"
    "Fine-tunes weights (a meta-initialisation, any model, or a random init when\n"
    "--init is not given: --arch/--channels) to a new task for a few hundred Adam\n"
    "steps, evaluating the held-out pairs (fusion-loss terms, --metrics) after the\n"
    "steps in adapt.eval_at. --split-dir DIR takes a folder with split.txt\n"
    "(harvard_medical/<task>): trains on \"train\", evaluates on \"test\".\n"
    "Writes model.safetensors, log.csv, eval.csv, loss_curve.png.\n"
    "--compare draws eval.csv of several runs against the step (one panel per column).\n"
    "\n";

}  // namespace

int cmd_meta(int argc, char** argv, int first) { return run_command<MetaLearner>(argc, argv, first, meta_spec(), kMetaUsage); }

int cmd_adapt(int argc, char** argv, int first) {
  // Compare mode: its own small option set.
  for (int i = first; i < argc; ++i) {
    if (std::string(argv[i]) != "--compare") continue;
    std::vector<std::pair<std::string, std::string>> runs;
    std::string png, md;
    for (int j = first; j < argc; ++j) {
      std::string k = argv[j];
      auto value = [&]() -> std::string {
        if (j + 1 >= argc) throw Error(k + " needs a value");
        return argv[++j];
      };
      if (k == "--compare") {
        std::string v = value();
        auto eq = v.find('=');
        runs.emplace_back(v.substr(0, eq), eq == std::string::npos ? fs::path(v).filename().string() : v.substr(eq + 1));
      } else if (k == "--plot") {
        png = value();
      } else if (k == "--table") {
        md = value();
      } else {
        throw Error("with --compare, only --compare, --plot and --table are allowed (got \"" + k + "\")");
      }
    }
    compare_adapt_runs(runs, png, md);
    return 0;
  }
  return run_command<Adapter>(argc, argv, first, adapt_spec(), kAdaptUsage);
}

}  // namespace timfusion::train
