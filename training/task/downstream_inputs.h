// timfusion-train downstream: the input types compared (rows of the table)
// and their images. No LibTorch here.
//
// An input is written NAME=SPEC (or just SPEC, named after it):
//   ir      the infrared image
//   vis     the visible image's luma (BT.601)
//   mean    (ir + vis) / 2, the plainest fusion
//   DIR     a folder of fused images named as the pairs (any OpenCV format;
//           colour is reduced to its luma), e.g. timfusion-fuse's --output,
//           or a published method's results
#pragma once
#include <string>
#include <vector>

#include "data/pair_dataset.h"
#include "task/downstream.h"

namespace timfusion::train {

struct DownstreamInput {
  std::string name;  // the row's label
  std::string spec;  // "ir", "vis", "mean" or a folder
  bool is_folder() const { return spec != "ir" && spec != "vis" && spec != "mean"; }
};

// Parses NAME=SPEC / SPEC; throws Error for an empty name or spec, or a
// folder that does not exist.
DownstreamInput parse_downstream_input(const std::string& text);

// The input's image for every pair of `pairs` (which carry labels), resized
// by `scale` (area interpolation; labels: nearest) for training, with the
// full-size label kept for the test. Throws Error naming the folder and the
// pairs when fused images are missing or of another size than the pair.
std::vector<SegImage> input_images(const PairDataset& pairs, const DownstreamInput& input, double scale);

}  // namespace timfusion::train
