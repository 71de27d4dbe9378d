// timfusion-train: IR/visible pairs (optionally with class-id masks) held in
// memory, and deterministic random crops from them.
//
// Every image is converted once at load time: IR to one plane (8-bit kept,
// 16-bit scaled by 1/65535, colour IR by its luma), the visible image to its
// BT.601 luma (OpenCV reads BGR). A batch is a pure function of
// (seed, step, stream): resuming a run needs no data-loader state.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "run/config.h"

namespace timfusion::train {

struct Sample {
  std::string name;    // base name
  std::string source;  // the IR folder it came from
  cv::Mat ir;          // CV_8UC1 or CV_32FC1 in [0,1]
  cv::Mat vis_y;       // CV_8UC1
  cv::Mat label;       // CV_8UC1 class ids, or empty
  // Whole-image means in [0,1]: the reference the salient intensity target
  // measures deviation from (losses/fusion_losses.h), so that a crop is judged
  // against its image as the network's full-frame output will be.
  float ir_mean = 0, vis_mean = 0;
};

// Crops as float planes, NCHW with C = 1, values in [0,1].
struct Batch {
  int n = 0, h = 0, w = 0;
  std::vector<float> ir, vis;
  std::vector<int64_t> labels;  // n*h*w class ids when the data has labels
  std::vector<float> ir_mean, vis_mean;  // per crop: its whole image's mean in [0,1]
  std::vector<std::string> names;
};

class PairDataset {
 public:
  // Loads every pair of every source. Throws Error for a missing folder, an
  // empty source, an image without its partner, IR/visible (or label) size
  // mismatch, or a class id >= `classes`. With need_labels, pairs without a
  // label file are skipped (the task sets label only part of their pairs).
  static PairDataset load(const std::vector<DataSource>& sources, bool need_labels = false, int classes = 256);

  size_t size() const { return samples_.size(); }
  const Sample& at(size_t i) const { return samples_[i]; }
  bool has_labels() const { return !samples_.empty() && !samples_[0].label.empty(); }
  // Things worth telling the user (excluded names, skipped pairs).
  const std::vector<std::string>& notes() const { return notes_; }
  // Counts per source folder, for provenance.
  const std::vector<std::pair<std::string, size_t>>& counts() const { return counts_; }
  // `sources` (those this set was loaded from) for provenance:
  // [{"ir", "vis", "exclude" when set, "pairs"}].
  json provenance(const std::vector<DataSource>& sources) const;

  // Splits off `n` samples evenly spaced in name order (the i-th held out
  // is at floor((i + 0.5) * size / n)) as a second set: (kept, held out).
  std::pair<PairDataset, PairDataset> split_holdout(size_t n) const;
  // Pixels per class id over all labels (size `classes`).
  std::vector<int64_t> class_counts(int classes) const;

  // `n` random crops of side `crop` (reflect-padded when an image is
  // smaller), with random flips when `flip`. Pure function of the arguments.
  Batch sample(uint64_t seed, int64_t step, uint64_t stream, int n, int crop, bool flip) const;
  // The centred crop of at most `side` x `side` of sample i (side <= 0: whole).
  Batch center(size_t i, int side) const;

 private:
  std::vector<Sample> samples_;
  std::vector<std::string> notes_;
  std::vector<std::pair<std::string, size_t>> counts_;
};

// Crops [part * n / parts, (part + 1) * n / parts) of `b` (n a multiple of
// parts): a data-parallel rank's share of a global batch.
Batch share_of(const Batch& b, int part, int parts);
// An image file as one 8-bit plane: gray as is, colour by its BT.601 luma
// (OpenCV's BGR order), 16-bit / 257; throws Error naming the file otherwise.
// The visible images are read this way (and fused images by `downstream`).
cv::Mat load_luma(const std::string& path);

// splitmix64: the mixing used for (seed, step, stream) -> generator seed.
uint64_t mix64(uint64_t x);

}  // namespace timfusion::train
