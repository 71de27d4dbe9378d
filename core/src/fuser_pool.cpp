#include "timfusion/fuser_pool.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "timfusion/error.h"
#include "timfusion/shared_cpu.h"

namespace timfusion {

namespace {

using Clock = std::chrono::steady_clock;

// One worker thread with its own Fuser. Its job fields are guarded by the
// pool's mutex; the Fuser is used by the worker thread only.
struct Worker {
  std::unique_ptr<Fuser> fuser;
  std::thread thread;
  bool has_job = false;  // set by start()/warmup(), cleared when the job is retired
  bool done = false;     // the worker finished the job
  bool warm_job = false;
  cv::Size warm_size;
  cv::Mat ir, vis, out;  // headers sharing the caller's pixels
  ChannelOrder order = ChannelOrder::BGR;
  std::string error;  // empty: the job succeeded
  double ms = 0;      // the job's time on this worker
};

}  // namespace

struct FuserPool::Impl {
  std::vector<std::unique_ptr<Worker>> workers;
  mutable std::mutex mu;
  std::condition_variable job_cv;           // workers wait here for a job or stop
  mutable std::condition_variable done_cv;  // callers wait here for a job's end
  uint64_t started = 0, finished = 0;       // frames; the oldest in flight is finished % capacity
  bool stopping = false;
  bool shared = false;  // jobs run as tasks on SharedCpu::process(), not on the workers' threads

  int capacity() const { return static_cast<int>(workers.size()); }
  Worker& oldest() { return *workers[finished % workers.size()]; }
  const Worker& oldest() const { return *workers[finished % workers.size()]; }

  // The job's work, outside the lock (shared by both kinds of worker).
  static void do_job(Worker& w, bool warm, cv::Size size, cv::Mat ir, cv::Mat vis, cv::Mat out, ChannelOrder order,
                     std::string& error, double& ms) {
    const auto t0 = Clock::now();
    try {
      if (warm) {
        w.fuser->warmup(size);
      } else {
        const uchar* target = out.data;
        w.fuser->fuse(ir, vis, out, order);
        // fuse() writes into a matching preallocated out; a new buffer
        // would mean the caller's frame never got the result.
        if (out.data != target) error = "the fused frame was not written into the given output image";
      }
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "fusion failed";
    } catch (...) {
      error = "fusion failed with an unknown error";
    }
    ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }

  // Shared CPU: queue w's job as a task (the worker then has no thread of
  // its own); it reports through w's fields like a worker thread, so nothing
  // needs to keep the task's ticket.
  void submit(Worker& w, SharedCpu::Clock::time_point deadline) {
    SharedCpu::process().submit(deadline, [this, &w, warm = w.warm_job, size = w.warm_size, ir = w.ir,
                                                    vis = w.vis, out = w.out, order = w.order] {
      std::string error;
      double ms = 0;
      do_job(w, warm, size, ir, vis, out, order, error, ms);
      std::lock_guard<std::mutex> lock(mu);
      w.error = std::move(error);
      w.ms = ms;
      w.done = true;
      done_cv.notify_all();
    });
  }

  void run(Worker& w) {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      job_cv.wait(lock, [&] { return stopping || (w.has_job && !w.done); });
      if (!(w.has_job && !w.done)) return;  // stopping, nothing left to do
      const bool warm = w.warm_job;
      const cv::Size size = w.warm_size;
      cv::Mat ir = w.ir, vis = w.vis, out = w.out;
      const ChannelOrder order = w.order;
      lock.unlock();

      std::string error;
      double ms = 0;
      do_job(w, warm, size, ir, vis, out, order, error, ms);

      lock.lock();
      w.error = std::move(error);
      w.ms = ms;
      w.done = true;
      done_cv.notify_all();
    }
  }

  // Retires the oldest frame in flight (lock held, the job done).
  double retire_oldest() {
    Worker& w = oldest();
    w.has_job = false;
    w.ir.release();  // the caller's pixels are no longer referenced
    w.vis.release();
    w.out.release();
    ++finished;
    if (!w.error.empty()) throw Error(w.error);
    return w.ms;
  }
};

FuserPool::FuserPool(const FuserOptions& options, int workers) : impl_(std::make_unique<Impl>()) {
  if (workers < 1) throw Error("a FuserPool needs at least one worker");
  if (options.device == Device::Cuda) throw Error("frames in parallel are a CPU feature (device=cuda given)");
  FuserOptions one = options;
  one.threads = options.shared_cpu ? 1 : std::max(1, options.threads);  // per worker; 0 would mean every core for each
  one.device = Device::Cpu;
  one.shared_cpu = false;  // the pool itself submits the whole job
  impl_->shared = options.shared_cpu;
  for (int i = 0; i < workers; ++i) {
    auto w = std::make_unique<Worker>();
    w->fuser = std::make_unique<Fuser>(one);
    impl_->workers.push_back(std::move(w));
  }
  if (impl_->shared) return;  // the shared CPU's workers run the jobs
  for (auto& w : impl_->workers) {
    Worker* worker = w.get();
    worker->thread = std::thread([this, worker] { impl_->run(*worker); });
  }
}

FuserPool::~FuserPool() {
  {
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->done_cv.wait(lock, [&] {
      for (auto& w : impl_->workers)
        if (w->has_job && !w->done) return false;
      return true;
    });
    impl_->stopping = true;
  }
  impl_->job_cv.notify_all();
  for (auto& w : impl_->workers)
    if (w->thread.joinable()) w->thread.join();
}

int FuserPool::workers_for(int threads) { return std::clamp(threads, 1, kMaxWorkers); }

bool FuserPool::frames_fit(const Fuser& warmed) { return warmed.tensor_memory_bytes() <= kMaxFrameMemoryInFlight; }

int FuserPool::capacity() const { return impl_->capacity(); }

int FuserPool::in_flight() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return static_cast<int>(impl_->started - impl_->finished);
}

void FuserPool::start(const cv::Mat& ir, const cv::Mat& vis, const cv::Mat& out, ChannelOrder order) {
  start(ir, vis, out, order, SharedCpu::Clock::now());
}

void FuserPool::start(const cv::Mat& ir, const cv::Mat& vis, const cv::Mat& out, ChannelOrder order,
                      std::chrono::steady_clock::time_point deadline) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->started - impl_->finished >= static_cast<uint64_t>(impl_->workers.size()))
      throw Error("all " + std::to_string(impl_->capacity()) +
                  " fusion workers are busy: finish the oldest frame before starting another");
    Worker& w = *impl_->workers[impl_->started % impl_->workers.size()];
    w.warm_job = false;
    w.ir = ir;
    w.vis = vis;
    w.out = out;
    w.order = order;
    w.error.clear();
    w.done = false;
    w.has_job = true;
    ++impl_->started;
    if (impl_->shared) impl_->submit(w, deadline);
  }
  impl_->job_cv.notify_all();
}

bool FuserPool::oldest_done() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->started != impl_->finished && impl_->oldest().done;
}

bool FuserPool::wait_oldest(std::chrono::microseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (impl_->started == impl_->finished) return false;
  return impl_->done_cv.wait_for(lock, timeout, [&] { return impl_->oldest().done; });
}

double FuserPool::finish_oldest() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (impl_->started == impl_->finished) throw Error("no frame is in flight");
  impl_->done_cv.wait(lock, [&] { return impl_->oldest().done; });
  return impl_->retire_oldest();
}

void FuserPool::warmup(cv::Size size) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->started != impl_->finished) throw Error("warm-up needs no frame in flight");
    for (auto& w : impl_->workers) {
      w->warm_job = true;
      w->warm_size = size;
      w->error.clear();
      w->done = false;
      w->has_job = true;
      if (impl_->shared) impl_->submit(*w, SharedCpu::Clock::now());
    }
  }
  impl_->job_cv.notify_all();
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->done_cv.wait(lock, [&] {
    for (auto& w : impl_->workers)
      if (!w->done) return false;
    return true;
  });
  std::string error;
  for (auto& w : impl_->workers) {
    w->has_job = false;
    w->warm_job = false;
    if (error.empty()) error = w->error;
  }
  if (!error.empty()) throw Error(error);
}

const Fuser& FuserPool::fuser() const { return *impl_->workers.front()->fuser; }

}  // namespace timfusion
