// timfusion-train train: data-parallel training on torch.distributed's c10d
// (Gloo). Includes LibTorch.
//
// N processes (ranks) train one model: each step's global batch (`batch`
// crops, drawn from (seed, step) exactly as in one process) is split into N
// equal shares, rank r taking share r; each rank runs forward/backward on its
// share; gradients are summed over the ranks and divided by N (all-reduce),
// so every rank applies the same Adam update. TimBatchNorm normalises with
// the global batch's statistics (timfusion/torch/ops.h), so N processes
// compute what one process with the whole batch computes (up to float
// rounding). Rank 0 alone writes the run folder.
//
// Transport: Gloo over TCP (CPU tensors; on CUDA the gradients are staged
// through host memory: correct, not the fastest). NCCL is not used.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "run/cli.h"

namespace timfusion::train {

class DataParallel {
 public:
  // Connects to the other ranks (rank 0 hosts the rendezvous store at
  // master_addr:master_port); throws Error when it cannot within `timeout_s`.
  explicit DataParallel(const ParallelSpec& spec, double timeout_s = 300);
  ~DataParallel();

  int rank() const { return spec_.rank; }
  int world_size() const { return spec_.world_size; }
  bool writer() const { return spec_.rank == 0; }

  // Parameters and buffers of `m` := rank 0's.
  void broadcast(torch::nn::Module& m);
  // Every gradient of `m` := its mean over the ranks (one flat all-reduce).
  void average_gradients(torch::nn::Module& m);
  // Element-wise sum over the ranks (float64 CPU tensor in and out).
  torch::Tensor sum(const torch::Tensor& t);
  // Sum over the ranks, differentiable (backward sums the gradients too):
  // the global batch statistics of TimBatchNorm.
  torch::Tensor differentiable_sum(const torch::Tensor& t);
  // Installs differentiable_sum as TimBatchNorm's cross-process sum (until destruction).
  void synchronise_batch_norm();

  struct Impl;  // the c10d objects (distributed.cpp); public for its autograd function

 private:
  ParallelSpec spec_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace timfusion::train
