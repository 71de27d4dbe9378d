#include "bench_temporal.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <opencv2/core.hpp>

#include "timfusion/temporal_filter.h"

namespace timfusion::tool {

namespace {

// One synthetic frame: a static random-textured scene with fresh noise
// (visible sigma 6, IR sigma 2, as scripts/video_table.py) and a warm 40x40
// square moving 3 px right and 1 px down per frame, so the gate sees both
// kinds of pixel.
struct Frames {
  cv::Mat scene_ir, scene_vis, ir, vis, fused;
  cv::RNG rng{7};
  Frames(int width, int height, int ir_depth) {
    scene_vis.create(height, width, CV_8UC1);
    rng.fill(scene_vis, cv::RNG::UNIFORM, 40, 200);
    cv::Mat ir8(height, width, CV_8UC1);
    rng.fill(ir8, cv::RNG::UNIFORM, 60, 160);
    ir8.convertTo(scene_ir, ir_depth, ir_depth == CV_16U ? 257.0 : 1.0);
  }
  void next(int t) {
    cv::Mat noise(scene_vis.size(), CV_16SC1);
    rng.fill(noise, cv::RNG::NORMAL, 0, 6);
    cv::add(scene_vis, noise, vis, cv::noArray(), CV_8U);
    rng.fill(noise, cv::RNG::NORMAL, 0, scene_ir.depth() == CV_16U ? 2 * 257 : 2);
    cv::add(scene_ir, noise, ir, cv::noArray(), scene_ir.depth());
    const cv::Rect box((3 * t) % (ir.cols - 40), t % (ir.rows - 40), 40, 40);
    ir(box).setTo(scene_ir.depth() == CV_16U ? 250 * 257 : 250);
    cv::Mat colour[] = {vis, vis, ir.depth() == CV_8U ? ir : vis};
    cv::merge(colour, 3, fused);
  }
};

}  // namespace

int bench_temporal(int frames) {
  std::printf("| temporal filter | size | IR | ms/frame (mean) | ms/frame (best) | static share |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int depth : {CV_8U, CV_16U}) {
    Frames f(640, 480, depth);
    TemporalFilter filter;
    double total = 0, best = 1e9;
    for (int t = 0; t < frames + 5; ++t) {
      f.next(t);
      const auto start = std::chrono::steady_clock::now();
      filter.apply(f.ir, f.vis, f.fused);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      if (t < 5) continue;  // first frames: allocation and the reset frame
      total += ms;
      best = std::min(best, ms);
    }
    std::printf("| default options | 640x480 | %s | %.2f | %.2f | %.2f |\n", depth == CV_8U ? "8-bit" : "16-bit",
                total / frames, best, filter.static_share());
  }
  return 0;
}

}  // namespace timfusion::tool
