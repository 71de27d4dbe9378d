// FuserPool: whole frames fused in parallel on single-threaded workers, in
// start order, each byte-identical to a one-thread Fuser's result.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <string>
#include <vector>

#include "test_support.h"
#include "timfusion/error.h"
#include "timfusion/fuser.h"
#include "timfusion/fuser_pool.h"
#include "timfusion/pairs.h"

using namespace timfusion;

namespace {

FuserOptions shipped_rt() {
  FuserOptions o;
  o.model = "ivif-rt";
  o.device = Device::Cpu;
  o.threads = 1;
  return o;
}

struct Pair {
  cv::Mat ir, vis;
};

// Six different real MSRS pairs (crops of 256x192, so the test stays quick).
std::vector<Pair> msrs_pairs() {
  std::vector<Pair> pairs;
  for (const char* name : {"00032N", "00107D", "00174D", "00241D", "00315D", "00032N"}) {
    cv::Rect r(100 + 10 * static_cast<int>(pairs.size()), 80, 256, 192);
    pairs.push_back({read_image(tftest::data(std::string("msrs_sample/ir/") + name + ".png"), cv::IMREAD_GRAYSCALE)(r).clone(),
                     read_image(tftest::data(std::string("msrs_sample/vis/") + name + ".png"), cv::IMREAD_COLOR)(r).clone()});
  }
  return pairs;
}

bool same_bytes(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

}  // namespace

TEST(FuserPool, FramesInParallelAreInStartOrderAndEqualOneAtATime) {
  const auto pairs = msrs_pairs();
  Fuser one(shipped_rt());
  std::vector<cv::Mat> expected;
  for (const Pair& p : pairs) expected.push_back(one.fuse(p.ir, p.vis));

  FuserPool pool(shipped_rt(), 3);
  ASSERT_EQ(3, pool.capacity());
  std::vector<cv::Mat> outs;
  for (const Pair& p : pairs) outs.emplace_back(p.vis.size(), p.vis.type(), cv::Scalar::all(7));
  size_t next_done = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (pool.in_flight() == pool.capacity()) {
      EXPECT_GE(pool.finish_oldest(), 0.0);
      EXPECT_TRUE(same_bytes(expected[next_done], outs[next_done])) << "frame " << next_done;
      ++next_done;
    }
    pool.start(pairs[i].ir, pairs[i].vis, outs[i], ChannelOrder::BGR);
  }
  EXPECT_EQ(3, pool.in_flight());
  while (pool.in_flight() > 0) {
    pool.finish_oldest();
    EXPECT_TRUE(same_bytes(expected[next_done], outs[next_done])) << "frame " << next_done;
    ++next_done;
  }
  EXPECT_EQ(pairs.size(), next_done);
  EXPECT_EQ(1, pool.fuser().threads_in_last_forward());  // the parallelism is across frames
}

TEST(FuserPool, AFailedFrameIsReportedAndTheNextOnesStillFuse) {
  const auto pairs = msrs_pairs();
  FuserPool pool(shipped_rt(), 2);
  Fuser one(shipped_rt());
  cv::Mat small_ir = pairs[0].ir(cv::Rect(0, 0, 100, 100)).clone();  // not the visible size
  cv::Mat bad_out(pairs[0].vis.size(), pairs[0].vis.type());
  cv::Mat good_out(pairs[1].vis.size(), pairs[1].vis.type());
  pool.start(small_ir, pairs[0].vis, bad_out, ChannelOrder::BGR);
  pool.start(pairs[1].ir, pairs[1].vis, good_out, ChannelOrder::BGR);
  try {
    pool.finish_oldest();
    FAIL() << "the frame with a mismatched IR size was not reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string::npos, std::string(e.what()).find("IR is 100x100")) << e.what();
  }
  pool.finish_oldest();
  EXPECT_TRUE(same_bytes(one.fuse(pairs[1].ir, pairs[1].vis), good_out));
}

TEST(FuserPool, StartingMoreFramesThanWorkersIsRefused) {
  const auto pairs = msrs_pairs();
  FuserPool pool(shipped_rt(), 1);
  cv::Mat a(pairs[0].vis.size(), pairs[0].vis.type()), b(pairs[0].vis.size(), pairs[0].vis.type());
  pool.start(pairs[0].ir, pairs[0].vis, a, ChannelOrder::BGR);
  EXPECT_THROW(pool.start(pairs[0].ir, pairs[0].vis, b, ChannelOrder::BGR), Error);
  pool.finish_oldest();
  EXPECT_THROW(pool.finish_oldest(), Error);  // nothing in flight
  EXPECT_FALSE(pool.oldest_done());
}

TEST(FuserPool, WarmUpRunsOnEveryWorkerAndBadOptionsAreErrors) {
  FuserPool pool(shipped_rt(), 2);
  pool.warmup(cv::Size(64, 48));
  EXPECT_EQ(0, pool.in_flight());
  EXPECT_THROW(FuserPool(shipped_rt(), 0), Error);
  FuserOptions gpu = shipped_rt();
  gpu.device = Device::Cuda;
  EXPECT_THROW(FuserPool(gpu, 2), Error);
  FuserOptions missing = shipped_rt();
  missing.model = tftest::temp_dir("pool") + "/missing.safetensors";
  EXPECT_THROW(FuserPool(missing, 2), Error);
}

TEST(FuserPool, DestroyingItWithFramesInFlightWaitsForThem) {
  const auto pairs = msrs_pairs();
  Fuser one(shipped_rt());
  const cv::Mat expected = one.fuse(pairs[2].ir, pairs[2].vis);
  cv::Mat out(pairs[2].vis.size(), pairs[2].vis.type());
  {
    FuserPool pool(shipped_rt(), 2);
    pool.start(pairs[2].ir, pairs[2].vis, out, ChannelOrder::BGR);
  }  // no crash, no write after this point
  EXPECT_TRUE(same_bytes(expected, out));
}
