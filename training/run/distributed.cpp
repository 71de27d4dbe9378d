// c10d's Gloo process group as Debian's libtorch 1.13 ships it (libtorch_cpu
// exports ProcessGroupGloo and TCPStore; the Gloo headers are libgloo-dev's).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1  // what libtorch was built with: declares ProcessGroupGloo
#endif
#include "run/distributed.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>

#include "timfusion/error.h"
#include "timfusion/torch/ops.h"

namespace timfusion::train {

struct DataParallel::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;

  // In place, on a CPU tensor (Gloo's transport here is host memory).
  void all_reduce(torch::Tensor& cpu) {
    std::vector<at::Tensor> v{cpu};
    group->allreduce(v)->wait();
  }
};

namespace {

DataParallel::Impl* g_active = nullptr;  // the process group of differentiable_sum's backward

bool is_loopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1"; }

// Sum over the ranks whose backward is the same sum of the gradients.
struct CrossRankSum : torch::autograd::Function<CrossRankSum> {
  static torch::Tensor reduce(const torch::Tensor& x) {
    auto cpu = x.detach().to(torch::kCPU).contiguous().clone();
    g_active->all_reduce(cpu);
    return cpu.to(x.device());
  }
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& x) { return reduce(x); }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*, torch::autograd::variable_list g) {
    return {reduce(g[0])};
  }
};

}  // namespace

DataParallel::DataParallel(const ParallelSpec& spec, double timeout_s) : spec_(spec), impl_(std::make_unique<Impl>()) {
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  const std::string where = spec.master_addr + ":" + std::to_string(spec.master_port);
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(spec.master_port);
    o.isServer = spec.rank == 0;
    o.numWorkers = static_cast<std::size_t>(spec.world_size);
    o.waitWorkers = true;
    o.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(spec.master_addr, o);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // As torch.distributed: GLOO_SOCKET_IFNAME names the interface; a
    // loopback master means one machine (loopback only); else this host's address.
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (is_loopback(spec.master_addr))
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, spec.rank, spec.world_size, opts);
  } catch (const std::exception& e) {
    throw Error("data-parallel: rank " + std::to_string(spec.rank) + " of " + std::to_string(spec.world_size) +
                " cannot join the group at " + where + ": " + e.what());
  }
}

DataParallel::~DataParallel() {
  if (g_active == impl_.get()) {
    nn::set_batch_norm_cross_process_sum({});
    g_active = nullptr;
  }
}

void DataParallel::broadcast(torch::nn::Module& m) {
  torch::NoGradGuard ng;
  auto one = [&](torch::Tensor& t) {
    auto cpu = t.detach().to(torch::kCPU).contiguous().clone();
    std::vector<at::Tensor> v{cpu};
    impl_->group->broadcast(v)->wait();  // root: rank 0
    t.copy_(cpu);
  };
  for (auto& p : m.parameters(true)) one(p);
  for (auto& b : m.buffers(true)) one(b);
}

void DataParallel::average_gradients(torch::nn::Module& m) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> params;
  for (auto& p : m.parameters(true))
    if (p.requires_grad()) params.push_back(p);
  if (params.empty()) return;
  // One flat fp32 buffer: one collective per step instead of one per tensor.
  // A gradient a rank did not compute counts as zero.
  std::vector<torch::Tensor> flat;
  for (auto& p : params)
    flat.push_back(p.grad().defined() ? p.grad().detach().to(torch::kCPU, torch::kFloat32).reshape({-1})
                                      : torch::zeros({p.numel()}, torch::kFloat32));
  auto all = torch::cat(flat);
  impl_->all_reduce(all);
  all.div_(static_cast<double>(spec_.world_size));
  int64_t at = 0;
  for (auto& p : params) {
    auto g = all.narrow(0, at, p.numel()).view(p.sizes()).to(p.device(), p.scalar_type());
    at += p.numel();
    if (p.grad().defined())
      p.mutable_grad().copy_(g);
    else
      p.mutable_grad() = g.clone();
  }
}

torch::Tensor DataParallel::sum(const torch::Tensor& t) {
  auto cpu = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().clone();
  impl_->all_reduce(cpu);
  return cpu;
}

torch::Tensor DataParallel::differentiable_sum(const torch::Tensor& t) {
  if (g_active != impl_.get()) throw Error("internal: differentiable_sum before synchronise_batch_norm");
  return CrossRankSum::apply(t);
}

void DataParallel::synchronise_batch_norm() {
  g_active = impl_.get();
  nn::set_batch_norm_cross_process_sum([](const torch::Tensor& t) { return CrossRankSum::apply(t); });
}

}  // namespace timfusion::train
