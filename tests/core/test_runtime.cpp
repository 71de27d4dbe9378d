// The frame path's runtime behaviour: tensor memory reused from frame to
// frame (FrameMemory), and each Fuser's own thread count.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include <thread>

#include "timfusion/torch/frame_memory.h"
#include "test_support.h"
#include "timfusion/fuser.h"
#include "timfusion/pairs.h"

using namespace timfusion;

namespace {

FuserOptions light(int threads) {
  FuserOptions o;
  o.model = tftest::fixtures("ivif-light-c48.safetensors");
  o.device = Device::Cpu;
  o.threads = threads;
  return o;
}

const size_t kBig = 1 << 20;  // well above the pool's minimum block size

}  // namespace

TEST(FrameMemory, ReusesFreedBlocksOfTheSameSizeInsideAScope) {
  FrameMemory m;
  ASSERT_TRUE(FrameMemory::active());
  FrameMemory::Scope s(m);
  void* first;
  {
    auto t = torch::empty({static_cast<int64_t>(kBig)}, torch::kUInt8);
    first = t.data_ptr();
  }
  EXPECT_EQ(m.cached_bytes(), kBig);
  auto again = torch::empty({static_cast<int64_t>(kBig)}, torch::kUInt8);
  EXPECT_EQ(again.data_ptr(), first);
  EXPECT_EQ(m.cached_bytes(), 0u);
  EXPECT_EQ(m.allocated_bytes(), kBig);
}

TEST(FrameMemory, LeavesAllocationsOutsideAScopeAlone) {
  FrameMemory m;
  { FrameMemory::Scope s(m); }
  { auto t = torch::empty({static_cast<int64_t>(kBig)}, torch::kUInt8); }
  EXPECT_EQ(m.allocated_bytes(), 0u);
  EXPECT_EQ(m.cached_bytes(), 0u);
}

TEST(FrameMemory, BlocksMayOutliveThePoolAndBeFreedOnAnotherThread) {
  torch::Tensor kept;
  {
    FrameMemory m;
    FrameMemory::Scope s(m);
    kept = torch::ones({static_cast<int64_t>(kBig)}, torch::kUInt8);
  }
  EXPECT_EQ(kept.sum().item<int64_t>(), static_cast<int64_t>(kBig));  // still valid
  std::thread([t = std::move(kept)]() mutable { t = torch::Tensor(); }).join();
}

TEST(FrameMemory, AFuserFrameAllocatesNothingNewAfterTheFirstFrameAtASize) {
  for (int threads : {1, 2}) {
    Fuser f(light(threads));
    cv::Mat ir(96, 128, CV_8UC1, cv::Scalar(40)), vis(96, 128, CV_8UC3, cv::Scalar(10, 90, 200));
    cv::Mat out;
    f.fuse(ir, vis, out);
    const size_t after_first = f.tensor_memory_bytes();
    EXPECT_GT(after_first, 0u);
    for (int i = 0; i < 3; ++i) f.fuse(ir, vis, out);
    EXPECT_EQ(f.tensor_memory_bytes(), after_first) << threads << " threads";
    // A caller's own scope does not capture the Fuser's frames.
    FrameMemory mine;
    FrameMemory::Scope s(mine);
    f.fuse(ir, vis, out);
    EXPECT_EQ(mine.allocated_bytes(), 0u);
  }
}

// Byte-identical output across frames and repeated sizes (the pool hands
// back dirty memory: any op that relied on zeroed memory would show here).
TEST(FrameMemory, FramesAreIdenticalWhenPoolMemoryIsReused) {
  Fuser f(light(1));
  const std::string dir = tftest::data("msrs_sample");
  cv::Mat ir = read_image(dir + "/ir/00032N.png", cv::IMREAD_GRAYSCALE)(cv::Rect(200, 150, 160, 120)).clone();
  cv::Mat vis = read_image(dir + "/vis/00032N.png", cv::IMREAD_COLOR)(cv::Rect(200, 150, 160, 120)).clone();
  cv::Mat first = f.fuse(ir, vis);
  cv::Mat other = f.fuse(cv::Mat(64, 80, CV_8UC1, cv::Scalar(255)), cv::Mat(64, 80, CV_8UC3, cv::Scalar(7, 8, 9)));
  ASSERT_EQ(other.size(), cv::Size(80, 64));
  for (int i = 0; i < 2; ++i) EXPECT_EQ(cv::norm(f.fuse(ir, vis), first, cv::NORM_INF), 0) << "frame " << i;
}

TEST(FuserThreads, EachFuserRunsWithItsOwnThreadCountSideBySide) {
  Fuser one(light(1)), two(light(2));
  EXPECT_EQ(one.threads(), 1);
  EXPECT_EQ(two.threads(), 2);
  EXPECT_EQ(one.threads_in_last_forward(), 0);
  cv::Mat ir(48, 64, CV_8UC1, cv::Scalar(100)), vis(48, 64, CV_8UC1, cv::Scalar(30));
  // Interleaved on two threads, as two elements' streaming threads.
  auto loop = [&](Fuser& f) {
    for (int i = 0; i < 3; ++i) f.fuse(ir, vis);
  };
  std::thread a(loop, std::ref(one)), b(loop, std::ref(two));
  a.join();
  b.join();
  EXPECT_EQ(one.threads_in_last_forward(), 1);
  EXPECT_EQ(two.threads_in_last_forward(), 2);
  // One thread alternating between them still gives each its own count.
  one.fuse(ir, vis);
  EXPECT_EQ(one.threads_in_last_forward(), 1);
  two.fuse(ir, vis);
  EXPECT_EQ(two.threads_in_last_forward(), 2);
  one.fuse(ir, vis);
  EXPECT_EQ(one.threads_in_last_forward(), 1);
}

TEST(FuserThreads, ZeroMeansOnePerCore) {
  Fuser f(light(0));
  EXPECT_EQ(f.threads(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}
