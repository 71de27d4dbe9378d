#include "timfusion/torch/frame_memory.h"

#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace timfusion {

namespace {

// LibTorch's alignment for CPU tensors (c10::gAlignment). c10::alloc_cpu is
// not in 1.13's public headers, so blocks come from posix_memalign.
constexpr size_t kAlignment = 64;

void* aligned_block(size_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, kAlignment, n) != 0 || !p) throw std::bad_alloc();
  return p;
}

}  // namespace

struct FrameMemory::Pool : std::enable_shared_from_this<FrameMemory::Pool> {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // by exact size
  size_t cached = 0, allocated = 0;  // bytes held unused; bytes held in all (in use + cached)
  bool closed = false;  // the owning FrameMemory is gone: free blocks as they come back

  void* take(size_t n) {
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = free_blocks.find(n);
      if (it != free_blocks.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached -= n;
        return p;
      }
      allocated += n;
    }
    try {
      return aligned_block(n);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      allocated -= n;
      throw;
    }
  }

  void give_back(void* p, size_t n) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!closed) {
        free_blocks[n].push_back(p);
        cached += n;
        return;
      }
    }
    std::free(p);
  }

  void free_all_cached() {
    std::vector<void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [size, list] : free_blocks) blocks.insert(blocks.end(), list.begin(), list.end());
      free_blocks.clear();
      allocated -= cached;
      cached = 0;
    }
    for (void* p : blocks) std::free(p);
  }
};

namespace {

// Smaller blocks are reused by glibc's heap without page faults anyway.
constexpr size_t kMinPooledBytes = 64 * 1024;

thread_local FrameMemory::Pool* t_pool = nullptr;

struct LiveBlock {
  std::shared_ptr<FrameMemory::Pool> pool;
  size_t size;
};

// Pool blocks in use, so that a free (from any thread, possibly after the
// Fuser is gone) finds its pool. Never destroyed: tensors may be freed
// during static destruction.
std::mutex& live_mu() {
  static auto* m = new std::mutex;
  return *m;
}
std::unordered_map<void*, LiveBlock>& live_blocks() {
  static auto* m = new std::unordered_map<void*, LiveBlock>;
  return *m;
}

class ForwardingAllocator final : public c10::Allocator {
 public:
  explicit ForwardingAllocator(c10::Allocator* next) : next_(next) {}

  c10::DataPtr allocate(size_t n) const override {
    FrameMemory::Pool* pool = t_pool;
    if (!pool || n < kMinPooledBytes) return next_->allocate(n);
    void* p = pool->take(n);
    {
      std::lock_guard<std::mutex> lock(live_mu());
      live_blocks()[p] = LiveBlock{pool->shared_from_this(), n};
    }
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }

  // raw_allocate/raw_deallocate (used by oneDNN for its scratch memory) come
  // here with either kind of block.
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static void release(void* p);

  c10::Allocator* next_;
};

ForwardingAllocator* router() {
  static ForwardingAllocator* r = [] {
    auto* a = new ForwardingAllocator(c10::GetCPUAllocator());  // never freed: blocks outlive everything
    c10::SetCPUAllocator(a, /*priority=*/0);
    return a;
  }();
  return r;
}

void ForwardingAllocator::release(void* p) {
  LiveBlock b;
  {
    std::lock_guard<std::mutex> lock(live_mu());
    auto it = live_blocks().find(p);
    if (it != live_blocks().end()) {
      b = std::move(it->second);
      live_blocks().erase(it);
    }
  }
  if (b.pool)
    b.pool->give_back(p, b.size);
  else
    router()->next_->raw_deleter()(p);
}

}  // namespace

FrameMemory::FrameMemory() : pool_(std::make_shared<Pool>()) { router(); }

FrameMemory::~FrameMemory() {
  {
    std::lock_guard<std::mutex> lock(pool_->mu);
    pool_->closed = true;
  }
  pool_->free_all_cached();
}

FrameMemory::Scope::Scope(FrameMemory& m) : previous_(t_pool) { t_pool = m.pool_.get(); }
FrameMemory::Scope::~Scope() { t_pool = previous_; }

void FrameMemory::release_cached() { pool_->free_all_cached(); }

size_t FrameMemory::cached_bytes() const {
  std::lock_guard<std::mutex> lock(pool_->mu);
  return pool_->cached;
}

size_t FrameMemory::allocated_bytes() const {
  std::lock_guard<std::mutex> lock(pool_->mu);
  return pool_->allocated;
}

bool FrameMemory::active() { return c10::GetCPUAllocator() == router(); }

}  // namespace timfusion
