// Frames in parallel (threads > 1, not live): whole frames on separate
// workers. Outputs must be byte-identical to one frame at a time, in order,
// all of them by EOS; a flushing seek must drop the frames in flight.
#include <gtest/gtest.h>

#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gst_test_util.h"

using namespace tfgst_test;

namespace {

constexpr int W = 160, H = 120, FPS = 30;

GstClockTime frame_time(size_t i) { return gst_util_uint64_scale(i, GST_SECOND, FPS); }

// Moving content on both pads, so that every output frame differs.
std::string moving_sources(int buffers) {
  const std::string n = std::to_string(buffers);
  return "videotestsrc num-buffers=" + n + " pattern=smpte horizontal-speed=3 ! " +
         caps_string(GST_VIDEO_FORMAT_RGB, W, H, FPS, 1) + " ! f.vis videotestsrc num-buffers=" + n +
         " pattern=ball ! " + caps_string(GST_VIDEO_FORMAT_GRAY8, W, H, FPS, 1) + " ! f.ir ";
}

struct PipelineRun {
  RunResult result;
  int frames_in_flight = -1, inference_threads = -1;
};

PipelineRun run_with_threads(int threads, int buffers, const std::string& props = "") {
  PipelineRun run;
  GstElement* element = nullptr;
  run_pipeline(moving_sources(buffers) + "timfusion name=f model=ivif-rt threads=" + std::to_string(threads) + " " +
                   props + " ! appsink name=out sync=false",
               run.result, 120, [&](GstElement* p) { element = gst_bin_get_by_name(GST_BIN(p), "f"); });
  if (element) {
    g_object_get(element, "frames-in-flight", &run.frames_in_flight, "inference-threads", &run.inference_threads,
                 nullptr);
    gst_object_unref(element);
  }
  return run;
}

}  // namespace

TEST(FramesInFlight, NotLiveOutputIsOneFrameAtATimeInOrder) {
  const int n = 12;
  PipelineRun one = run_with_threads(1, n), two = run_with_threads(2, n);
  PipelineRun split = run_with_threads(2, n, "parallel-frames=false");
  for (const PipelineRun* r : {&one, &two, &split}) {
    EXPECT_TRUE(r->result.bus.eos);
    EXPECT_TRUE(r->result.bus.errors.empty()) << joined(r->result.bus.errors);
    ASSERT_EQ(static_cast<size_t>(n), r->result.out.buffers.size()) << "every frame is out by EOS";
    for (int i = 0; i < n; ++i) EXPECT_EQ(frame_time(i), GST_BUFFER_PTS(r->result.out.buffers[i])) << "frame " << i;
  }
  EXPECT_EQ(1, one.frames_in_flight);
  EXPECT_EQ(2, two.frames_in_flight);
  EXPECT_EQ(1, two.inference_threads) << "each of the two frames runs on one thread";
  EXPECT_EQ(1, split.frames_in_flight) << "parallel-frames=false: one frame at a time";
  EXPECT_EQ(2, split.inference_threads) << "parallel-frames=false: each frame over both threads";

  GstVideoInfo info;
  ASSERT_TRUE(gst_video_info_from_caps(&info, two.result.out.caps));
  for (int i = 0; i < n; ++i) {
    Frame a = from_buffer(one.result.out.buffers[i], info), b = from_buffer(two.result.out.buffers[i], info);
    EXPECT_EQ(0, max_abs_diff(a, b)) << "frame " << i;
    // Two intra-op threads may sum in another order: within a grey level.
    EXPECT_LE(max_abs_diff(a, from_buffer(split.result.out.buffers[i], info)), 1) << "frame " << i;
  }
  // Frames differ from each other, so a frame out of order would show.
  EXPECT_FALSE(equal(from_buffer(two.result.out.buffers[0], info), from_buffer(two.result.out.buffers[6], info)));
}

namespace {

// Collects the PTS of every buffer the appsink "out" receives.
struct SeenPts {
  std::mutex mu;
  std::vector<GstClockTime> pts;
  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return pts.size();
  }
};

void collect_pts(GstElement* pipeline, SeenPts* seen) {
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  GstAppSinkCallbacks cb{};
  cb.new_sample = [](GstAppSink* s, gpointer user) -> GstFlowReturn {
    GstSample* sample = gst_app_sink_pull_sample(s);
    if (!sample) return GST_FLOW_OK;
    auto* seen = static_cast<SeenPts*>(user);
    std::lock_guard<std::mutex> lock(seen->mu);
    seen->pts.push_back(GST_BUFFER_PTS(gst_sample_get_buffer(sample)));
    gst_sample_unref(sample);
    return GST_FLOW_OK;
  };
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, seen, nullptr);
  gst_object_unref(sink);
}

// Plays the moving sources through timfusion threads=2 (frames in flight), runs
// `seek` (flushing) once 10 frames are out, then runs to EOS. Returns the bus log;
// *before_seek: the outputs that came before the seek (a flushing seek returns
// once the old data is flushed).
BusLog play_and_seek(SeenPts* seen, size_t* before_seek, const std::function<bool(GstElement*)>& seek) {
  BusLog log;
  const std::string desc = moving_sources(400) + "timfusion name=f model=ivif-rt threads=2 ! appsink name=out sync=false";
  GstElement* p = gst_parse_launch(desc.c_str(), nullptr);
  if (!p) {
    ADD_FAILURE() << "pipeline did not parse";
    return log;
  }
  collect_pts(p, seen);
  EXPECT_NE(GST_STATE_CHANGE_FAILURE, gst_element_set_state(p, GST_STATE_PLAYING));
  const double t0 = now_s();
  while (seen->count() < 10 && now_s() - t0 < 60) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_GE(seen->count(), 10u);
  EXPECT_TRUE(seek(p));
  *before_seek = seen->count();
  drain_bus(p, log, 120);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  return log;
}

}  // namespace

// compositor-style check: a flushing seek back to the start while frames are
// on the workers. After it, the output restarts at 0 and runs on without a
// frame of the old timeline among the new ones.
TEST(FramesInFlight, FlushingSeekDropsTheFramesInFlight) {
  SeenPts seen;
  size_t before_seek = 0;
  BusLog log = play_and_seek(&seen, &before_seek, [](GstElement* p) {
    return gst_element_seek_simple(p, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH, 0) == TRUE;
  });
  EXPECT_TRUE(log.eos);
  EXPECT_TRUE(log.errors.empty()) << joined(log.errors);

  std::lock_guard<std::mutex> lock(seen.mu);
  const auto& pts = seen.pts;
  const size_t restart = before_seek;  // the seek's first frame
  ASSERT_GT(restart, 0u);
  ASSERT_LT(restart, pts.size()) << "no output after the seek";
  for (size_t i = 1; i < restart; ++i) EXPECT_GT(pts[i], pts[i - 1]) << "before the seek, output " << i;
  for (size_t i = restart; i < pts.size(); ++i)
    ASSERT_EQ(frame_time(i - restart), pts[i]) << "after the seek, output " << i - restart;
  EXPECT_GE(pts.size() - restart, 10u);
}

// compositor-style check: reverse playback (rate -1 over the first 3 s) while
// frames are on the workers: every frame of the range comes out, last to first.
TEST(FramesInFlight, ReversePlaybackComesOutInReverseOrder) {
  SeenPts seen;
  size_t turn = 0;  // the first output of the reverse range
  BusLog log = play_and_seek(&seen, &turn, [](GstElement* p) {
    return gst_element_seek(p, -1.0, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH, GST_SEEK_TYPE_SET, 0, GST_SEEK_TYPE_SET,
                            3 * GST_SECOND) == TRUE;
  });
  EXPECT_TRUE(log.eos);
  EXPECT_TRUE(log.errors.empty()) << joined(log.errors);

  std::lock_guard<std::mutex> lock(seen.mu);
  const auto& pts = seen.pts;
  ASSERT_LT(turn, pts.size()) << "no reverse output";
  const size_t n = pts.size() - turn;
  // About 3 s of frames (the aggregator rounds the range's ends to frames), last to first.
  EXPECT_GE(n, static_cast<size_t>(3 * FPS - 2));
  EXPECT_LE(n, static_cast<size_t>(3 * FPS));
  EXPECT_GT(pts[turn], frame_time(3 * FPS - 3));
  EXPECT_EQ(0u, pts.back()) << "the reverse range ends at its start";
  for (size_t k = turn + 1; k < pts.size(); ++k)  // one frame earlier each (to the nanosecond's rounding)
    ASSERT_NEAR(double(pts[k - 1] - frame_time(1)), double(pts[k]), 1.0) << "reverse output " << k - turn;
}
