// timfusion: the process's shared CPU for fusion (issue 28: many rigs).
//
// Why: a vehicle with four camera pairs runs four timfusion elements in one
// process. Each element splitting its frames over one intra-op thread per
// core puts 2 x cores threads on the cores, and LibTorch's threads meet at a
// barrier after every layer: when one of them loses its core, all wait. Eight
// such elements on 2 cores dropped frames at 195 % CPU although their work
// needed 1.3 cores. Here one scheduler per process owns one worker thread per
// core; every frame of every Fuser that uses it (FuserOptions::shared_cpu) is
// a task that runs whole on one worker with one intra-op thread, so the
// process never has more fusion threads than cores, whatever the number of
// rigs. Tasks wait in order of their deadline (earliest first): frames of
// different rigs are taken fairly, and under overload every rig is late by
// about as much, which the element's QoS then turns into even drops.
//
// No LibTorch types: a task is any function; Fuser puts its forward pass in one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace timfusion {

class SharedCpu {
 public:
  using Clock = std::chrono::steady_clock;
  class Task;                           // opaque: one submitted function
  using Ticket = std::shared_ptr<Task>;

  // The process's scheduler: one worker per core (std::thread::hardware_concurrency),
  // started on first use and kept for the life of the process.
  static SharedCpu& process();

  int workers() const;
  // Queues `job` to run on a worker; among waiting tasks, the earliest
  // deadline runs first (equal deadlines: in submission order).
  Ticket submit(Clock::time_point deadline, std::function<void()> job);
  // Waits for the task; throws Error with the job's message if it threw.
  static void wait(const Ticket& t);
  // Waits up to timeout; true when the task has finished (it may have failed:
  // wait() then reports it).
  static bool wait_for(const Ticket& t, std::chrono::microseconds timeout);
  static bool done(const Ticket& t);
  // submit + wait.
  void run(Clock::time_point deadline, std::function<void()> job);

  // Tasks finished so far, and the most tasks that ever ran at once (never
  // more than workers()): for tests and benchmarks.
  uint64_t tasks_finished() const;
  int peak_running() const;

  explicit SharedCpu(int workers);  // a private scheduler (tests); process() is the one to use
  ~SharedCpu();                     // waits for the running tasks; queued ones fail
  SharedCpu(const SharedCpu&) = delete;
  SharedCpu& operator=(const SharedCpu&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace timfusion
