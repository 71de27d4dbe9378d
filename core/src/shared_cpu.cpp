#include "timfusion/shared_cpu.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "timfusion/error.h"

namespace timfusion {

class SharedCpu::Task {
 public:
  std::function<void()> job;
  Clock::time_point deadline;
  uint64_t seq = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::string error;  // empty: the job succeeded

  void finish(std::string err) {
    {
      std::lock_guard<std::mutex> lock(mu);
      error = std::move(err);
      finished = true;
    }
    cv.notify_all();
  }
};

namespace {
struct Later {  // priority_queue puts the "largest" first: the latest deadline is the smallest priority
  bool operator()(const SharedCpu::Ticket& a, const SharedCpu::Ticket& b) const;
};
}  // namespace

struct SharedCpu::Impl {
  std::mutex mu;
  std::condition_variable cv;
  std::priority_queue<Ticket, std::vector<Ticket>, Later> queue;
  std::vector<std::thread> threads;
  bool stopping = false;
  uint64_t next_seq = 0, finished = 0;
  int running = 0, peak = 0;

  void work() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (stopping) return;
      Ticket t = queue.top();
      queue.pop();
      peak = std::max(peak, ++running);
      lock.unlock();
      std::string error;
      try {
        t->job();
      } catch (const std::exception& e) {
        error = e.what();
        if (error.empty()) error = "a fusion task failed";
      } catch (...) {
        error = "a fusion task failed with an unknown error";
      }
      t->job = nullptr;  // frees what the job captured before anyone waits on it
      lock.lock();
      --running;
      ++finished;
      t->finish(std::move(error));  // after the counters: a waiter sees them updated
    }
  }
};

namespace {
bool Later::operator()(const SharedCpu::Ticket& a, const SharedCpu::Ticket& b) const {
  if (a->deadline != b->deadline) return a->deadline > b->deadline;
  return a->seq > b->seq;
}
}  // namespace

SharedCpu::SharedCpu(int workers) : impl_(std::make_unique<Impl>()) {
  if (workers < 1) throw Error("the shared CPU needs at least one worker");
  for (int i = 0; i < workers; ++i) impl_->threads.emplace_back([this] { impl_->work(); });
}

SharedCpu::~SharedCpu() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads) t.join();
  while (!impl_->queue.empty()) {
    impl_->queue.top()->finish("the shared CPU stopped before this task ran");
    impl_->queue.pop();
  }
}

SharedCpu& SharedCpu::process() {
  // Never destroyed: elements and Fusers may still submit while the process
  // exits (static destruction order), and idle workers cost nothing.
  static SharedCpu* cpu = new SharedCpu(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return *cpu;
}

int SharedCpu::workers() const { return static_cast<int>(impl_->threads.size()); }

SharedCpu::Ticket SharedCpu::submit(Clock::time_point deadline, std::function<void()> job) {
  auto t = std::make_shared<Task>();
  t->job = std::move(job);
  t->deadline = deadline;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) throw Error("the shared CPU has stopped");
    t->seq = impl_->next_seq++;
    impl_->queue.push(t);
  }
  impl_->cv.notify_one();
  return t;
}

void SharedCpu::wait(const Ticket& t) {
  std::unique_lock<std::mutex> lock(t->mu);
  t->cv.wait(lock, [&] { return t->finished; });
  if (!t->error.empty()) throw Error(t->error);
}

bool SharedCpu::wait_for(const Ticket& t, std::chrono::microseconds timeout) {
  std::unique_lock<std::mutex> lock(t->mu);
  return t->cv.wait_for(lock, timeout, [&] { return t->finished; });
}

bool SharedCpu::done(const Ticket& t) {
  std::lock_guard<std::mutex> lock(t->mu);
  return t->finished;
}

void SharedCpu::run(Clock::time_point deadline, std::function<void()> job) { wait(submit(deadline, std::move(job))); }

uint64_t SharedCpu::tasks_finished() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->finished;
}

int SharedCpu::peak_running() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->peak;
}

}  // namespace timfusion
