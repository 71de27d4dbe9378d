#include "model_cache.h"

#include <sys/stat.h>

#include <map>
#include <mutex>
#include <tuple>

#include "timfusion/error.h"
#include "timfusion/torch/state_dict.h"

namespace timfusion {

namespace {

// A file's identity: a rewritten or replaced file gets another key, so the
// cache never serves weights that are no longer on disk.
struct Key {
  std::string path, arch;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  Device device = Device::Cpu;
  Precision precision = Precision::Fp32;
  bool operator<(const Key& o) const {
    return std::tie(path, arch, dev, ino, size, mtime_ns, device, precision) <
           std::tie(o.path, o.arch, o.dev, o.ino, o.size, o.mtime_ns, o.device, o.precision);
  }
};

struct Cache {
  // One load at a time: loads are rare (start, model swaps), and a second
  // Fuser asking for a file being loaded then finds it instead of reading it again.
  std::mutex mu;
  std::map<Key, std::weak_ptr<const PreparedModel>> entries;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: Fusers may outlive static destruction at exit
  return *c;
}

std::shared_ptr<const PreparedModel> build(const std::string& path, const std::string& arch_override, Device device,
                                           Precision precision) {
  auto m = std::make_shared<PreparedModel>();
  m->file = load_model_file(path, arch_override);
  m->net = nn::TimNet(m->file.arch);
  nn::load_state(*m->net, m->file.weights, path);
  m->file.weights.tensors.clear();  // now owned by the network
  m->net->eval();
  const torch::Device tdev = device == Device::Cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  const auto dtype = precision == Precision::Fp32   ? torch::kFloat32
                     : precision == Precision::Fp16 ? torch::kFloat16
                                                    : torch::kBFloat16;
  m->net->to(tdev, dtype);
  if (device == Device::Cpu) m->net->to_channels_last();
  m->net->fold_bn();  // last: folded weights are not parameters, so .to() would not move them
  m->device = device;
  m->precision = precision;
  return m;
}

}  // namespace

std::shared_ptr<const PreparedModel> prepared_model(const std::string& path, const std::string& arch_override,
                                                    Device device, Precision precision) {
  Key key;
  key.path = path;
  key.arch = arch_override;
  key.device = device;
  key.precision = precision;
  struct stat st {};
  const bool identified = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  if (identified) {
    key.dev = st.st_dev;
    key.ino = st.st_ino;
    key.size = st.st_size;
    key.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  }
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  // Not a regular file (missing, a FIFO): no identity to share by, and
  // load_model_file gives the error.
  if (!identified) return build(path, arch_override, device, precision);
  for (auto it = c.entries.begin(); it != c.entries.end();)  // drop entries whose last Fuser is gone
    it = it->second.expired() ? c.entries.erase(it) : std::next(it);
  if (auto it = c.entries.find(key); it != c.entries.end())
    if (auto m = it->second.lock()) return m;
  auto m = build(path, arch_override, device, precision);
  c.entries[key] = m;
  return m;
}

}  // namespace timfusion
