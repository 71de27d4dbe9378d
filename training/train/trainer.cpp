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
#include "nn/networks.h"
#include "nn/state_dict.h"
#include "run/checkpoint.h"
#include "run/plot.h"
#include "run/run_dir.h"
#include "run/run_loop.h"
#include "task/seg_net.h"
#include "timfusion/arch.h"
#include "timfusion/error.h"
#include "timfusion/model_file.h"
#include "timfusion/pairs.h"
#include "run/stop_signal.h"
#include "timfusion/progress.h"

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {


const std::vector<std::string> kColumns = {"step", "loss", "intensity", "gradient", "ssim", "task",
                                           "task_lower", "baseline", "lr", "seconds"};

torch::Tensor to_tensor(const std::vector<float>& v, int n, int h, int w) {
  return torch::from_blob(const_cast<float*>(v.data()), {n, 1, h, w}, torch::kFloat32).clone();
}
torch::Tensor labels_tensor(const Batch& b) {
  return torch::from_blob(const_cast<int64_t*>(b.labels.data()), {b.n, b.h, b.w}, torch::kInt64).clone();
}

cv::Mat to_u8(const torch::Tensor& t) {  // [1,1,H,W] -> CV_8UC1
  auto c = (t.detach().clamp(0, 1) * 255).round().to(torch::kUInt8).contiguous();
  cv::Mat m(static_cast<int>(c.size(2)), static_cast<int>(c.size(3)), CV_8UC1, c.data_ptr<uint8_t>());
  return m.clone();
}

}  // namespace

struct Trainer::Impl : RunProgress {
  Config cfg;
  ArchSpec spec;
  PairDataset data, task_train, task_eval;
  bool task = false, fuse_task_batch = false;
  nn::TimNet net{nullptr};
  SegNet tnet{nullptr}, bnet{nullptr};
  std::unique_ptr<Adam> opt, topt, bopt;
  FusionLossWeights w;
  torch::Tensor class_weight;  // undefined: plain cross-entropy
  std::vector<std::string> notes;

  StepStats step(int64_t k);
  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);
  void preview(const std::string& path);
  nlohmann::json task_evaluation();
};

Trainer::Trainer(const Config& config) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.cfg = config;
  m.cfg.validate();
  if (m.cfg.i("threads") > 0) torch::set_num_threads(static_cast<int>(m.cfg.i("threads")));
  m.spec = ArchSpec::resolve(m.cfg.s("arch"));
  if (m.cfg.i("channels") > 0) m.spec.channels = static_cast<int>(m.cfg.i("channels"));
  m.spec.validate();
  m.task = m.cfg.b("task.enabled");
  m.w = fusion_loss_weights(m.cfg);

  if (!m.cfg.at("data").empty()) {
    m.data = PairDataset::load(m.cfg.data_sources());
    m.notes = m.data.notes();
  }
  if (m.task) {
    auto all = PairDataset::load({m.cfg.task_source()}, true, static_cast<int>(m.cfg.i("task.classes")));
    for (const auto& n : all.notes()) m.notes.push_back(n);
    std::tie(m.task_train, m.task_eval) = all.split_holdout(static_cast<size_t>(m.cfg.i("task.eval_pairs")));
    if (m.cfg.b("task.balance"))
      m.class_weight = balanced_class_weights(m.task_train.class_counts(static_cast<int>(m.cfg.i("task.classes"))));
    // Without separate fusion data the fusion losses use the task batch.
    m.fuse_task_batch = m.cfg.at("data").empty();
  }

  torch::manual_seed(static_cast<uint64_t>(m.cfg.i("seed")));
  m.net = nn::TimNet(m.spec);
  if (!m.cfg.s("init").empty()) {
    ModelFile f = load_model_file(m.cfg.s("init"), m.cfg.s("arch"));
    nn::load_state(*m.net, f.weights, m.cfg.s("init"));
  }
  m.net->train();
  m.opt = std::make_unique<Adam>(*m.net);
  if (m.task) {
    const int64_t width = m.cfg.i("task.width"), classes = m.cfg.i("task.classes");
    torch::manual_seed(static_cast<uint64_t>(m.cfg.i("seed")) + 1);
    m.tnet = SegNet(1, width, classes);
    torch::manual_seed(static_cast<uint64_t>(m.cfg.i("seed")) + 1);  // the baseline starts identical
    m.bnet = SegNet(1, width, classes);
    m.tnet->train();
    m.bnet->train();
    m.topt = std::make_unique<Adam>(*m.tnet);
    m.bopt = std::make_unique<Adam>(*m.bnet);
  }
}

Trainer::~Trainer() = default;

const std::vector<std::string>& Trainer::notes() const { return impl_->notes; }
int64_t Trainer::steps_done() const { return impl_->done; }

SafetensorsFile Trainer::fusion_state() const { return nn::to_safetensors(*impl_->net); }
SafetensorsFile Trainer::task_state() const {
  return impl_->task ? nn::to_safetensors(*impl_->tnet) : SafetensorsFile{};
}

StepStats Trainer::step(int64_t k) { return impl_->step(k); }

StepStats Trainer::Impl::step(int64_t k) {
  StepStats st;
  st.lr = scheduled_lr(cfg, k);
  const uint64_t seed = static_cast<uint64_t>(cfg.i("seed"));
  const int batch = static_cast<int>(cfg.i("batch")), crop = static_cast<int>(cfg.i("crop"));
  const bool flip = cfg.b("flip");

  torch::Tensor fused, ir, vis;
  ImageMeans means;
  if (!fuse_task_batch) {
    Batch b = data.sample(seed, k, /*stream=*/0, batch, crop, flip);
    ir = to_tensor(b.ir, b.n, b.h, b.w);
    vis = to_tensor(b.vis, b.n, b.h, b.w);
    means = image_means(b);
    // Noisy inputs, clean targets (sensor_noise.h).
    const double noise = cfg.d("noise");
    fused = net->forward(add_sensor_noise(ir, noise, seed, k, 0), add_sensor_noise(vis, noise, seed, k, 1));
  }
  torch::Tensor upper_task;
  if (task) {
    const int tb = cfg.i("task.batch") > 0 ? static_cast<int>(cfg.i("task.batch")) : batch;
    const int tc = cfg.i("task.crop") > 0 ? static_cast<int>(cfg.i("task.crop")) : crop;
    Batch b = task_train.sample(seed, k, /*stream=*/1, tb, tc, flip);
    auto tir = to_tensor(b.ir, b.n, b.h, b.w), tvis = to_tensor(b.vis, b.n, b.h, b.w);
    auto y = labels_tensor(b);
    auto tfused = net->forward(tir, tvis);
    if (fuse_task_batch) fused = tfused, ir = tir, vis = tvis, means = image_means(b);
    // Lower level: the task net follows the current fusion net (its output
    // detached), theta_T <- argmin L_task(T(F(x)), y), approximated by
    // task.inner_steps Adam steps.
    auto detached = tfused.detach();
    const double tlr = cfg.d("task.lr");
    for (int64_t i = 0; i < cfg.i("task.inner_steps"); ++i) {
      topt->zero_grad();
      auto l = task_loss(tnet->forward(detached), y, class_weight);
      l.backward();
      topt->step(tlr);
      st.task_lower = l.item<double>();
    }
    if (cfg.b("task.baseline")) {
      bopt->zero_grad();
      auto l = task_loss(bnet->forward(tvis), y, class_weight);
      l.backward();
      bopt->step(tlr);
      st.baseline = l.item<double>();
    }
    // Upper level: the fusion net sees the task loss through the updated task net.
    upper_task = task_loss(tnet->forward(tfused), y, class_weight);
    st.task = upper_task.item<double>();
  }
  FusionLosses l = fusion_losses(fused, ir, vis, w, means);
  torch::Tensor total = l.total;
  if (task) total = total + cfg.d("task.lambda") * upper_task;
  opt->zero_grad();
  total.backward();
  if (cfg.d("grad_clip") > 0) clip_grad_norm(*net, cfg.d("grad_clip"));
  opt->step(st.lr);
  st.loss = total.item<double>();
  st.intensity = l.intensity.item<double>();
  st.gradient = l.gradient.item<double>();
  st.ssim = l.ssim.item<double>();
  done = k + 1;
  return st;
}

void Trainer::Impl::save_checkpoint(const std::string& path) const {
  SafetensorsFile f;
  save_module(f, *net, "fusion/");
  opt->save(f, "adam.fusion/");
  if (task) {
    save_module(f, *tnet, "task/");
    topt->save(f, "adam.task/");
    save_module(f, *bnet, "baseline/");
    bopt->save(f, "adam.baseline/");
  }
  set_checkpoint_progress(f, *this);
  f.metadata["timfusion.arch"] = spec.to_json();
  write_safetensors(path, f);
}

void Trainer::Impl::load_checkpoint(const std::string& path) {
  SafetensorsFile f = read_checkpoint(path, *this);
  load_module(*net, f, "fusion/", path);
  opt->load(f, "adam.fusion/");
  if (task) {
    load_module(*tnet, f, "task/", path);
    topt->load(f, "adam.task/");
    load_module(*bnet, f, "baseline/", path);
    bopt->load(f, "adam.baseline/");
  }
}

void Trainer::Impl::preview(const std::string& path) {
  const PairDataset& src = fuse_task_batch ? task_eval : data;
  const int side = static_cast<int>(cfg.i("preview_size"));
  const size_t n = std::min<size_t>(src.size(), static_cast<size_t>(cfg.i("preview_pairs")));
  if (n == 0) return;
  torch::NoGradGuard ng;
  net->eval();
  std::vector<cv::Mat> rows;
  int width = 0;
  for (size_t i = 0; i < n; ++i) {
    // Spread over the data: pairs 0, N/n, 2N/n, ...
    Batch b = src.center(i * src.size() / n, side);
    auto ir = to_tensor(b.ir, 1, b.h, b.w), vis = to_tensor(b.vis, 1, b.h, b.w);
    auto fused = net->forward(ir, vis);
    std::vector<cv::Mat> tiles = {to_u8(ir), to_u8(vis), to_u8(fused)};
    if (task) {
      auto pred = tnet->forward(fused.clamp(0, 1)).argmax(1).to(torch::kUInt8).contiguous();
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
  const int C = static_cast<int>(cfg.i("task.classes"));
  Confusion on_fused(C), on_vis(C), base_vis(C);
  double l_fused = 0, l_vis = 0, l_base = 0;
  for (size_t i = 0; i < task_eval.size(); ++i) {
    Batch b = task_eval.center(i, 0);
    auto ir = to_tensor(b.ir, 1, b.h, b.w), vis = to_tensor(b.vis, 1, b.h, b.w);
    auto y = labels_tensor(b);
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
                        {"labels", cfg.task_source().labels},
                        {"lambda", cfg.d("task.lambda")},
                        {"class_weights", weights},
                        {"steps", done},
                        {"task_net_on_fused", entry(on_fused, l_fused, "fused image, task net trained on fused images")},
                        {"task_net_on_visible", entry(on_vis, l_vis, "visible Y fed to the task net trained on fused images")}};
  // Without task.baseline the baseline net was never trained: no row for it.
  if (cfg.b("task.baseline"))
    out["baseline_on_visible"] = entry(base_vis, l_base, "visible Y, task net trained on visible only");
  return out;
}

void Trainer::save_model(const std::string& path, const std::string& provenance_json) const {
  write_model_file(path, *impl_->net, impl_->spec, provenance_json);
}

int Trainer::run(const RunOptions& o) {
  Impl& m = *impl_;
  const std::string dir = o.run_dir;
  const std::string ckpt = dir + "/checkpoint.safetensors";
  fs::create_directories(dir + "/previews");
  if (o.resume) {
    if (!fs::exists(ckpt)) {
      std::fprintf(stderr, "timfusion-train: %s has no checkpoint yet: starting from step 0\n", dir.c_str());
    } else {
      m.load_checkpoint(ckpt);
      std::fprintf(stderr, "timfusion-train: resuming %s at step %lld\n", dir.c_str(), static_cast<long long>(m.done));
    }
  }
  if (m.done > m.cfg.i("steps"))
    throw Error(ckpt + " is at step " + std::to_string(m.done) + ", beyond steps = " + std::to_string(m.cfg.i("steps")));
  m.sessions.push_back(o.command_line);
  const std::string commit = git_commit();  // of the code that runs now, not at the end
  write_text_atomic(dir + "/config.json", m.cfg.dump() + "\n");

  CsvLog log;
  log.open(dir + "/log.csv", kColumns, o.resume ? m.done : -1);
  auto curve = [&]() {
    std::vector<Series> s;
    for (size_t c : {1, 2, 3, 4, 5, 6, 7}) {
      if ((c >= 5) && !m.task) continue;
      if (c == 3 && m.w.gradient == 0) continue;
      if (c == 4 && m.w.ssim == 0) continue;
      Series se;
      se.name = kColumns[c];
      for (const auto& r : log.rows()) se.x.push_back(r[0]), se.y.push_back(r[c]);
      s.push_back(std::move(se));
    }
    write_curve_png(dir + "/loss_curve.png", "timfusion-train: " + fs::path(dir).filename().string(), s);
  };

  const int64_t steps = m.cfg.i("steps"), ck_every = m.cfg.i("checkpoint_every"), pv_every = m.cfg.i("preview_every");
  if (!o.quiet) {
    std::fprintf(stderr, "timfusion-train: %s, %d channels, %lld parameters; run folder %s\n", m.spec.name.c_str(),
                 m.spec.channels, static_cast<long long>(nn::count_parameters(*m.net)), dir.c_str());
    for (const auto& [src, n] : m.data.counts()) std::fprintf(stderr, "  data: %zu pairs from %s\n", n, src.c_str());
    if (m.task)
      std::fprintf(stderr, "  task: %zu labelled pairs for training, %zu held out (%s); task net %lld parameters\n",
                   m.task_train.size(), m.task_eval.size(), m.cfg.task_source().labels.c_str(),
                   static_cast<long long>(nn::count_parameters(*m.tnet)));
    for (const auto& n : m.notes) std::fprintf(stderr, "  note: %s\n", n.c_str());
  }

  StopSignal stop;

  const int64_t first = m.done;
  // Counts this session's steps, so the rate and ETA are right after a resume.
  Progress bar(first ? "train (resumed at step " + std::to_string(first) + ")" : std::string("train"), steps - first,
               !o.quiet && steps > first);
  auto t0 = std::chrono::steady_clock::now();
  double base_elapsed = m.elapsed;
  while (m.done < steps) {
    StepStats st = m.step(m.done);
    m.elapsed = base_elapsed + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!std::isfinite(st.loss))
      throw Error("the loss became " + fmt("%g", st.loss) + " at step " + std::to_string(m.done) +
                  ": lower lr or set grad_clip (the last checkpoint is intact)");
    log.append({static_cast<double>(m.done), st.loss, st.intensity, st.gradient, st.ssim, m.task ? st.task : NAN,
                m.task ? st.task_lower : NAN, m.task && m.cfg.b("task.baseline") ? st.baseline : NAN, st.lr, m.elapsed});
    log.flush();  // one write per step: the log can be watched (tail -f)
    const bool last = m.done == steps;
    if (m.done % ck_every == 0 || last || StopSignal::requested()) {
      log.flush();
      m.save_checkpoint(ckpt);
      curve();
    }
    if ((pv_every > 0 && m.done % pv_every == 0) || last) {
      char name[64];
      std::snprintf(name, sizeof name, "/previews/step-%06lld.png", static_cast<long long>(m.done));
      m.preview(dir + name);
    }
    std::string status = "loss " + fmt("%.4f", log.recent_mean(1, 20)) + " int " + fmt("%.4f", log.recent_mean(2, 20)) +
                         " grad " + fmt("%.4f", log.recent_mean(3, 20)) + " ssim " + fmt("%.4f", log.recent_mean(4, 20));
    if (m.task) status += " task " + fmt("%.3f", log.recent_mean(5, 20));
    status += " lr " + fmt("%.1e", st.lr);
    bar.update(m.done - first, status);
    if (StopSignal::requested()) {
      log.flush();
      std::fprintf(stderr, "\ntimfusion-train: interrupted at step %lld; checkpoint saved. Continue with:\n  %s train --resume %s\n",
                   static_cast<long long>(m.done), "timfusion-train", dir.c_str());
      return 130;
    }
    if (o.stop_at >= 0 && m.done >= o.stop_at && !last) {
      log.flush();
      std::fprintf(stderr, "\ntimfusion-train: stopped after step %lld (--stop-at; checkpoint as of step %lld)\n",
                   static_cast<long long>(m.done), static_cast<long long>(m.done - m.done % ck_every));
      return 0;
    }
  }
  if (steps > first) bar.finish();
  log.flush();
  if (first == steps) {
    // Resumed a finished run: outputs are rewritten below, nothing trained.
    m.save_checkpoint(ckpt);
    curve();
  }

  nlohmann::json task_eval;
  if (m.task) {
    task_eval = m.task_evaluation();
    write_text_atomic(dir + "/task_eval.json", task_eval.dump(2) + "\n");
  }

  // Provenance: everything needed to make these weights again.
  const size_t window = 100;
  nlohmann::json losses = {{"window_steps", std::min(window, log.rows().size())},
                           {"total", log.recent_mean(1, window)},
                           {"intensity", log.recent_mean(2, window)},
                           {"gradient", log.recent_mean(3, window)},
                           {"ssim", log.recent_mean(4, window)}};
  if (m.task) losses["task"] = log.recent_mean(5, window);
  nlohmann::json prov = {{"tool", "timfusion-train train"},
                         {"git_commit", commit},
                         {"command_lines", m.sessions},
                         {"data", m.data.provenance(m.cfg.data_sources())},
                         {"steps", steps},
                         {"seed", m.cfg.i("seed")},
                         {"batch", m.cfg.i("batch")},
                         {"crop", m.cfg.i("crop")},
                         {"threads", m.cfg.i("threads")},
                         {"loss_weights", m.cfg.at("loss")},
                         {"final_losses", losses},
                         {"train_seconds", std::round(m.elapsed)},
                         {"finished", utc_now()},
                         {"config", m.cfg.values()}};
  if (!m.cfg.s("init").empty()) {
    // The starting weights are part of the training data's story (a
    // meta-initialisation saw its pretext tasks): carry their provenance along.
    nlohmann::json init = {{"path", m.cfg.s("init")}};
    try {
      init["provenance"] = nlohmann::json::parse(load_model_file(m.cfg.s("init"), m.cfg.s("arch")).provenance);
    } catch (const std::exception& e) {
      init["provenance_error"] = e.what();
    }
    prov["init"] = init;
  }
  if (m.task) {
    prov["task"] = {{"data", m.cfg.task_source().str()},
                    {"lambda", m.cfg.d("task.lambda")},
                    {"miou_fused", task_eval["task_net_on_fused"]["miou"]},
                    {"miou_visible_baseline",
                     task_eval.contains("baseline_on_visible") ? task_eval["baseline_on_visible"]["miou"] : nlohmann::json()}};
  }
  save_model(dir + "/model.safetensors", prov.dump());

  if (!o.quiet) {
    std::fprintf(stderr, "timfusion-train: done: %lld steps, %.0f s of training; final loss %.4f (mean of the last %zu steps)\n",
                 static_cast<long long>(steps), m.elapsed, log.recent_mean(1, window), std::min(window, log.rows().size()));
    std::fprintf(stderr, "  weights: %s/model.safetensors\n", dir.c_str());
  }
  if (m.task) {
    std::printf("task evaluation on %zu held-out pairs (%s):\n", m.task_eval.size(), m.cfg.task_source().labels.c_str());
    std::printf("  %-58s %9s %8s %8s\n", "input", "task loss", "mIoU", "pix acc");
    for (const char* k : {"task_net_on_fused", "task_net_on_visible", "baseline_on_visible"}) {
      if (!task_eval.contains(k)) continue;
      const auto& e = task_eval[k];
      std::printf("  %-58s %9.4f %8.4f %8.4f\n", e["input"].get<std::string>().c_str(), e["task_loss"].get<double>(),
                  e["miou"].is_number() ? e["miou"].get<double>() : NAN, e["pixel_accuracy"].get<double>());
    }
    std::printf("  (also in %s/task_eval.json)\n", dir.c_str());
  }
  return 0;
}

}  // namespace timfusion::train
