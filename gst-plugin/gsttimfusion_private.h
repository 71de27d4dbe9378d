// timfusion GStreamer element: internals shared by its source files.
//
//   gsttimfusion.cpp               GObject type, pads, state changes, registration
//   gsttimfusion_properties.cpp    the properties: param specs, defaults, set/get
//   gsttimfusion_caps.cpp          caps queries and output caps negotiation (+ warm-up)
//   gsttimfusion_policy.cpp        what is output when: EOS, missing visible frame, late slots
//   gsttimfusion_frames.cpp        one output frame: map, fuse, repeat cache, latency
//   gsttimfusion_inflight.cpp      frames in parallel (non-live): start on a worker, push in order
//   gsttimfusion_loading.cpp       model load at NULL->READY and live model swaps
//   gsttimfusion_registration.cpp  the IR->visible homography properties
//   gsttimfusion_links.cpp         an unlinked sink pad: a message instead of a silent hang
//   gsttimfusion_pad.cpp           the sink pad class (repeat-after-eos default TRUE)
//   gsttimfusion_autocalib.cpp     auto-calibrate: homography from the first seconds of frames
//   gsttimfusion_temporal.cpp      temporal stability of the fused video (core's TemporalFilter)
//   gsttimfusion_queue.cpp         live: a queued frame too old for any slot gives way to the next
//
// Not installed. No LibTorch header: the core is reached through timfusion/fuser.h.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <gst/video/video.h>
#include <opencv2/core.hpp>

#include "gsttimfusion.h"
#include "timfusion/color.h"
#include "timfusion/fuser.h"
#include "timfusion/ir_range.h"
#include "timfusion/registration.h"
#include "timfusion/temporal_filter.h"
#include "timfusion_autocalib.h"
#include "timfusion_inflight.h"
#include "timfusion_latency.h"
#include "timfusion_model.h"

GST_DEBUG_CATEGORY_EXTERN(gst_timfusion_debug);
#define GST_CAT_DEFAULT gst_timfusion_debug

namespace tfgst {

// Everything C++ in the element (the GObject instance only holds a pointer).
struct State {
  // --- properties (props_mu) ---
  std::mutex props_mu;
  timfusion::FuserOptions options;
  std::atomic<bool> parallel_frames{true};  // DEFAULT_PARALLEL_FRAMES; read by the streaming thread
  std::string homography_text;
  std::string calibration_file;
  std::string active_homography_text;   // the values that made the active homography:
  std::string active_calibration_file;  // a rejected live change is reverted to them
  bool auto_calibrate = false;         // set from DEFAULT_AUTO_CALIBRATE at init
  double auto_calibrate_seconds = 0;   // DEFAULT_AUTO_CALIBRATE_SECONDS
  int auto_calibrate_frames = 0;       // DEFAULT_AUTO_CALIBRATE_FRAMES
  std::string auto_calibrate_checkerboard;  // DEFAULT_AUTO_CALIBRATE_CHECKERBOARD ("" = scene structure)
  std::atomic<bool> temporal_on{true};        // DEFAULT_TEMPORAL; read by the streaming thread
  std::atomic<double> temporal_strength{0};   // DEFAULT_TEMPORAL_STRENGTH; read by the streaming thread
  int ir_range_mode = 0;          // GstTimFusionIrRange, DEFAULT_IR_RANGE
  int ir_range_min = 0;           // DEFAULT_IR_RANGE_MIN
  int ir_range_max = 65535;       // DEFAULT_IR_RANGE_MAX

  // --- active registration (reg_mu) ---
  std::mutex reg_mu;
  timfusion::Homography homography;
  uint64_t reg_generation = 0;

  // --- loaded model (engine_mu) ---
  std::mutex engine_mu;
  std::shared_ptr<Engine> engine;
  uint64_t next_generation = 0;
  BackgroundLoader loader;

  // --- auto-calibration (its own lock; the result goes through reg_mu) ---
  AutoCalibrator autocal;

  LatencyTracker processing;  // whole per-frame work: the latency estimate
  LatencyTracker inference;   // the Fuser call alone: inference-ms

  // --- streaming thread only ---
  GstClockTime frame_duration = 0;
  GstClockTime inputs_end = GST_CLOCK_TIME_NONE;  // running time the last input frames reach
  bool said_black_ir = false;
  cv::Mat black_ir;
  cv::Mat ir_luma;  // colour IR's luma, kept so that a frame allocates nothing
  cv::Mat ir_stretched;  // 16-bit IR mapped through ir-range (not full)
  timfusion::IrRangeSmoother ir_auto;  // ir-range=auto: the range over time
  cv::Mat scale_tmp;  // the fused frame at the visible size, when the output is scaled
  guint64 processed = 0, dropped = 0;
  // Last output, reused when the same input pair comes again (repeats).
  using Key = FrameKey;
  Key cache_key;
  GstBuffer* cache = nullptr;
  InFlight inflight;  // frames on the engine's frame workers, oldest first
  // Temporal stability: the filter, the engine it last filtered for (a swap
  // resets it), the visible luma of colour frames.
  timfusion::TemporalFilter temporal;
  uint64_t temporal_generation = 0;
  cv::Mat temporal_vis_luma;

  // --- unlinked-pad check (link_check_mu): pending clock id, READY->PAUSED until PAUSED->READY ---
  std::mutex link_check_mu;
  GstClockID link_check = nullptr;

  std::shared_ptr<Engine> current_engine() {
    std::lock_guard<std::mutex> lock(engine_mu);
    return engine;
  }
  void clear_cache() {
    gst_clear_buffer(&cache);
    cache_key = Key{};
  }
  // Flushing seeks, caps changes, state changes: the repeat cache and the
  // temporal filter's past belong to the old timeline.
  void forget_past() {
    clear_cache();
    temporal.reset();
  }
};

}  // namespace tfgst

struct _GstTimFusion {
  GstVideoAggregator parent;
  GstVideoAggregatorPad* ir_pad;
  GstVideoAggregatorPad* vis_pad;
  tfgst::State* st;
};

// The classes the element chains up to (GstVideoAggregator's).
GstAggregatorClass* gst_timfusion_parent_agg_class();
GstVideoAggregatorClass* gst_timfusion_parent_vagg_class();

// gsttimfusion_properties.cpp
// class_init: set_property/get_property and every property's param spec.
void gst_timfusion_install_properties(GObjectClass* gobject_class);
// Instance init (self->st allocated): every property at its default.
void gst_timfusion_init_properties(GstTimFusion* self);

// gsttimfusion_caps.cpp
gboolean gst_timfusion_sink_query(GstAggregator* agg, GstAggregatorPad* bpad, GstQuery* query);
GstFlowReturn gst_timfusion_update_src_caps(GstAggregator* agg, GstCaps* downstream_caps, GstCaps** ret);
GstCaps* gst_timfusion_fixate_src_caps(GstAggregator* agg, GstCaps* caps);
gboolean gst_timfusion_negotiated_src_caps(GstAggregator* agg, GstCaps* caps);

// gsttimfusion_policy.cpp
GstFlowReturn gst_timfusion_aggregate(GstAggregator* agg, gboolean timeout);
GstFlowReturn gst_timfusion_flush(GstAggregator* agg);
GstFlowReturn gst_timfusion_create_output_buffer(GstVideoAggregator* vagg, GstBuffer** outbuf);
// Live only: the running time before which an input frame's end makes it too
// old for any output slot to use in time (its end + latency + one frame has
// passed); GST_CLOCK_TIME_NONE when not live.
GstClockTime gst_timfusion_stale_before(GstTimFusion* self);

// gsttimfusion_frames.cpp
GstFlowReturn gst_timfusion_aggregate_frames(GstVideoAggregator* vagg, GstBuffer* outbuf);
// Sets the aggregator latency (one frame + processing) when a (re-)report is due.
void gst_timfusion_report_latency(GstTimFusion* self);
// Posts "Fusion failed: what" as an element error; returns GST_FLOW_ERROR.
GstFlowReturn gst_timfusion_fusion_failed(GstTimFusion* self, const char* what);
// A fused output frame (fused here or on a worker): kept for repeats of its
// input pair, counted, and its times added to inference-ms and the latency.
void gst_timfusion_frame_done(GstTimFusion* self, const GstVideoFrame* out, const tfgst::FrameKey& key,
                              double infer_ms, double processing_ms);

// gsttimfusion_inflight.cpp (frames in parallel, non-live CPU pipelines)
// Whether this frame goes to the engine's frame workers.
// Warms the workers up at the first such frame of a size (Engine::frame_workers_for); throws
// timfusion::Error when that fails.
bool gst_timfusion_use_frame_workers(GstTimFusion* self, tfgst::Engine& engine, cv::Size size, bool scaled);
// Starts outbuf's fusion on a worker: ir and vis are copied; out (mapped for
// writing) moves into the frame, out_plane is its plane 0.
GstFlowReturn gst_timfusion_start_in_flight(GstTimFusion* self, std::shared_ptr<tfgst::Engine> engine,
                                            GstBuffer* outbuf, GstVideoFrame* out, const cv::Mat& out_plane,
                                            const cv::Mat& ir, const cv::Mat& vis, timfusion::ChannelOrder order,
                                            const tfgst::FrameKey& key, bool discont,
                                            std::chrono::steady_clock::time_point started);
// The next output can be made at once: each sink pad has its next buffer
// queued or has ended (when not live, the base class aggregates exactly then).
bool gst_timfusion_next_inputs_queued(GstTimFusion* self);
// Whether the newest frame in flight has these inputs (a repeat of it).
bool gst_timfusion_in_flight_key(GstTimFusion* self, const tfgst::FrameKey& key);
// Waits for every frame in flight to be done (not pushed): before a frame
// fused in place or a repeat, so the repeat cache holds the newest output.
GstFlowReturn gst_timfusion_complete_in_flight(GstTimFusion* self);
// Pushes every frame in flight, in order (EOS, renegotiation).
GstFlowReturn gst_timfusion_drain_in_flight(GstTimFusion* self);
// Flush and state changes: waits for the workers, drops the frames.
void gst_timfusion_discard_in_flight(GstTimFusion* self);
// GstAggregatorClass::finish_buffer: pushes what is done, in order.
GstFlowReturn gst_timfusion_finish_buffer(GstAggregator* agg, GstBuffer* buffer);

// gsttimfusion_temporal.cpp
// A fused frame (before any scaling), in output order: the temporal filter
// with the properties' settings, in place. ir_luma: the IR luma as fused (on
// the visible grid); vis_plane: the visible frame's plane 0 (luma, or packed
// colour in `order`). The filter forgets the past at a new engine generation
// and when discont. Throws timfusion::Error (caller reports it).
void gst_timfusion_temporal_apply(GstTimFusion* self, const cv::Mat& ir_luma, const cv::Mat& vis_plane,
                                  timfusion::ChannelOrder order, cv::Mat& fused_plane, uint64_t engine_generation,
                                  bool discont);
// gsttimfusion_queue.cpp (live sources faster than the element; see there why)
// A new sink pad: live, a frame arriving replaces the queued frames too old
// for any output slot instead of waiting behind them.
void gst_timfusion_wrap_chain(GstPad* pad);

// gsttimfusion_loading.cpp
// NULL->READY: (re)load the model unless the loaded one matches the
// properties. Posts an element error and returns FALSE on failure.
gboolean gst_timfusion_prepare_model(GstTimFusion* self);
// "model" set while READY or above: load it in the background, swap it in
// between two frames when ready. A failure keeps the current model.
void gst_timfusion_request_model_swap(GstTimFusion* self);

// gsttimfusion_links.cpp
// How long after READY->PAUSED a sink pad may stay unlinked before the element says so.
#define UNLINKED_PAD_TIMEOUT (5 * GST_SECOND)
// READY->PAUSED: schedule the check; PAUSED->READY (and finalize): cancel it.
void gst_timfusion_start_link_check(GstTimFusion* self);
void gst_timfusion_stop_link_check(GstTimFusion* self);

// gsttimfusion_registration.cpp
// NULL->READY: makes the registration properties the active homography.
// Posts an element error and returns FALSE when they are invalid.
gboolean gst_timfusion_prepare_registration(GstTimFusion* self);
// While READY or above, a new registration takes effect at the next frame;
// an invalid one is refused with a warning (the previous one stays).
void gst_timfusion_apply_registration_live(GstTimFusion* self);

// gsttimfusion_frames.cpp: 16-bit IR through the ir-range properties (the
// frame itself when ir-range=full or the IR is 8-bit).
cv::Mat gst_timfusion_apply_ir_range(GstTimFusion* self, const cv::Mat& ir);

// gsttimfusion_autocalib.cpp
// READY->PAUSED, or auto-calibrate switched on while running: start collecting
// (when the property is on; else stop).
void gst_timfusion_autocal_arm(GstTimFusion* self);
// PAUSED->READY, finalize, property switched off: cancel and join.
void gst_timfusion_autocal_stop(GstTimFusion* self);
// Streaming thread, each fused frame: ir_luma before the warp, vis plane 0.
void gst_timfusion_autocal_offer(GstTimFusion* self, const cv::Mat& ir_luma, const cv::Mat& vis_plane,
                                 timfusion::ChannelOrder order, GstClockTime pts);
