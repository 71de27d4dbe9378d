// timfusion GStreamer element: output frames whose fusion runs on the
// engine's frame workers (timfusion::FuserPool) while the streaming thread
// takes the next input pair. Data only: gsttimfusion_inflight.cpp moves the
// frames through their states and pushes them, in order.
//
//   started    a worker fills plane 0 of the mapped output buffer from copies
//              of the inputs (the inputs are unmapped when aggregate_frames
//              returns, so the worker cannot read them in place)
//   adopted    the base class handed the buffer to finish_buffer: it is ours
//   completed  the worker is done; the buffer is unmapped and in the repeat cache
//   pushed     given to the base class's finish_buffer (and off this list)
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include <gst/video/video.h>
#include <opencv2/core.hpp>

#include "timfusion/color.h"
#include "timfusion_model.h"

namespace tfgst {

// What identifies an output frame's inputs (the repeat cache's key).
struct FrameKey {
  const GstBuffer* vis = nullptr;
  GstClockTime vis_pts = GST_CLOCK_TIME_NONE;
  const GstBuffer* ir = nullptr;
  GstClockTime ir_pts = GST_CLOCK_TIME_NONE;
  uint64_t engine = 0, reg = 0;
  bool operator==(const FrameKey& o) const {
    return vis == o.vis && vis_pts == o.vis_pts && ir == o.ir && ir_pts == o.ir_pts && engine == o.engine &&
           reg == o.reg;
  }
};

struct InFlightFrame {
  GstBuffer* outbuf = nullptr;  // the output buffer; owned from adoption on
  bool adopted = false;
  GstVideoFrame out{};  // mapped for writing until completed
  bool completed = false;
  cv::Mat ir, vis;  // the worker's inputs (copies; their memory is reused by later frames)
  timfusion::ChannelOrder order = timfusion::ChannelOrder::BGR;  // vis's channel order
  bool discont = false;  // an input buffer was flagged DISCONT (the temporal filter forgets)
  FrameKey key;
  std::shared_ptr<Engine> engine;  // whose workers run it (a model swap may follow)
  std::chrono::steady_clock::time_point started;
};

// Streaming thread only (and flush / state changes, while the streaming
// task is stopped).
struct InFlight {
  std::deque<std::unique_ptr<InFlightFrame>> frames;  // oldest first
  std::vector<std::unique_ptr<InFlightFrame>> spare;  // retired frames, kept for their input copies

  std::unique_ptr<InFlightFrame> take_spare() {
    if (spare.empty()) return std::make_unique<InFlightFrame>();
    std::unique_ptr<InFlightFrame> f = std::move(spare.back());
    spare.pop_back();
    return f;
  }
  void retire(std::unique_ptr<InFlightFrame> f) {
    f->outbuf = nullptr;
    f->adopted = f->completed = false;
    f->engine.reset();
    f->key = FrameKey{};
    spare.push_back(std::move(f));
  }
  std::unique_ptr<InFlightFrame> pop_oldest() {
    std::unique_ptr<InFlightFrame> f = std::move(frames.front());
    frames.pop_front();
    return f;
  }
  // Takes f (one of frames) out of the list.
  std::unique_ptr<InFlightFrame> take(const InFlightFrame* f) {
    for (auto it = frames.begin(); it != frames.end(); ++it)
      if (it->get() == f) {
        std::unique_ptr<InFlightFrame> owned = std::move(*it);
        frames.erase(it);
        return owned;
      }
    return nullptr;
  }
};

}  // namespace tfgst
