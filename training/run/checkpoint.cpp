#include "run/checkpoint.h"

#include <cmath>

#include "run/checkpoint_integrity.h"
#include "timfusion/torch/state_dict.h"
#include "timfusion/error.h"
#include "timfusion/model_file.h"

namespace timfusion::train {

Adam::Adam(torch::nn::Module& module, double beta1, double beta2, double eps) : b1_(beta1), b2_(beta2), eps_(eps) {
  for (const auto& kv : module.named_parameters(true)) {
    if (!kv.value().requires_grad()) continue;
    params_.emplace_back(kv.key(), kv.value());
    m_.push_back(torch::zeros_like(kv.value()));
    v_.push_back(torch::zeros_like(kv.value()));
  }
}

void Adam::zero_grad() {
  for (auto& [name, p] : params_)
    if (p.grad().defined()) p.mutable_grad().zero_();
}

void Adam::step(double lr) {
  torch::NoGradGuard ng;
  ++t_;
  const double bc1 = 1 - std::pow(b1_, static_cast<double>(t_));
  const double bc2 = 1 - std::pow(b2_, static_cast<double>(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    if (!p.grad().defined()) continue;
    const auto& g = p.grad();
    m_[i].mul_(b1_).add_(g, 1 - b1_);
    v_[i].mul_(b2_).addcmul_(g, g, 1 - b2_);
    auto denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(eps_);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
}

void Adam::save(SafetensorsFile& out, const std::string& prefix) const {
  for (size_t i = 0; i < params_.size(); ++i) {
    out.tensors.push_back(nn::to_entry(prefix + params_[i].first + ".m", m_[i]));
    out.tensors.push_back(nn::to_entry(prefix + params_[i].first + ".v", v_[i]));
  }
  out.metadata[prefix + "t"] = std::to_string(t_);
}

void Adam::load(const SafetensorsFile& in, const std::string& prefix) {
  torch::NoGradGuard ng;
  auto get = [&](const std::string& key, torch::Tensor& dst) {
    const TensorEntry* e = in.find(key);
    if (!e) throw Error("checkpoint: optimiser state \"" + key + "\" missing");
    auto t = nn::from_entry(*e);
    if (t.sizes() != dst.sizes()) throw Error("checkpoint: optimiser state \"" + key + "\" has the wrong shape");
    dst.copy_(t);
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    get(prefix + params_[i].first + ".m", m_[i]);
    get(prefix + params_[i].first + ".v", v_[i]);
  }
  auto it = in.metadata.find(prefix + "t");
  if (it == in.metadata.end()) throw Error("checkpoint: optimiser step \"" + prefix + "t\" missing");
  t_ = std::stoll(it->second);
}

double clip_grad_norm(torch::nn::Module& module, double max_norm) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> grads;
  for (auto& p : module.parameters())
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0;
  double total = 0;
  for (auto& g : grads) total += g.pow(2).sum().item<double>();
  total = std::sqrt(total);
  if (max_norm > 0 && total > max_norm) {
    double scale = max_norm / (total + 1e-6);
    for (auto& g : grads) g.mul_(scale);
  }
  return total;
}

void save_module(SafetensorsFile& out, const torch::nn::Module& module, const std::string& prefix) {
  for (auto& e : nn::to_safetensors(module).tensors) {
    e.name = prefix + e.name;
    out.tensors.push_back(std::move(e));
  }
}

void load_module(torch::nn::Module& module, const SafetensorsFile& in, const std::string& prefix, const std::string& what) {
  SafetensorsFile sub;
  for (const auto& e : in.tensors)
    if (e.name.compare(0, prefix.size(), prefix) == 0) {
      TensorEntry c = e;
      c.name = e.name.substr(prefix.size());
      sub.tensors.push_back(std::move(c));
    }
  std::sort(sub.tensors.begin(), sub.tensors.end(), [](auto& a, auto& b) { return a.name < b.name; });
  // Exact restore: counters included (load_state tolerates their absence).
  nn::load_state(module, sub, what);
}

bool same_tensors(const SafetensorsFile& a, const SafetensorsFile& b, std::string* first_difference) {
  auto diff = [&](const std::string& s) {
    if (first_difference) *first_difference = s;
    return false;
  };
  if (a.tensors.size() != b.tensors.size()) return diff("tensor count differs");
  for (const auto& ta : a.tensors) {
    const TensorEntry* tb = b.find(ta.name);
    if (!tb) return diff("\"" + ta.name + "\" only in the first file");
    if (ta.dtype != tb->dtype || ta.shape != tb->shape) return diff("\"" + ta.name + "\": dtype or shape differs");
    if (ta.data != tb->data) return diff("\"" + ta.name + "\": values differ");
  }
  return true;
}

void write_model_file(const std::string& path, const torch::nn::Module& net, const ArchSpec& arch,
                      const std::string& provenance_json) {
  SafetensorsFile weights = nn::to_safetensors(net);
  require_finite(weights, path);  // never a model of inf/NaN (issue 27)
  timfusion::write_model_file(path, weights, arch, provenance_json);
}

}  // namespace timfusion::train
