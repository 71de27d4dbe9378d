// timfusion-train downstream: the segmentation protocol that measures what an
// input (IR, visible, a blend, a fusion model's output) is worth to a
// downstream task. For each input the same small segmentation network
// (task/seg_net.h) is trained from the same seeds on the same crops of the
// training pairs, and scored (mIoU, per-class IoU) on the test pairs, so the
// rows differ only in the images. No LibTorch in this header.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "run/config.h"

namespace timfusion::train {

// One labelled image of one input type.
struct SegImage {
  std::string name;
  cv::Mat image;        // CV_32FC1 in [0,1], at the protocol's resolution (downstream.scale)
  cv::Mat label_small;  // CV_8UC1 class ids, the label resized to `image` (nearest): training targets
  cv::Mat label;        // CV_8UC1 class ids at the original resolution: the test ground truth
};

struct SeedScore {
  int64_t seed = 0;
  double miou = 0, pixel_accuracy = 0;
  std::vector<double> iou;  // per class; NaN where the test ground truth lacks the class
  double final_loss = 0;    // mean training loss of the last 10% of the steps
  double seconds = 0;       // training + test time
};

// Trains a fresh SegNet (1 input channel, task.width, task.classes;
// initialised from `seed`) for `steps` Adam steps on `batch` random crops of
// side `crop` (with flips when `flip`), the learning rate as train's
// (lr, lr_min, lr_schedule, warmup), class-balanced cross-entropy when
// task.balance; the crops are a pure function of (seed, step) and the image
// sizes, so every input type sees the same positions. Then scores the test
// images at their label's resolution (logits upsampled bilinearly), with the
// net in eval mode. `progress(step, loss)` is called after every step.
SeedScore train_and_score(const std::vector<SegImage>& train, const std::vector<SegImage>& test, const Config& cfg,
                          int64_t seed, const std::function<void(int64_t, double)>& progress = {});

// torch::set_num_threads, for callers without LibTorch.
void use_threads(int n);

// Parameters of that network (task.width, task.classes), for the report.
int64_t seg_net_parameters(int64_t width, int64_t classes);

}  // namespace timfusion::train
