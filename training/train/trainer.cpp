#include "train/trainer.h"

#include <csignal>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <opencv2/imgproc.hpp>

#include "data/pair_dataset.h"
#include "data/sensor_noise.h"
#include "losses/fusion_losses.h"
#include "run/checkpoint.h"
#include "run/checkpoint_integrity.h"
#include "run/divergence.h"
#include "run/command_config.h"
#include "run/device.h"
#include "run/distributed.h"
#include "run/stop_signal.h"
#include "run/plot.h"
#include "run/run_dir.h"
#include "train/init_weights.h"
#include "run/run_loop.h"
#include "task/seg_net.h"
#include "timfusion/arch.h"
#include "timfusion/error.h"
#include "timfusion/model_file.h"
#include "timfusion/pairs.h"
#include "timfusion/torch/networks.h"
#include "timfusion/torch/state_dict.h"

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {


// The final losses in the provenance and the closing line: means of the last so many steps.
constexpr size_t kFinalWindow = 100;

const std::vector<std::string> kColumns = {"step", "loss", "intensity", "gradient", "ssim", "task",
                                           "task_lower", "baseline", "lr", "seconds"};

cv::Mat to_u8(const torch::Tensor& t) {  // [1,1,H,W] on any device -> CV_8UC1
  auto c = (t.detach().clamp(0, 1) * 255).round().to(torch::kUInt8).to(torch::kCPU).contiguous();
  cv::Mat m(static_cast<int>(c.size(2)), static_cast<int>(c.size(3)), CV_8UC1, c.data_ptr<uint8_t>());
  return m.clone();
}

}  // namespace

struct Trainer::Impl : CommandState {
  using CommandState::CommandState;
  ArchSpec spec;
  PairDataset data, task_train, task_eval;
  bool task = false, fuse_task_batch = false;
  nn::TimNet net{nullptr};
  SegNet tnet{nullptr}, bnet{nullptr};
  std::unique_ptr<Adam> opt, topt, bopt;
  FusionLossWeights w;
  torch::Tensor class_weight;  // undefined: plain cross-entropy
  std::vector<std::string> notes;
  DevicePlan plan;
  std::unique_ptr<DataParallel> par;  // null: one process
  bool stop_agreed = false;           // data-parallel: some rank was asked to stop (Ctrl-C / SIGTERM)
  std::unique_ptr<BatchLoader> loader;
  LossScale scale{false}, tscale{false}, bscale{false};  // fp16 only

  // Step k's batches on the host: {ir, vis, ir means, vis means} of the
  // fusion data (unless fuse_task_batch; with noise > 0 followed by noisy
  // copies of ir and vis), then {ir, vis, labels, ir means, vis means} of the
  // task data when task.
  std::vector<torch::Tensor> host_batch(int64_t k) const;
  // The host tensors of batch b (pinned for CUDA).
  torch::Tensor planes(const std::vector<float>& v, const Batch& b) const {
    return host_planes(v, b.n, b.h, b.w, plan.pinned);
  }
  // One evaluation batch on the device.
  torch::Tensor on_device(const std::vector<float>& v, const Batch& b) const {
    return planes_on(v, b.n, b.h, b.w, plan.device);
  }
  StepStats step(int64_t k);
  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);
  void preview(const std::string& path);
  nlohmann::json task_evaluation();

  // The steps of run():
  std::string open_run(const std::string& ckpt, bool resume, bool writer, const std::string& command_line);
  void print_start();
  void write_curve(const CsvLog& log) const;
  std::optional<int> train_steps(CsvLog& log, const std::string& ckpt, long stop_at, bool writer);
  nlohmann::json provenance(const CsvLog& log, const std::string& commit, const nlohmann::json& task_eval_result) const;
  void print_summary(const CsvLog& log, const nlohmann::json& task_eval_result) const;
};

namespace {
CommandConfig as_train_config(const Config& c) {
  CommandConfig cc;
  cc.base = c;
  cc.section = "train";
  return cc;
}
}  // namespace

Trainer::Trainer(const Config& config) : Trainer(as_train_config(config), "", true) {}

Trainer::Trainer(const CommandConfig& config, const std::string& run_dir, bool quiet, const ParallelSpec& parallel)
    : impl_(std::make_unique<Impl>(config, run_dir, quiet || parallel.rank != 0)) {
  Impl& m = *impl_;
  m.cfg.base.validate();
  // Where to train, first: a missing GPU is reported before any data is loaded.
  m.plan = resolve_device(m.cfg.base, true, parallel.local_rank >= 0 ? parallel.local_rank : parallel.rank);
  if (parallel.active()) {
    const int64_t W = parallel.world_size, batch = m.cfg.base.optim.batch, tb = m.cfg.base.task.batch;
    if (batch % W || (m.cfg.base.task.enabled && tb > 0 && tb % W))
      throw Error("\"batch\" (" + std::to_string(batch) + (tb > 0 ? ") and \"task.batch\" (" + std::to_string(tb) : std::string()) +
                  ") must be multiples of the world size (" + std::to_string(W) + "): each rank takes an equal share");
    m.par = std::make_unique<DataParallel>(parallel);
  }
  if (m.cfg.base.runtime.threads > 0) torch::set_num_threads(static_cast<int>(m.cfg.base.runtime.threads));
  m.spec = ArchSpec::resolve(m.cfg.base.model.arch);
  if (m.cfg.base.model.channels > 0) m.spec.channels = static_cast<int>(m.cfg.base.model.channels);
  m.spec.validate();
  m.task = m.cfg.base.task.enabled;
  m.w = fusion_loss_weights(m.cfg.base);

  if (!m.cfg.base.data.empty()) {
    m.data = PairDataset::load(m.cfg.base.data_sources());
    m.notes = m.data.notes();
  }
  if (m.task) {
    auto all = PairDataset::load({m.cfg.base.task_source()}, true, static_cast<int>(m.cfg.base.task.classes));
    for (const auto& n : all.notes()) m.notes.push_back(n);
    std::tie(m.task_train, m.task_eval) = all.split_holdout(static_cast<size_t>(m.cfg.base.task.eval_pairs));
    if (m.cfg.base.task.balance)
      m.class_weight = balanced_class_weights(m.task_train.class_counts(static_cast<int>(m.cfg.base.task.classes)));
    // Without separate fusion data the fusion losses use the task batch.
    m.fuse_task_batch = m.cfg.base.data.empty();
  }

  torch::manual_seed(static_cast<uint64_t>(m.cfg.base.optim.seed));
  m.net = nn::TimNet(m.spec);
  if (!m.cfg.base.model.init.empty()) {
    load_init(*m.net, m.spec, m.cfg.base.model.init, m.cfg.base.model.arch);
  }
  m.net->to(m.plan.device);
  m.net->train();
  m.opt = std::make_unique<Adam>(*m.net);
  const bool fp16 = m.plan.precision == Precision::Fp16;
  m.scale = LossScale(fp16), m.tscale = LossScale(fp16), m.bscale = LossScale(fp16);
  if (m.class_weight.defined()) m.class_weight = m.class_weight.to(m.plan.device);
  if (m.task) {
    const int64_t width = m.cfg.base.task.width, classes = m.cfg.base.task.classes;
    torch::manual_seed(static_cast<uint64_t>(m.cfg.base.optim.seed) + 1);
    m.tnet = SegNet(1, width, classes);
    torch::manual_seed(static_cast<uint64_t>(m.cfg.base.optim.seed) + 1);  // the baseline starts identical
    m.bnet = SegNet(1, width, classes);
    m.tnet->to(m.plan.device);
    m.bnet->to(m.plan.device);
    m.tnet->train();
    m.bnet->train();
    m.topt = std::make_unique<Adam>(*m.tnet);
    m.bopt = std::make_unique<Adam>(*m.bnet);
  }
  if (m.par) {
    // Every rank starts from rank 0's weights; TimBatchNorm uses the global batch's statistics.
    m.par->broadcast(*m.net);
    if (m.task) m.par->broadcast(*m.tnet), m.par->broadcast(*m.bnet);
    m.par->synchronise_batch_norm();
  }
  m.loader = std::make_unique<BatchLoader>(m.plan, [&m](int64_t k) { return m.host_batch(k); });
}

Trainer::~Trainer() = default;

const std::vector<std::string>& Trainer::notes() const { return impl_->notes; }
int64_t Trainer::steps_done() const { return impl_->done; }

SafetensorsFile Trainer::fusion_state() const { return nn::to_safetensors(*impl_->net); }
SafetensorsFile Trainer::task_state() const {
  return impl_->task ? nn::to_safetensors(*impl_->tnet) : SafetensorsFile{};
}

StepStats Trainer::step(int64_t k) { return impl_->step(k); }

std::vector<torch::Tensor> Trainer::Impl::host_batch(int64_t k) const {
  const uint64_t seed = static_cast<uint64_t>(cfg.base.optim.seed);
  const int batch = static_cast<int>(cfg.base.optim.batch), crop = static_cast<int>(cfg.base.optim.crop);
  const bool flip = cfg.base.optim.flip;
  // The global batch is drawn whole, as in one process; this rank keeps its share.
  auto share = [&](const Batch& b) { return par ? share_of(b, par->rank(), par->world_size()) : b; };
  std::vector<torch::Tensor> out;
  // Each crop's whole-image means (the salient intensity target's reference), [n,1,1,1].
  auto push_means = [&](std::vector<torch::Tensor>& v, const Batch& b) {
    ImageMeans m = image_means(b);
    if (!m.ir.defined()) throw Error("internal: a training batch without its images' means");
    v.push_back(plan.pinned ? m.ir.pin_memory() : m.ir);
    v.push_back(plan.pinned ? m.vis.pin_memory() : m.vis);
  };
  if (!fuse_task_batch) {
    const Batch whole = data.sample(seed, k, /*stream=*/0, batch, crop, flip);
    Batch b = share(whole);
    out.push_back(planes(b.ir, b));
    out.push_back(planes(b.vis, b));
    push_means(out, b);
    if (const double noise = cfg.base.noise.sigma; noise > 0) {
      // Noisy inputs, clean targets (sensor_noise.h). The noise is drawn for
      // the whole global batch, so each rank gets the rows one process would.
      for (int s : {0, 1}) {
        auto clean = host_planes(s ? whole.vis : whole.ir, whole.n, whole.h, whole.w);
        torch::Tensor x;
        if (cfg.base.noise.model == "lowlight")
          x = s ? add_lowlight_visible_noise(clean, noise, seed, k, s) : add_lowlight_ir_noise(clean, cfg.base.noise.ir, seed, k, s);
        else
          x = add_sensor_noise(clean, noise, seed, k, s);
        if (par) x = x.chunk(par->world_size(), 0)[par->rank()].contiguous();
        out.push_back(plan.pinned ? x.pin_memory() : x);
      }
    }
  }
  if (task) {
    const int tb = cfg.base.task.batch > 0 ? static_cast<int>(cfg.base.task.batch) : batch;
    const int tc = cfg.base.task.crop > 0 ? static_cast<int>(cfg.base.task.crop) : crop;
    Batch b = share(task_train.sample(seed, k, /*stream=*/1, tb, tc, flip));
    out.push_back(planes(b.ir, b));
    out.push_back(planes(b.vis, b));
    out.push_back(host_labels(b.labels, b.n, b.h, b.w, plan.pinned));
    push_means(out, b);
  }
  return out;
}

StepStats Trainer::Impl::step(int64_t k) {
  StepStats st;
  st.lr = scheduled_lr(cfg.base, k);
  std::vector<torch::Tensor> in = loader->get(k);
  // Forward passes under autocast (CUDA bf16/fp16); losses in fp32.
  // The images' means go in too: architectures with image_means see them (crops' whole images).
  auto forward = [&](const torch::Tensor& a, const torch::Tensor& b, const ImageMeans& m) {
    AutocastScope ac(plan);
    return net->forward(a, b, m.ir, m.vis).to(torch::kFloat32);
  };
  auto segment = [&](SegNet& s, const torch::Tensor& x) {
    AutocastScope ac(plan);
    return s->forward(x).to(torch::kFloat32);
  };

  torch::Tensor fused, ir, vis;
  ImageMeans means;
  size_t next = 0;
  if (!fuse_task_batch) {
    ir = in[next++];
    vis = in[next++];
    means.ir = in[next++];
    means.vis = in[next++];
    if (cfg.base.noise.sigma > 0) {
      auto noisy_ir = in[next++], noisy_vis = in[next++];
      fused = forward(noisy_ir, noisy_vis, means);  // the losses below compare with the clean crops
    } else {
      fused = forward(ir, vis, means);
    }
  }
  torch::Tensor upper_task;
  if (task) {
    auto tir = in[next], tvis = in[next + 1], y = in[next + 2];
    const ImageMeans tmeans{in[next + 3], in[next + 4]};
    auto tfused = forward(tir, tvis, tmeans);
    if (fuse_task_batch) fused = tfused, ir = tir, vis = tvis, means = tmeans;
    // Lower level: the task net follows the current fusion net (its output
    // detached), theta_T <- argmin L_task(T(F(x)), y), approximated by
    // task.inner_steps Adam steps.
    auto detached = tfused.detach();
    const double tlr = cfg.base.task.lr;
    for (int64_t i = 0; i < cfg.base.task.inner_steps; ++i) {
      topt->zero_grad();
      auto l = task_loss(segment(tnet, detached), y, class_weight);
      tscale.scaled(l).backward();
      if (par) par->average_gradients(*tnet);
      if (tscale.unscale({tnet.ptr().get()})) topt->step(tlr);
      st.task_lower = l.item<double>();
    }
    if (cfg.base.task.baseline) {
      bopt->zero_grad();
      auto l = task_loss(segment(bnet, tvis), y, class_weight);
      bscale.scaled(l).backward();
      if (par) par->average_gradients(*bnet);
      if (bscale.unscale({bnet.ptr().get()})) bopt->step(tlr);
      st.baseline = l.item<double>();
    }
    // Upper level: the fusion net sees the task loss through the updated task net.
    upper_task = task_loss(segment(tnet, tfused), y, class_weight);
    st.task = upper_task.item<double>();
  }
  FusionLosses l = fusion_losses(fused, ir, vis, w, means);
  torch::Tensor total = l.total;
  if (task) total = total + cfg.base.task.lambda * upper_task;
  opt->zero_grad();
  scale.scaled(total).backward();
  if (par) par->average_gradients(*net);  // before unscaling: every rank takes the same decision
  if (scale.unscale({net.ptr().get()})) {  // fp16: a step with Inf/NaN gradients is skipped
    if (cfg.base.optim.grad_clip > 0) clip_grad_norm(*net, cfg.base.optim.grad_clip);
    opt->step(st.lr);
  }
  st.loss = total.item<double>();
  st.intensity = l.intensity.item<double>();
  st.gradient = l.gradient.item<double>();
  st.ssim = l.ssim.item<double>();
  if (par) {
    // The logged losses are the global batch's (mean over the ranks' equal
    // shares); the stop flag rides along so that every rank stops at the same step.
    auto v = par->sum(torch::tensor({st.loss, st.intensity, st.gradient, st.ssim, st.task, st.task_lower, st.baseline,
                                     StopSignal::requested() ? 1.0 : 0.0}, torch::kFloat64));
    const double W = par->world_size();
    auto a = v.accessor<double, 1>();
    st.loss = a[0] / W, st.intensity = a[1] / W, st.gradient = a[2] / W, st.ssim = a[3] / W;
    st.task = a[4] / W, st.task_lower = a[5] / W, st.baseline = a[6] / W;
    stop_agreed = a[7] > 0;
  }
  done = k + 1;
  return st;
}

void Trainer::Impl::save_checkpoint(const std::string& path) const {
  SafetensorsFile f;
  save_module(f, *net, "fusion/");
  opt->save(f, "adam.fusion/");
  scale.save(f, "amp.fusion/");
  if (task) {
    tscale.save(f, "amp.task/");
    bscale.save(f, "amp.baseline/");
    save_module(f, *tnet, "task/");
    topt->save(f, "adam.task/");
    save_module(f, *bnet, "baseline/");
    bopt->save(f, "adam.baseline/");
  }
  set_checkpoint_progress(f, *this);
  describe_model(f, spec);
  write_checkpoint(path, f);
}

void Trainer::Impl::load_checkpoint(const std::string& path) {
  SafetensorsFile f = read_checkpoint(path, *this);
  load_module(*net, f, "fusion/", path);
  opt->load(f, "adam.fusion/");
  scale.load(f, "amp.fusion/");
  if (task) {
    tscale.load(f, "amp.task/");
    bscale.load(f, "amp.baseline/");
    load_module(*tnet, f, "task/", path);
    topt->load(f, "adam.task/");
    load_module(*bnet, f, "baseline/", path);
    bopt->load(f, "adam.baseline/");
  }
}

void Trainer::Impl::preview(const std::string& path) {
  const PairDataset& src = fuse_task_batch ? task_eval : data;
  const int side = static_cast<int>(cfg.base.output.preview_size);
  const size_t n = std::min<size_t>(src.size(), static_cast<size_t>(cfg.base.output.preview_pairs));
  if (n == 0) return;
  torch::NoGradGuard ng;
  net->eval();
  std::vector<cv::Mat> rows;
  int width = 0;
  for (size_t i = 0; i < n; ++i) {
    // Spread over the data: pairs 0, N/n, 2N/n, ...
    Batch b = src.center(i * src.size() / n, side);
    auto ir = on_device(b.ir, b), vis = on_device(b.vis, b);
    auto fused = net->forward(ir, vis);
    std::vector<cv::Mat> tiles = {to_u8(ir), to_u8(vis), to_u8(fused)};
    if (task) {
      auto pred = tnet->forward(fused.clamp(0, 1)).argmax(1).to(torch::kUInt8).to(torch::kCPU).contiguous();
      cv::Mat ids(b.h, b.w, CV_8UC1, pred.data_ptr<uint8_t>());
      // MFNet ids: 0 unlabelled/background, 1 car, 2 person, 3 bike, 4 curve,
      // 5 car_stop, 6 guardrail, 7 color_cone, 8 bump (BGR colours).
      static const cv::Vec3b kPalette[] = {{40, 40, 40},   {255, 120, 0},  {0, 0, 255},   {0, 200, 0},  {0, 200, 255},
                                           {255, 0, 255},  {255, 255, 0},  {0, 128, 255}, {128, 128, 255}};
      cv::Mat colour(ids.size(), CV_8UC3);
      for (int r = 0; r < ids.rows; ++r)
        for (int c = 0; c < ids.cols; ++c) {
          int id = ids.at<uint8_t>(r, c);
          colour.at<cv::Vec3b>(r, c) = id < 9 ? kPalette[id] : cv::Vec3b(255, 255, 255);
        }
      tiles.push_back(colour);
    }
    cv::Mat row;
    for (auto& t : tiles) {
      if (t.channels() == 1) cv::cvtColor(t, t, cv::COLOR_GRAY2BGR);
      cv::copyMakeBorder(t, t, 2, 2, 2, 2, cv::BORDER_CONSTANT, cv::Scalar(255, 255, 255));
    }
    cv::hconcat(tiles, row);
    cv::putText(row, b.names[0], {6, 16}, cv::FONT_HERSHEY_SIMPLEX, 0.45, {0, 255, 255}, 1, cv::LINE_AA);
    width = std::max(width, row.cols);
    rows.push_back(row);
  }
  for (auto& r : rows)
    if (r.cols < width) cv::copyMakeBorder(r, r, 0, 0, 0, width - r.cols, cv::BORDER_CONSTANT, cv::Scalar(255, 255, 255));
  cv::Mat header(22, width, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::putText(header,
              task ? "IR | visible Y | fused | task net on fused (car blue, person red, bike green)" : "IR | visible Y | fused",
              {6, 16},
              cv::FONT_HERSHEY_SIMPLEX, 0.5, {0, 0, 0}, 1, cv::LINE_AA);
  rows.insert(rows.begin(), header);
  cv::Mat grid;
  cv::vconcat(rows, grid);
  write_image(path, grid);
  net->train();
}

nlohmann::json Trainer::Impl::task_evaluation() {
  torch::NoGradGuard ng;
  net->eval();
  tnet->eval();
  bnet->eval();
  const int C = static_cast<int>(cfg.base.task.classes);
  Confusion on_fused(C), on_vis(C), base_vis(C);
  double l_fused = 0, l_vis = 0, l_base = 0;
  for (size_t i = 0; i < task_eval.size(); ++i) {
    Batch b = task_eval.center(i, 0);
    auto ir = on_device(b.ir, b), vis = on_device(b.vis, b);
    auto y = host_labels(b.labels, b.n, b.h, b.w).to(plan.device);
    auto fused = net->forward(ir, vis);
    auto a = tnet->forward(fused), v = tnet->forward(vis), bl = bnet->forward(vis);
    on_fused.add(a, y), on_vis.add(v, y), base_vis.add(bl, y);
    l_fused += task_loss(a, y, class_weight).item<double>();
    l_vis += task_loss(v, y, class_weight).item<double>();
    l_base += task_loss(bl, y, class_weight).item<double>();
  }
  net->train();
  tnet->train();
  bnet->train();
  const double n = static_cast<double>(task_eval.size());
  auto entry = [&](const Confusion& c, double loss, const char* what) {
    std::vector<double> per;
    double miou = c.miou(&per);
    nlohmann::json pc = nlohmann::json::array();
    for (double v : per) pc.push_back(std::isnan(v) ? nlohmann::json() : nlohmann::json(v));
    return nlohmann::json{{"input", what}, {"task_loss", loss / n}, {"miou", miou}, {"pixel_accuracy", c.pixel_accuracy()},
                          {"iou_per_class", pc}};
  };
  nlohmann::json names = nlohmann::json::array();
  for (size_t i = 0; i < task_eval.size(); ++i) names.push_back(task_eval.at(i).name);
  nlohmann::json weights = nlohmann::json::array();
  if (class_weight.defined())
    for (int64_t c = 0; c < class_weight.size(0); ++c) weights.push_back(class_weight[c].item<double>());
  nlohmann::json out = {{"held_out_pairs", names},
                        {"labels", cfg.base.task_source().labels},
                        {"lambda", cfg.base.task.lambda},
                        {"class_weights", weights},
                        {"steps", done},
                        {"task_net_on_fused", entry(on_fused, l_fused, "fused image, task net trained on fused images")},
                        {"task_net_on_visible", entry(on_vis, l_vis, "visible Y fed to the task net trained on fused images")}};
  // Without task.baseline the baseline net was never trained: no row for it.
  if (cfg.base.task.baseline)
    out["baseline_on_visible"] = entry(base_vis, l_base, "visible Y, task net trained on visible only");
  return out;
}

void Trainer::save_model(const std::string& path, const std::string& provenance_json) const {
  write_model_file(path, *impl_->net, impl_->spec, provenance_json);
}

// Checks and loads what a resumed run continues from, records this session
// and writes config.json; returns the commit of the code that runs now (not
// at the end).
std::string Trainer::Impl::open_run(const std::string& ckpt, bool resume, bool writer, const std::string& command_line) {
  if (resume) require_checkpoint_to_resume(ckpt, dir);  // before anything in the folder changes
  if (writer) fs::create_directories(dir + "/previews");
  if (resume) {
    load_checkpoint(ckpt);
    if (!quiet)
      std::fprintf(stderr, "timfusion-train: resuming %s at step %lld\n", dir.c_str(), static_cast<long long>(done));
  }
  if (done > cfg.base.optim.steps)
    throw Error(ckpt + " is at step " + std::to_string(done) + ", beyond steps = " + std::to_string(cfg.base.optim.steps));
  sessions.push_back(command_line);
  const std::string commit = git_commit();
  if (writer) write_run_config(cfg, dir);
  return commit;
}

void Trainer::Impl::print_start() {
  if (quiet) return;
  std::fprintf(stderr, "timfusion-train: %s, %d channels, %lld parameters; run folder %s\n", spec.name.c_str(),
               spec.channels, static_cast<long long>(nn::count_parameters(*net)), dir.c_str());
  for (const auto& [src, n] : data.counts()) std::fprintf(stderr, "  data: %zu pairs from %s\n", n, src.c_str());
  if (task)
    std::fprintf(stderr, "  task: %zu labelled pairs for training, %zu held out (%s); task net %lld parameters\n",
                 task_train.size(), task_eval.size(), cfg.base.task_source().labels.c_str(),
                 static_cast<long long>(nn::count_parameters(*tnet)));
  for (const auto& n : notes) std::fprintf(stderr, "  note: %s\n", n.c_str());
  std::fprintf(stderr, "  device: %s\n", plan.describe().c_str());
  if (par)
    std::fprintf(stderr, "  data-parallel: %d processes (Gloo), %lld crops each per step\n", par->world_size(),
                 static_cast<long long>(cfg.base.optim.batch / par->world_size()));
}

// loss_curve.png: the loss columns of log.csv that this run computes.
void Trainer::Impl::write_curve(const CsvLog& log) const {
  std::vector<Series> s;
  for (size_t c : {1, 2, 3, 4, 5, 6, 7}) {
    if ((c >= 5) && !task) continue;
    if (c == 3 && w.gradient == 0) continue;
    if (c == 4 && w.ssim == 0) continue;
    Series se;
    se.name = kColumns[c];
    for (const auto& r : log.rows()) se.x.push_back(r[0]), se.y.push_back(r[c]);
    s.push_back(std::move(se));
  }
  write_curve_png(dir + "/loss_curve.png", "timfusion-train: " + fs::path(dir).filename().string(), s);
}

// Steps up to cfg.base.optim.steps through run/run_loop.h's StepLoop: a log
// row (and preview) per step, checkpoints and the curve every
// checkpoint_every; returns the loop's early exit status, if any.
std::optional<int> Trainer::Impl::train_steps(CsvLog& log, const std::string& ckpt, long stop_at, bool writer) {
  const int64_t steps = cfg.base.optim.steps, pv_every = cfg.base.output.preview_every;
  StepLoop loop("train", dir, steps, cfg.base.output.checkpoint_every, stop_at, quiet);
  StepStats st;
  loop.step = [&] { st = step(done); };
  DivergenceGuard divergence;
  loop.record = [&] {
    divergence.check(st.loss, done);
    if (!writer) return std::string();
    log.append({static_cast<double>(done), st.loss, st.intensity, st.gradient, st.ssim, task ? st.task : NAN,
                task ? st.task_lower : NAN, task && cfg.base.task.baseline ? st.baseline : NAN, st.lr, elapsed});
    log.flush();  // one write per step: the log can be watched (tail -f)
    if ((pv_every > 0 && done % pv_every == 0) || done == steps) {
      char name[64];
      std::snprintf(name, sizeof name, "/previews/step-%06lld.png", static_cast<long long>(done));
      preview(dir + name);
    }
    std::string status = "loss " + fmt("%.4f", log.recent_mean(1, 20)) + " int " + fmt("%.4f", log.recent_mean(2, 20)) +
                         " grad " + fmt("%.4f", log.recent_mean(3, 20)) + " ssim " + fmt("%.4f", log.recent_mean(4, 20));
    if (task) status += " task " + fmt("%.3f", log.recent_mean(5, 20));
    return status + " lr " + fmt("%.1e", st.lr);
  };
  loop.flush = [&] { log.flush(); };
  loop.checkpoint = [&] {
    if (!writer) return;
    save_checkpoint(ckpt);
    write_curve(log);
  };
  if (par) loop.stop_requested = [this] { return stop_agreed; };
  return run_step_loop(loop, *this);
}

// The model file's provenance: everything needed to make these weights again.
nlohmann::json Trainer::Impl::provenance(const CsvLog& log, const std::string& commit, const nlohmann::json& task_eval_result) const {
  const Config& c = cfg.base;
  nlohmann::json losses = {{"window_steps", std::min(kFinalWindow, log.rows().size())},
                           {"total", log.recent_mean(1, kFinalWindow)},
                           {"intensity", log.recent_mean(2, kFinalWindow)},
                           {"gradient", log.recent_mean(3, kFinalWindow)},
                           {"ssim", log.recent_mean(4, kFinalWindow)}};
  if (task) losses["task"] = log.recent_mean(5, kFinalWindow);
  nlohmann::json prov = {{"tool", "timfusion-train train"},
                         {"git_commit", commit},
                         {"command_lines", sessions},
                         {"data", data.provenance(c.data_sources())},
                         {"steps", c.optim.steps},
                         {"seed", c.optim.seed},
                         {"batch", c.optim.batch},
                         {"crop", c.optim.crop},
                         {"threads", c.runtime.threads},
                         {"loss_weights", c.values()["loss"]},
                         {"final_losses", losses},
                         {"train_seconds", std::round(elapsed)},
                         {"finished", utc_now()},
                         {"config", c.values()}};
  if (!c.model.init.empty()) {
    // The starting weights are part of the training data's story (a
    // meta-initialisation saw its pretext tasks): carry their provenance along.
    nlohmann::json init = {{"path", c.model.init}};
    try {
      init["provenance"] = nlohmann::json::parse(load_model_file(c.model.init, c.model.arch).provenance);
    } catch (const std::exception& e) {
      init["provenance_error"] = e.what();
    }
    prov["init"] = init;
  }
  if (task) {
    prov["task"] = {{"data", c.task_source().str()},
                    {"lambda", c.task.lambda},
                    {"miou_fused", task_eval_result["task_net_on_fused"]["miou"]},
                    {"miou_visible_baseline", task_eval_result.contains("baseline_on_visible")
                                                  ? task_eval_result["baseline_on_visible"]["miou"]
                                                  : nlohmann::json()}};
  }
  return prov;
}

// The closing lines: where the weights are (stderr) and the task table (stdout).
void Trainer::Impl::print_summary(const CsvLog& log, const nlohmann::json& task_eval_result) const {
  if (!quiet) {
    std::fprintf(stderr, "timfusion-train: done: %lld steps, %.0f s of training; final loss %.4f (mean of the last %zu steps)\n",
                 static_cast<long long>(cfg.base.optim.steps), elapsed, log.recent_mean(1, kFinalWindow),
                 std::min(kFinalWindow, log.rows().size()));
    std::fprintf(stderr, "  weights: %s/model.safetensors\n", dir.c_str());
  }
  if (!task) return;
  std::printf("task evaluation on %zu held-out pairs (%s):\n", task_eval.size(), cfg.base.task_source().labels.c_str());
  std::printf("  %-58s %9s %8s %8s\n", "input", "task loss", "mIoU", "pix acc");
  for (const char* k : {"task_net_on_fused", "task_net_on_visible", "baseline_on_visible"}) {
    if (!task_eval_result.contains(k)) continue;
    const auto& e = task_eval_result[k];
    std::printf("  %-58s %9.4f %8.4f %8.4f\n", e["input"].get<std::string>().c_str(), e["task_loss"].get<double>(),
                e["miou"].is_number() ? e["miou"].get<double>() : NAN, e["pixel_accuracy"].get<double>());
  }
  std::printf("  (also in %s/task_eval.json)\n", dir.c_str());
}

int Trainer::run(long stop_at, bool resume, const std::string& command_line) {
  Impl& m = *impl_;
  const std::string ckpt = m.dir + "/checkpoint.safetensors";
  const bool writer = !m.par || m.par->writer();  // data-parallel: rank 0 alone writes the run folder
  const std::string commit = m.open_run(ckpt, resume, writer, command_line);
  CsvLog log;
  if (writer) log.open(m.dir + "/log.csv", kColumns, resume ? m.done : -1);
  m.print_start();
  if (std::optional<int> code = m.train_steps(log, ckpt, stop_at, writer)) return *code;
  if (!writer) return 0;

  nlohmann::json task_eval;
  if (m.task) {
    task_eval = m.task_evaluation();
    write_text_atomic(m.dir + "/task_eval.json", task_eval.dump(2) + "\n");
  }
  save_model(m.dir + "/model.safetensors", m.provenance(log, commit, task_eval).dump());
  m.print_summary(log, task_eval);
  return 0;
}

}  // namespace timfusion::train
