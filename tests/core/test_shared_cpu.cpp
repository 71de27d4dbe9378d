// Issue 28: the process's shared CPU (earliest deadline first, never more
// tasks at once than workers) and the weights read once per process (one
// prepared network per file, shared by every Fuser).
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "test_support.h"
#include "timfusion/error.h"
#include "timfusion/fuser.h"
#include "timfusion/fuser_pool.h"
#include "timfusion/model_file.h"
#include "timfusion/pairs.h"
#include "timfusion/shared_cpu.h"

using namespace timfusion;
using Clock = SharedCpu::Clock;
namespace fs = std::filesystem;

namespace {

// A gate the first task waits on, so that the others queue up behind it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu);
      open = true;
    }
    cv.notify_all();
  }
};

struct Pair {
  cv::Mat ir, vis;
};

Pair msrs_crop(const char* name) {
  cv::Rect r(100, 80, 256, 192);
  return {read_image(tftest::data(std::string("msrs_sample/ir/") + name + ".png"), cv::IMREAD_GRAYSCALE)(r).clone(),
          read_image(tftest::data(std::string("msrs_sample/vis/") + name + ".png"), cv::IMREAD_COLOR)(r).clone()};
}

FuserOptions rt(int threads, bool shared) {
  FuserOptions o;
  o.model = "ivif-rt";
  o.device = Device::Cpu;
  o.threads = threads;
  o.shared_cpu = shared;
  return o;
}

}  // namespace

TEST(SharedCpu, WaitingTasksRunEarliestDeadlineFirst) {
  SharedCpu cpu(1);
  Gate gate;
  auto blocker = cpu.submit(Clock::now(), [&] { gate.wait(); });
  std::mutex mu;
  std::vector<int> order;
  const auto t0 = Clock::now() + std::chrono::seconds(1);
  std::vector<SharedCpu::Ticket> tickets;
  for (int d : {3, 1, 4, 2})  // submitted out of deadline order while the worker is busy
    tickets.push_back(cpu.submit(t0 + std::chrono::milliseconds(d), [&, d] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(d);
    }));
  gate.release();
  SharedCpu::wait(blocker);
  for (auto& t : tickets) SharedCpu::wait(t);
  EXPECT_EQ((std::vector<int>{1, 2, 3, 4}), order);
  EXPECT_EQ(5u, cpu.tasks_finished());
}

TEST(SharedCpu, NeverRunsMoreTasksAtOnceThanWorkers) {
  SharedCpu cpu(2);
  std::atomic<int> running{0}, most{0};
  std::vector<SharedCpu::Ticket> tickets;
  for (int i = 0; i < 12; ++i)
    tickets.push_back(cpu.submit(Clock::now(), [&] {
      const int now = ++running;
      for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
      --running;
    }));
  for (auto& t : tickets) SharedCpu::wait(t);
  EXPECT_EQ(2, most.load());
  EXPECT_EQ(2, cpu.peak_running());
}

TEST(SharedCpu, AFailingTaskReportsItsMessageAndTheWorkerGoesOn) {
  SharedCpu cpu(1);
  auto bad = cpu.submit(Clock::now(), [] { throw std::runtime_error("the frame was broken"); });
  try {
    SharedCpu::wait(bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the frame was broken"), std::string::npos) << e.what();
  }
  bool ran = false;
  cpu.run(Clock::now(), [&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(SharedCpu, TheProcessSchedulerHasOneWorkerPerCore) {
  EXPECT_EQ(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())), SharedCpu::process().workers());
}

// A Fuser on the shared CPU gives the same bytes as a one-thread Fuser, on a
// worker of the scheduler, with one intra-op thread.
TEST(SharedCpu, FuserOnTheSharedCpuEqualsOneThread) {
  const Pair p = msrs_crop("00032N");
  Fuser plain(rt(1, false)), shared(rt(0, true));
  EXPECT_TRUE(shared.shared_cpu());
  EXPECT_EQ(1, shared.threads());
  const uint64_t before = SharedCpu::process().tasks_finished();
  cv::Mat a = plain.fuse(p.ir, p.vis), b = shared.fuse(p.ir, p.vis);
  EXPECT_EQ(0, cv::norm(a, b, cv::NORM_INF));
  EXPECT_GE(SharedCpu::process().tasks_finished(), before + 1);
  EXPECT_EQ(1, shared.threads_in_last_forward());

  FuserPool pool(rt(0, true), 2);  // its jobs are shared-CPU tasks too
  cv::Mat out(p.vis.size(), p.vis.type());
  pool.start(p.ir, p.vis, out, ChannelOrder::BGR, Clock::now());
  pool.finish_oldest();
  EXPECT_EQ(0, cv::norm(a, out, cv::NORM_INF));
}

// Eight Fusers (and a pool of four) of one file read it once; a changed file
// is read again (a model swap after retraining sees the new weights).
TEST(ModelCache, EightFusersOfOneFileReadItOnce) {
  const fs::path dir = tftest::temp_dir("model-cache");
  const fs::path file = dir / "m.safetensors";
  fs::copy_file(resolve_model_path("ivif-rt"), file, fs::copy_options::overwrite_existing);
  FuserOptions o = rt(1, false);
  o.model = file.string();
  const uint64_t before = model_file_reads();
  {
    std::vector<std::unique_ptr<Fuser>> fusers;
    for (int i = 0; i < 8; ++i) fusers.push_back(std::make_unique<Fuser>(o));
    FuserPool pool(o, 4);
    EXPECT_EQ(before + 1, model_file_reads());
    // A changed file is another file: read again (while the old one is in use).
    fs::last_write_time(file, fs::last_write_time(file) + std::chrono::seconds(2));
    Fuser changed(o);
    EXPECT_EQ(before + 2, model_file_reads());
  }
  // Freed with its last Fuser: a later Fuser reads the file again.
  Fuser again(o);
  EXPECT_EQ(before + 3, model_file_reads());
}

// The memory rule, shared by the element and timfusion-fuse: ivif-rt's
// 640x480 frames go side by side, ivif-light's (about 1 GB each) do not.
TEST(MemoryRule, SmallModelsGoSideBySideLargeFramesDoNot) {
  FuserOptions light = rt(1, false);
  light.model = "ivif-light";
  Fuser small(rt(1, false)), large(light);
  small.warmup(cv::Size(640, 480));
  large.warmup(cv::Size(640, 480));
  EXPECT_TRUE(FuserPool::frames_fit(small)) << small.tensor_memory_bytes();
  EXPECT_FALSE(FuserPool::frames_fit(large)) << large.tensor_memory_bytes();
}
