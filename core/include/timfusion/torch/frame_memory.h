// timfusion torch-level API: per-Fuser reuse of LibTorch's CPU tensor memory
// (used by Fuser; the benchmarks and tests use it directly).
//
// Why: a frame allocates and frees the same set of multi-megabyte tensors
// every time. glibc serves blocks that large with mmap (or trims them off the
// heap when freed), so each frame faults its memory in again: thousands of
// page faults per frame, which on some VMs cost more than the network. glibc
// can be told to keep them (its malloc tunables), but that is a process-wide
// setting a plugin must not make. Instead, while a FrameMemory::Scope is
// alive on a thread, LibTorch's CPU allocations on that thread come from the
// Fuser's own pool of blocks freed by earlier frames (matched by exact size),
// and go back to it when freed, whichever thread frees them. After the first
// frame at a size, a frame allocates nothing new.
//
// Mechanism: the first FrameMemory installs, once per process, a forwarding
// allocator as LibTorch's CPU allocator (c10::SetCPUAllocator). Outside a
// Scope it passes every call to the allocator it replaced, so other LibTorch
// users in the process see no change. (LibTorch's own c10::CPUCachingAllocator
// does the same job but is only wired in on mobile builds.)
#pragma once

#include <cstddef>
#include <memory>

namespace timfusion {

class FrameMemory {
 public:
  struct Pool;

  FrameMemory();
  ~FrameMemory();  // frees the cached blocks; blocks still in use are freed when released
  FrameMemory(const FrameMemory&) = delete;
  FrameMemory& operator=(const FrameMemory&) = delete;

  // While alive, this thread's LibTorch CPU allocations use the pool.
  class Scope {
   public:
    explicit Scope(FrameMemory& m);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Pool* previous_;
  };

  // Frees the cached (unused) blocks, e.g. when the frame size changes.
  void release_cached();
  // Bytes held in the pool and not in use; and all bytes it holds, in use
  // or not (a steady state shows as this number no longer growing).
  size_t cached_bytes() const;
  size_t allocated_bytes() const;
  // False when another allocator took LibTorch's CPU slot with a higher
  // priority: the pool is then bypassed (correct, just not reusing memory).
  static bool active();

 private:
  std::shared_ptr<Pool> pool_;
};

}  // namespace timfusion
