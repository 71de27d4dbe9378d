#include "task/downstream.h"

#include <chrono>
#include <cmath>
#include <random>

#include <opencv2/core.hpp>

#include "data/pair_dataset.h"
#include "run/checkpoint.h"
#include "run/divergence.h"
#include "task/seg_net.h"
#include "timfusion/error.h"

namespace F = torch::nn::functional;

namespace timfusion::train {

namespace {

// `batch` crops (images [n,1,c,c], labels [n,c,c]) drawn from (seed, step)
// alone: image choice, position and flip do not depend on pixel values, so
// every input type of the same pairs gets the same crops.
std::pair<torch::Tensor, torch::Tensor> sample_crops(const std::vector<SegImage>& set, uint64_t seed, int64_t step,
                                                     int n, int crop, bool flip) {
  std::mt19937_64 rng(mix64(mix64(seed) ^ mix64(static_cast<uint64_t>(step) * 0x100000001b3ULL + 0x5e9)));
  auto uniform = [&](uint64_t k) { return static_cast<int>(rng() % k); };
  auto x = torch::empty({n, 1, crop, crop}, torch::kFloat32);
  auto y = torch::empty({n, crop, crop}, torch::kInt64);
  float* xp = x.data_ptr<float>();
  int64_t* yp = y.data_ptr<int64_t>();
  for (int k = 0; k < n; ++k) {
    const SegImage& s = set[uniform(set.size())];
    cv::Mat im = s.image, lab = s.label_small;
    if (im.cols < crop || im.rows < crop) {  // small images: reflect-pad to the crop (as PairDataset)
      int dx = std::max(0, crop - im.cols), dy = std::max(0, crop - im.rows);
      cv::copyMakeBorder(im, im, dy / 2, dy - dy / 2, dx / 2, dx - dx / 2, cv::BORDER_REFLECT_101);
      cv::copyMakeBorder(lab, lab, dy / 2, dy - dy / 2, dx / 2, dx - dx / 2, cv::BORDER_REFLECT_101);
    }
    const int x0 = uniform(im.cols - crop + 1), y0 = uniform(im.rows - crop + 1);
    const int f = flip ? uniform(4) : 0;  // 0 none, 1 horizontal, 2 vertical, 3 both
    for (int r = 0; r < crop; ++r) {
      const int sr = y0 + ((f & 2) ? crop - 1 - r : r);
      const float* irow = im.ptr<float>(sr);
      const uint8_t* lrow = lab.ptr<uint8_t>(sr);
      for (int c = 0; c < crop; ++c) {
        const int sc = x0 + ((f & 1) ? crop - 1 - c : c);
        xp[(static_cast<int64_t>(k) * crop + r) * crop + c] = irow[sc];
        yp[(static_cast<int64_t>(k) * crop + r) * crop + c] = lrow[sc];
      }
    }
  }
  return {x, y};
}

torch::Tensor image_tensor(const cv::Mat& m) {
  return torch::from_blob(const_cast<float*>(m.ptr<float>()), {1, 1, m.rows, m.cols}, torch::kFloat32).clone();
}

torch::Tensor label_tensor(const cv::Mat& m) {
  return torch::from_blob(const_cast<uint8_t*>(m.ptr<uint8_t>()), {1, m.rows, m.cols}, torch::kUInt8).to(torch::kInt64);
}

}  // namespace

void use_threads(int n) { torch::set_num_threads(n); }

int64_t seg_net_parameters(int64_t width, int64_t classes) {
  SegNet net(1, width, classes);
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

SeedScore train_and_score(const std::vector<SegImage>& train, const std::vector<SegImage>& test, const Config& cfg,
                          int64_t seed, const std::function<void(int64_t, double)>& progress) {
  if (train.empty() || test.empty()) throw Error("the downstream protocol needs training and test images");
  for (const auto* set : {&train, &test})
    for (const auto& s : *set)
      if (s.image.type() != CV_32FC1 || s.label_small.type() != CV_8UC1 || s.label.type() != CV_8UC1 ||
          s.image.size() != s.label_small.size())
        throw Error("internal: downstream image \"" + s.name + "\" is not a float plane with matching labels");
  const auto t0 = std::chrono::steady_clock::now();
  const int classes = static_cast<int>(cfg.task.classes);
  const int64_t steps = cfg.optim.steps;
  const int batch = static_cast<int>(cfg.optim.batch), crop = static_cast<int>(cfg.optim.crop);
  const bool flip = cfg.optim.flip;

  torch::Tensor weight;
  if (cfg.task.balance) {
    std::vector<int64_t> counts(classes, 0);
    for (const auto& s : train)
      for (int r = 0; r < s.label_small.rows; ++r)
        for (int c = 0; c < s.label_small.cols; ++c)
          if (s.label_small.at<uint8_t>(r, c) < classes) ++counts[s.label_small.at<uint8_t>(r, c)];
    weight = balanced_class_weights(counts);
  }

  torch::manual_seed(static_cast<uint64_t>(seed));
  SegNet net(1, cfg.task.width, classes);
  net->train();
  Adam opt(*net);
  SeedScore out;
  out.seed = seed;
  const int64_t tail = std::max<int64_t>(1, steps / 10);
  double tail_sum = 0;
  DivergenceGuard divergence;  // an exploding loss stops the score, not only NaN (issue 27)
  for (int64_t k = 0; k < steps; ++k) {
    auto [x, y] = sample_crops(train, static_cast<uint64_t>(seed), k, batch, crop, flip);
    opt.zero_grad();
    auto loss = task_loss(net->forward(x), y, weight);
    loss.backward();
    opt.step(scheduled_lr(cfg, k));
    const double l = loss.item<double>();
    divergence.check(l, k, "segmentation loss");
    if (k >= steps - tail) tail_sum += l;
    if (progress) progress(k + 1, l);
  }
  out.final_loss = steps > 0 ? tail_sum / static_cast<double>(std::min(tail, steps)) : NAN;

  torch::NoGradGuard ng;
  net->eval();
  Confusion conf(classes);
  for (const auto& s : test) {
    auto logits = net->forward(image_tensor(s.image));
    if (s.label.rows != s.image.rows || s.label.cols != s.image.cols)
      logits = F::interpolate(logits, F::InterpolateFuncOptions()
                                          .size(std::vector<int64_t>{s.label.rows, s.label.cols})
                                          .mode(torch::kBilinear)
                                          .align_corners(false));
    conf.add(logits, label_tensor(s.label));
  }
  out.miou = conf.miou(&out.iou);
  out.pixel_accuracy = conf.pixel_accuracy();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace timfusion::train
