/**
 * SECTION:element-timfusion
 * @title: timfusion
 *
 * Fuses a thermal (infrared) and a visible camera stream into one video with
 * a TIM fusion network (timfusion core library).
 *
 * Pads: "ir" (GRAY8, GRAY16_LE, RGB, BGR: luma taken) and "vis" (GRAY8, RGB,
 * BGR, RGBx, BGRx, RGBA, BGRA, I420, NV12) are ALWAYS sink pads; "src" has
 * the visible pad's format, size and framerate (a visible framerate of 0/1
 * gives the IR framerate, else 25/1). Colour output keeps the visible
 * chroma; for I420/NV12 only the Y plane goes through the network and the
 * chroma planes are copied.
 *
 * Geometry: IR frames of another size are brought onto the visible pixel
 * grid by `ir-homography` (or `calibration-file`): a 3x3 matrix mapping IR
 * pixel coordinates (x, y, 1) to visible pixel coordinates. The identity
 * (default) means co-aligned cameras: the IR frame is scaled to the visible
 * size.
 *
 * Time alignment is GstVideoAggregator's: one output frame per visible
 * frame interval, each pad contributing the frame covering that interval
 * (the last one is repeated until a newer one arrives).
 *
 * Policies:
 *  - EOS: both sink pads are created with repeat-after-eos=TRUE. When one
 *    stream ends, its last frame keeps being fused with the other stream;
 *    the element goes EOS once both pads are EOS and the last frame of each
 *    has been covered. (The base class alone never ends when every pad
 *    repeats after EOS; this element decides.) With repeat-after-eos=FALSE on
 *    "ir", the IR is black after the IR stream ends.
 *  - No IR frame for an output time (IR not started yet in live mode, or
 *    dropped after the pad's max-last-buffer-repeat): the visible frame is
 *    fused with a black IR frame (all zeros), so output never waits for the
 *    thermal camera. Logged once per run.
 *  - No visible frame for an output time: nothing is output for that slot
 *    (the output follows the visible stream).
 *  - Stalled pad in live mode: the aggregator's timeout produces the output
 *    anyway with the stalled pad's last frame.
 *  - Live and slower than the cameras: an output slot whose deadline
 *    (running time + configured latency + one frame) has already passed is
 *    skipped without inference (a QoS message is posted), so the newest pair
 *    is fused next and latency stays bounded. Downstream QoS events are
 *    honoured by the base class as well. Pad queues are bounded by the
 *    aggregator (two buffers in live mode), so sources are never blocked for
 *    more than a frame.
 *  - Latency: upstream latency + one output frame (aggregation) + the moving
 *    average of the measured processing time + 5% headroom; a LATENCY
 *    message is posted when the estimate grows or drops by more than 25%.
 *  - The model is loaded at NULL->READY and kept (also in NULL) while the
 *    model/arch/device/precision/threads properties are unchanged, so state
 *    cycles do not reload it. Setting "model" in READY or above loads the new
 *    file on a background thread and swaps it between frames; a bad file
 *    posts a warning and the old model stays.
 *
 * |[
 * gst-launch-1.0 timfusion name=f ! videoconvert ! autovideosink \
 *   v4l2src device=/dev/video2 ! videoconvert ! video/x-raw,format=GRAY8 ! f.ir \
 *   v4l2src device=/dev/video0 ! videoconvert ! video/x-raw,format=I420 ! f.vis
 * ]|
 */
#include "gsttimfusion.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include <gst/video/video.h>

#include "timfusion/arch.h"
#include "timfusion/color.h"
#include "timfusion/error.h"
#include "timfusion/fuser.h"
#include "timfusion/model_file.h"
#include "timfusion/registration.h"
#include "timfusion_enums.h"
#include "timfusion_formats.h"
#include "timfusion_latency.h"
#include "timfusion_model.h"

GST_DEBUG_CATEGORY_STATIC(gst_timfusion_debug);
#define GST_CAT_DEFAULT gst_timfusion_debug

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// What the registration properties ask for. Throws timfusion::Error.
timfusion::Homography resolve_registration(const std::string& text, const std::string& calibration_file) {
  if (!calibration_file.empty()) return timfusion::Homography::load(calibration_file);
  if (!text.empty()) return timfusion::Homography::parse(text);
  return timfusion::Homography{};
}

}  // namespace

namespace tfgst {

// Everything C++ in the element (the GObject instance only holds a pointer).
struct State {
  // --- properties (props_mu) ---
  std::mutex props_mu;
  timfusion::FuserOptions options;
  std::string homography_text;
  std::string calibration_file;

  // --- active registration (reg_mu) ---
  std::mutex reg_mu;
  timfusion::Homography homography;
  uint64_t reg_generation = 0;

  // --- loaded model (engine_mu) ---
  std::mutex engine_mu;
  std::shared_ptr<Engine> engine;
  uint64_t next_generation = 0;
  BackgroundLoader loader;

  LatencyTracker processing;  // whole per-frame work: the latency estimate
  LatencyTracker inference;   // the Fuser call alone: inference-ms

  // --- streaming thread only ---
  GstClockTime frame_duration = 0;
  GstClockTime inputs_end = GST_CLOCK_TIME_NONE;  // running time the last input frames reach
  bool said_black_ir = false;
  cv::Mat black_ir;
  guint64 processed = 0, dropped = 0;
  // Last output, reused when the same input pair comes again (repeats).
  struct Key {
    const GstBuffer* vis = nullptr;
    GstClockTime vis_pts = GST_CLOCK_TIME_NONE;
    const GstBuffer* ir = nullptr;
    GstClockTime ir_pts = GST_CLOCK_TIME_NONE;
    uint64_t engine = 0, reg = 0;
    bool operator==(const Key& o) const {
      return vis == o.vis && vis_pts == o.vis_pts && ir == o.ir && ir_pts == o.ir_pts && engine == o.engine &&
             reg == o.reg;
    }
  } cache_key;
  GstBuffer* cache = nullptr;

  std::shared_ptr<Engine> current_engine() {
    std::lock_guard<std::mutex> lock(engine_mu);
    return engine;
  }
  void clear_cache() {
    gst_clear_buffer(&cache);
    cache_key = Key{};
  }
};

}  // namespace tfgst

struct _GstTimFusion {
  GstVideoAggregator parent;
  GstVideoAggregatorPad* ir_pad;
  GstVideoAggregatorPad* vis_pad;
  tfgst::State* st;
};

enum {
  PROP_0,
  PROP_MODEL,
  PROP_ARCH,
  PROP_DEVICE,
  PROP_THREADS,
  PROP_PRECISION,
  PROP_IR_HOMOGRAPHY,
  PROP_CALIBRATION_FILE,
  PROP_INFERENCE_MS,
  PROP_ACTUAL_DEVICE,
  PROP_ACTUAL_MODEL,
};

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(TFGST_VIS_FORMATS)));
static GstStaticPadTemplate vis_template = GST_STATIC_PAD_TEMPLATE(
    "vis", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(TFGST_VIS_FORMATS)));
static GstStaticPadTemplate ir_template = GST_STATIC_PAD_TEMPLATE(
    "ir", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(TFGST_IR_FORMATS)));

G_DEFINE_TYPE_WITH_CODE(GstTimFusion, gst_timfusion, GST_TYPE_VIDEO_AGGREGATOR,
                        GST_DEBUG_CATEGORY_INIT(gst_timfusion_debug, "timfusion", 0,
                                                "TIM infrared/visible fusion element"));
GST_ELEMENT_REGISTER_DEFINE(timfusion, "timfusion", GST_RANK_NONE, GST_TYPE_TIMFUSION);

#define PARENT_AGG_CLASS GST_AGGREGATOR_CLASS(gst_timfusion_parent_class)
#define PARENT_VAGG_CLASS GST_VIDEO_AGGREGATOR_CLASS(gst_timfusion_parent_class)

/* ------------------------------------------------------------------------ */
/* Model loading                                                            */

static void post_model_loaded(GstTimFusion* self, const tfgst::Engine& e, gboolean swap) {
  GstStructure* s = gst_structure_new("timfusion-model-loaded", "model", G_TYPE_STRING, e.path().c_str(), "device",
                                      G_TYPE_STRING, e.device_name(), "load-ms", G_TYPE_DOUBLE, e.load_ms(), "swap",
                                      G_TYPE_BOOLEAN, swap, nullptr);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

static void log_device(GstTimFusion* self, const tfgst::Engine& e) {
  const auto requested = e.options().device;
  GST_INFO_OBJECT(self, "model %s loaded in %.0f ms, running on %s (device=%s requested)", e.path().c_str(),
                  e.load_ms(), e.device_name(), timfusion::device_name(requested));
  if (requested == timfusion::Device::Auto && std::string(e.device_name()) == "cpu" &&
      timfusion::Fuser::cuda_available() == false)
    GST_INFO_OBJECT(self, "device=auto: no usable CUDA device in this build/machine, inference runs on the CPU");
}

// NULL->READY: (re)load the model unless the loaded one matches the
// properties. Posts an element error and returns FALSE on failure.
static gboolean prepare_model(GstTimFusion* self) {
  tfgst::State* st = self->st;
  timfusion::FuserOptions opts;
  {
    std::lock_guard<std::mutex> lock(st->props_mu);
    opts = st->options;
  }
  auto current = st->current_engine();
  if (current && tfgst::same_options(current->options(), opts)) {
    GST_DEBUG_OBJECT(self, "model %s already loaded, reusing it", current->path().c_str());
    return TRUE;
  }
  const std::string path = tfgst::resolved_model_path(opts);
  std::shared_ptr<tfgst::Engine> engine;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(st->engine_mu);
    generation = ++st->next_generation;
  }
  try {
    engine = std::make_shared<tfgst::Engine>(opts, generation);
  } catch (const std::exception& e) {
    std::error_code ec;
    const bool missing = !std::filesystem::exists(path, ec);
    gchar* details = g_strdup_printf("model=%s arch=%s device=%s precision=%s", path.c_str(),
                                     opts.arch.empty() ? "(from file)" : opts.arch.c_str(),
                                     timfusion::device_name(opts.device), timfusion::precision_name(opts.precision));
    if (missing)
      GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("Could not load the fusion model: %s", e.what()), ("%s", details));
    else
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not load the fusion model: %s", e.what()), ("%s", details));
    g_free(details);
    return FALSE;
  }
  {
    std::lock_guard<std::mutex> lock(st->engine_mu);
    st->engine = engine;
  }
  st->processing.reset();
  st->inference.reset();
  log_device(self, *engine);
  post_model_loaded(self, *engine, FALSE);
  return TRUE;
}

static gboolean prepare_registration(GstTimFusion* self) {
  tfgst::State* st = self->st;
  std::string text, file;
  {
    std::lock_guard<std::mutex> lock(st->props_mu);
    text = st->homography_text;
    file = st->calibration_file;
  }
  try {
    timfusion::Homography h = resolve_registration(text, file);
    std::lock_guard<std::mutex> lock(st->reg_mu);
    st->homography = h;
    ++st->reg_generation;
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid IR registration: %s", e.what()),
                      ("ir-homography=\"%s\" calibration-file=\"%s\"", text.c_str(), file.c_str()));
    return FALSE;
  }
  if (!file.empty() && !text.empty())
    GST_INFO_OBJECT(self, "calibration-file %s overrides ir-homography", file.c_str());
  return TRUE;
}

// While READY or above, a new registration takes effect at the next frame;
// an invalid one is refused with a warning (the previous one stays).
static void apply_registration_live(GstTimFusion* self) {
  tfgst::State* st = self->st;
  std::string text, file;
  {
    std::lock_guard<std::mutex> lock(st->props_mu);
    text = st->homography_text;
    file = st->calibration_file;
  }
  try {
    timfusion::Homography h = resolve_registration(text, file);
    std::lock_guard<std::mutex> lock(st->reg_mu);
    st->homography = h;
    ++st->reg_generation;
  } catch (const std::exception& e) {
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("Ignoring the new IR registration: %s", e.what()),
                        ("keeping the previous homography"));
  }
}

static cv::Size negotiated_size(GstTimFusion* self) {
  GstVideoAggregator* vagg = GST_VIDEO_AGGREGATOR(self);
  GST_OBJECT_LOCK(self);
  cv::Size s(GST_VIDEO_INFO_WIDTH(&vagg->info), GST_VIDEO_INFO_HEIGHT(&vagg->info));
  GST_OBJECT_UNLOCK(self);
  return s;
}

// "model" set while READY or above: load it in the background, swap it in
// between two frames when ready. A failure keeps the current model.
static void request_model_swap(GstTimFusion* self) {
  tfgst::State* st = self->st;
  timfusion::FuserOptions opts;
  {
    std::lock_guard<std::mutex> lock(st->props_mu);
    opts = st->options;
  }
  auto current = st->current_engine();
  if (current && tfgst::same_options(current->options(), opts)) {
    st->loader.cancel();  // back to the loaded one: drop loads in flight
    return;
  }
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(st->engine_mu);
    generation = ++st->next_generation;
  }
  GST_INFO_OBJECT(self, "loading model %s in the background", tfgst::resolved_model_path(opts).c_str());
  gst_object_ref(self);
  st->loader.start(
      opts, generation, negotiated_size(self),
      [self](std::shared_ptr<tfgst::Engine> engine, const std::string& error) {
        tfgst::State* st = self->st;
        if (engine) {
          std::shared_ptr<tfgst::Engine> old;
          {
            std::lock_guard<std::mutex> lock(st->engine_mu);
            old = st->engine;
            st->engine = engine;
          }
          st->processing.reset();
          st->inference.reset();
          log_device(self, *engine);
          post_model_loaded(self, *engine, TRUE);
        } else if (!error.empty()) {
          auto cur = st->current_engine();
          GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ, ("Could not load the new fusion model: %s", error.c_str()),
                              ("keeping the current model %s", cur ? cur->path().c_str() : "(none)"));
        }
      },
      [self] { gst_object_unref(self); });
}

/* ------------------------------------------------------------------------ */
/* Properties                                                               */

static void gst_timfusion_set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  GstTimFusion* self = GST_TIMFUSION(object);
  tfgst::State* st = self->st;
  GST_OBJECT_LOCK(self);
  const gboolean running = GST_STATE(self) >= GST_STATE_READY;
  GST_OBJECT_UNLOCK(self);
  auto str = [value] {
    const gchar* s = g_value_get_string(value);
    return std::string(s ? s : "");
  };
  switch (prop_id) {
    case PROP_MODEL: {
      {
        std::lock_guard<std::mutex> lock(st->props_mu);
        st->options.model = str();
      }
      if (running) request_model_swap(self);
      break;
    }
    case PROP_ARCH: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      st->options.arch = str();
      break;
    }
    case PROP_DEVICE: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      st->options.device = static_cast<timfusion::Device>(g_value_get_enum(value));
      break;
    }
    case PROP_THREADS: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      st->options.threads = g_value_get_int(value);
      break;
    }
    case PROP_PRECISION: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      st->options.precision = static_cast<timfusion::Precision>(g_value_get_enum(value));
      break;
    }
    case PROP_IR_HOMOGRAPHY: {
      {
        std::lock_guard<std::mutex> lock(st->props_mu);
        st->homography_text = str();
      }
      if (running) apply_registration_live(self);
      break;
    }
    case PROP_CALIBRATION_FILE: {
      {
        std::lock_guard<std::mutex> lock(st->props_mu);
        st->calibration_file = str();
      }
      if (running) apply_registration_live(self);
      break;
    }
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_timfusion_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstTimFusion* self = GST_TIMFUSION(object);
  tfgst::State* st = self->st;
  switch (prop_id) {
    case PROP_MODEL: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_string(value, st->options.model.c_str());
      break;
    }
    case PROP_ARCH: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_string(value, st->options.arch.c_str());
      break;
    }
    case PROP_DEVICE: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_enum(value, static_cast<gint>(st->options.device));
      break;
    }
    case PROP_THREADS: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_int(value, st->options.threads);
      break;
    }
    case PROP_PRECISION: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_enum(value, static_cast<gint>(st->options.precision));
      break;
    }
    case PROP_IR_HOMOGRAPHY: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_string(value, st->homography_text.c_str());
      break;
    }
    case PROP_CALIBRATION_FILE: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_string(value, st->calibration_file.c_str());
      break;
    }
    case PROP_INFERENCE_MS: g_value_set_double(value, st->inference.average_ms()); break;
    case PROP_ACTUAL_DEVICE: {
      auto e = st->current_engine();
      g_value_set_string(value, e ? e->device_name() : "");
      break;
    }
    case PROP_ACTUAL_MODEL: {
      auto e = st->current_engine();
      g_value_set_string(value, e ? e->path().c_str() : "");
      break;
    }
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

/* ------------------------------------------------------------------------ */
/* Caps                                                                     */

// Sink caps: ir takes its template (any size/rate: it is warped onto the
// visible grid); vis also has to suit downstream, since the output has its
// format and size.
static GstCaps* sink_caps(GstTimFusion* self, GstPad* pad, GstCaps* filter) {
  GstCaps* templ = gst_pad_get_pad_template_caps(pad);
  GstCaps* result;
  if (pad == GST_PAD(self->vis_pad)) {
    GstPad* srcpad = GST_AGGREGATOR_SRC_PAD(self);
    GstCaps* src_templ = gst_pad_get_pad_template_caps(srcpad);
    GstCaps* down = gst_pad_peer_query_caps(srcpad, src_templ);
    gst_caps_unref(src_templ);
    down = gst_caps_make_writable(down);
    for (guint i = 0; i < gst_caps_get_size(down); ++i)
      gst_structure_remove_field(gst_caps_get_structure(down, i), "framerate");
    result = gst_caps_intersect(down, templ);
    gst_caps_unref(down);
    gst_caps_unref(templ);
  } else {
    result = templ;
  }
  if (filter) {
    GstCaps* tmp = gst_caps_intersect_full(filter, result, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(result);
    result = tmp;
  }
  return result;
}

static gboolean gst_timfusion_sink_query(GstAggregator* agg, GstAggregatorPad* bpad, GstQuery* query) {
  GstTimFusion* self = GST_TIMFUSION(agg);
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_CAPS: {
      GstCaps* filter;
      gst_query_parse_caps(query, &filter);
      GstCaps* caps = sink_caps(self, GST_PAD(bpad), filter);
      gst_query_set_caps_result(query, caps);
      gst_caps_unref(caps);
      return TRUE;
    }
    case GST_QUERY_ACCEPT_CAPS: {
      GstCaps* caps;
      gst_query_parse_accept_caps(query, &caps);
      GstCaps* allowed = sink_caps(self, GST_PAD(bpad), nullptr);
      const gboolean ok = gst_caps_can_intersect(caps, allowed);
      if (!ok) {
        if (GST_PAD(bpad) == GST_PAD(self->vis_pad))
          GST_WARNING_OBJECT(bpad,
                             "refusing %" GST_PTR_FORMAT
                             ": the output has the visible pad's format and size, and downstream + this pad "
                             "accept only %" GST_PTR_FORMAT " (put videoconvert/videoscale before the vis pad)",
                             caps, allowed);
        else
          GST_WARNING_OBJECT(bpad, "refusing %" GST_PTR_FORMAT ": the ir pad accepts only %" GST_PTR_FORMAT, caps,
                             allowed);
      }
      gst_caps_unref(allowed);
      gst_query_set_accept_caps_result(query, ok);
      return TRUE;
    }
    default: return PARENT_AGG_CLASS->sink_query(agg, bpad, query);
  }
}

static GstVideoInfo pad_info(GstTimFusion* self, GstVideoAggregatorPad* pad) {
  GST_OBJECT_LOCK(self);
  GstVideoInfo info = pad->info;
  GST_OBJECT_UNLOCK(self);
  return info;
}

// The output caps are the visible pad's (framerate: visible, else IR, else
// 25/1), if downstream takes them.
static GstFlowReturn gst_timfusion_update_src_caps(GstAggregator* agg, GstCaps* downstream_caps, GstCaps** ret) {
  GstTimFusion* self = GST_TIMFUSION(agg);
  GstVideoInfo vis = pad_info(self, self->vis_pad);
  GstVideoInfo ir = pad_info(self, self->ir_pad);
  *ret = nullptr;
  if (!vis.finfo || GST_VIDEO_INFO_FORMAT(&vis) == GST_VIDEO_FORMAT_UNKNOWN) {
    if (gst_aggregator_pad_is_eos(GST_AGGREGATOR_PAD(self->vis_pad))) {
      GST_INFO_OBJECT(self, "the visible stream ended before it had caps: nothing to output");
      return GST_FLOW_EOS;
    }
    GST_DEBUG_OBJECT(self, "waiting for the visible pad's caps");
    return GST_AGGREGATOR_FLOW_NEED_DATA;
  }
  GstVideoInfo out = vis;
  if (GST_VIDEO_INFO_FPS_N(&out) <= 0) {
    if (ir.finfo && GST_VIDEO_INFO_FPS_N(&ir) > 0) {
      GST_VIDEO_INFO_FPS_N(&out) = GST_VIDEO_INFO_FPS_N(&ir);
      GST_VIDEO_INFO_FPS_D(&out) = GST_VIDEO_INFO_FPS_D(&ir);
    } else {
      GST_VIDEO_INFO_FPS_N(&out) = 25;
      GST_VIDEO_INFO_FPS_D(&out) = 1;
    }
  }
  GstCaps* caps = gst_video_info_to_caps(&out);
  GstCaps* result = gst_caps_intersect(caps, downstream_caps);
  if (gst_caps_is_empty(result)) {
    gchar* want = gst_caps_to_string(caps);
    gchar* down = gst_caps_to_string(downstream_caps);
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                      ("Downstream does not accept the fused video (%s): the output has the visible pad's format, "
                       "size and framerate; add videoconvert/videoscale after timfusion",
                       want),
                      ("downstream accepts %s", down));
    g_free(want);
    g_free(down);
    gst_caps_unref(caps);
    gst_caps_unref(result);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  gst_caps_unref(caps);
  *ret = result;
  return GST_FLOW_OK;
}

static GstCaps* gst_timfusion_fixate_src_caps(GstAggregator* agg, GstCaps* caps) {
  return gst_caps_fixate(caps);
}

static void report_latency(GstTimFusion* self) {
  GstClockTime processing;
  if (!self->st->processing.take_report(&processing)) return;
  const GstClockTime total = self->st->frame_duration + processing;
  GST_DEBUG_OBJECT(self, "reporting latency %" GST_TIME_FORMAT " (one frame + processing %" GST_TIME_FORMAT ")",
                   GST_TIME_ARGS(total), GST_TIME_ARGS(processing));
  gst_aggregator_set_latency(GST_AGGREGATOR(self), total, total);
}

static gboolean gst_timfusion_negotiated_src_caps(GstAggregator* agg, GstCaps* caps) {
  GstTimFusion* self = GST_TIMFUSION(agg);
  tfgst::State* st = self->st;
  if (!PARENT_AGG_CLASS->negotiated_src_caps(agg, caps)) return FALSE;
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, caps)) return FALSE;
  st->frame_duration = GST_VIDEO_INFO_FPS_N(&info) > 0
                           ? gst_util_uint64_scale_int(GST_SECOND, GST_VIDEO_INFO_FPS_D(&info), GST_VIDEO_INFO_FPS_N(&info))
                           : 0;
  st->clear_cache();
  // Warm-up at the negotiated size, before the first frame's deadline.
  if (auto engine = st->current_engine()) {
    try {
      const double ms = engine->warmup(cv::Size(GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info)));
      if (ms >= 0) {
        GST_INFO_OBJECT(self, "warm-up at %dx%d took %.1f ms", GST_VIDEO_INFO_WIDTH(&info),
                        GST_VIDEO_INFO_HEIGHT(&info), ms);
        if (!st->processing.has_samples()) st->processing.add(ms);
      }
    } catch (const std::exception& e) {
      GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Fusion model warm-up failed: %s", e.what()), (nullptr));
      return FALSE;
    }
  }
  st->processing.forget_report();
  report_latency(self);
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Aggregation                                                              */

static GstClockTime output_start_time(GstAggregator* agg) {
  GstSegment* seg = &GST_AGGREGATOR_PAD(agg->srcpad)->segment;
  GstClockTime t = seg->position;
  if (seg->rate >= 0) {
    if (!GST_CLOCK_TIME_IS_VALID(t) || t < seg->start) t = seg->start;
  } else {
    if (!GST_CLOCK_TIME_IS_VALID(t) || t > seg->stop) t = seg->stop;
  }
  return t;
}

static bool is_gap(GstBuffer* buf) {
  return gst_buffer_get_size(buf) == 0 && GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_GAP);
}

static void track_input_end(GstTimFusion* self, GstVideoAggregatorPad* pad) {
  GstBuffer* buf = gst_video_aggregator_pad_get_current_buffer(pad);
  if (!buf || !GST_BUFFER_PTS_IS_VALID(buf)) return;
  GstClockTime end = GST_BUFFER_PTS(buf) + (GST_BUFFER_DURATION_IS_VALID(buf) ? GST_BUFFER_DURATION(buf) : 0);
  GstAggregatorPad* apad = GST_AGGREGATOR_PAD(pad);
  GST_OBJECT_LOCK(apad);
  GstClockTime rt = gst_segment_to_running_time(&apad->segment, GST_FORMAT_TIME, end);
  GST_OBJECT_UNLOCK(apad);
  GstClockTime& cur = self->st->inputs_end;
  if (GST_CLOCK_TIME_IS_VALID(rt) && (!GST_CLOCK_TIME_IS_VALID(cur) || rt > cur)) cur = rt;
}

// Both pads ended and the output has covered their last frames.
static bool all_inputs_done(GstTimFusion* self) {
  if (!gst_aggregator_pad_is_eos(GST_AGGREGATOR_PAD(self->vis_pad)) ||
      !gst_aggregator_pad_is_eos(GST_AGGREGATOR_PAD(self->ir_pad)))
    return false;
  GstAggregator* agg = GST_AGGREGATOR(self);
  GstSegment* seg = &GST_AGGREGATOR_PAD(agg->srcpad)->segment;
  if (!GST_CLOCK_TIME_IS_VALID(seg->position) || seg->rate < 0) return true;
  const GstClockTime rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, seg->position);
  const GstClockTime end = self->st->inputs_end;
  return !GST_CLOCK_TIME_IS_VALID(rt) || !GST_CLOCK_TIME_IS_VALID(end) || rt >= end;
}

static GstFlowReturn gst_timfusion_aggregate(GstAggregator* agg, gboolean timeout) {
  GstTimFusion* self = GST_TIMFUSION(agg);
  if (all_inputs_done(self)) {
    GST_DEBUG_OBJECT(self, "both inputs ended and their last frames are out: EOS");
    return GST_FLOW_EOS;
  }
  return PARENT_AGG_CLASS->aggregate(agg, timeout);
}

// Flushing seek: the output timeline restarts.
static GstFlowReturn gst_timfusion_flush(GstAggregator* agg) {
  GstTimFusion* self = GST_TIMFUSION(agg);
  self->st->inputs_end = GST_CLOCK_TIME_NONE;
  self->st->clear_cache();
  return PARENT_AGG_CLASS->flush(agg);
}

// Live only: has this output slot's deadline passed already?
static bool output_too_late(GstTimFusion* self, GstClockTime start, GstClockTime* jitter) {
  GstAggregator* agg = GST_AGGREGATOR(self);
  const GstClockTime latency = gst_aggregator_get_latency(agg);
  if (!GST_CLOCK_TIME_IS_VALID(latency) || !GST_CLOCK_TIME_IS_VALID(start)) return false;
  GstClock* clock = gst_element_get_clock(GST_ELEMENT(self));
  if (!clock) return false;
  const GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  const GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
  if (now < base) return false;
  GstSegment* seg = &GST_AGGREGATOR_PAD(agg->srcpad)->segment;
  const GstClockTime start_rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, start);
  if (!GST_CLOCK_TIME_IS_VALID(start_rt)) return false;
  const GstClockTime deadline = start_rt + latency + self->st->frame_duration;
  if (now - base <= deadline) return false;
  *jitter = now - base - deadline;
  return true;
}

static GstFlowReturn gst_timfusion_create_output_buffer(GstVideoAggregator* vagg, GstBuffer** outbuf) {
  GstTimFusion* self = GST_TIMFUSION(vagg);
  tfgst::State* st = self->st;
  GstAggregator* agg = GST_AGGREGATOR(vagg);
  *outbuf = nullptr;
  track_input_end(self, self->vis_pad);
  track_input_end(self, self->ir_pad);

  GstBuffer* vis = gst_video_aggregator_pad_get_current_buffer(self->vis_pad);
  if (!vis || is_gap(vis)) {
    GST_LOG_OBJECT(self, "no visible frame for this output time: nothing to output");
    return GST_FLOW_OK;
  }
  const GstClockTime start = output_start_time(agg);
  GstClockTime jitter = 0;
  if (output_too_late(self, start, &jitter)) {
    ++st->dropped;
    GST_DEBUG_OBJECT(self, "output at %" GST_TIME_FORMAT " is %" GST_TIME_FORMAT " late: skipped", GST_TIME_ARGS(start),
                     GST_TIME_ARGS(jitter));
    GstSegment* seg = &GST_AGGREGATOR_PAD(agg->srcpad)->segment;
    GstMessage* msg = gst_message_new_qos(GST_OBJECT(self), TRUE, gst_segment_to_running_time(seg, GST_FORMAT_TIME, start),
                                          gst_segment_to_stream_time(seg, GST_FORMAT_TIME, start), start,
                                          st->frame_duration);
    gst_message_set_qos_values(msg, static_cast<gint64>(jitter), 1.0, 1000000);
    gst_message_set_qos_stats(msg, GST_FORMAT_BUFFERS, st->processed, st->dropped);
    gst_element_post_message(GST_ELEMENT(self), msg);
    return GST_FLOW_OK;
  }
  return PARENT_VAGG_CLASS->create_output_buffer(vagg, outbuf);
}

static GstFlowReturn fusion_failed(GstTimFusion* self, const char* what) {
  GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Fusion failed: %s", what), (nullptr));
  return GST_FLOW_ERROR;
}

static GstFlowReturn gst_timfusion_aggregate_frames(GstVideoAggregator* vagg, GstBuffer* outbuf) {
  GstTimFusion* self = GST_TIMFUSION(vagg);
  tfgst::State* st = self->st;
  const auto t0 = Clock::now();

  GstVideoFrame* vis = gst_video_aggregator_pad_get_prepared_frame(self->vis_pad);
  GstVideoFrame* ir = gst_video_aggregator_pad_get_prepared_frame(self->ir_pad);
  if (!vis) return fusion_failed(self, "the visible frame could not be mapped");
  auto engine = st->current_engine();
  if (!engine) return fusion_failed(self, "no model is loaded");
  timfusion::Homography h;
  uint64_t reg_generation;
  {
    std::lock_guard<std::mutex> lock(st->reg_mu);
    h = st->homography;
    reg_generation = st->reg_generation;
  }

  GstVideoFrame out;
  if (!gst_video_frame_map(&out, &vagg->info, outbuf, GST_MAP_WRITE))
    return fusion_failed(self, "the output buffer could not be mapped");

  // Same inputs as the last output (a repeated frame): reuse it.
  tfgst::State::Key key{vis->buffer,      GST_BUFFER_PTS(vis->buffer), ir ? ir->buffer : nullptr,
                        ir ? GST_BUFFER_PTS(ir->buffer) : GST_CLOCK_TIME_NONE, engine->generation(), reg_generation};
  if (st->cache && key == st->cache_key) {
    GstVideoFrame cached;
    if (gst_video_frame_map(&cached, &vagg->info, st->cache, GST_MAP_READ)) {
      gst_video_frame_copy(&out, &cached);
      gst_video_frame_unmap(&cached);
      gst_video_frame_unmap(&out);
      GST_LOG_OBJECT(self, "same input pair as the previous output: repeated it");
      return GST_FLOW_OK;
    }
  }

  const tfgst::PlaneView view = tfgst::plane_view(GST_VIDEO_FRAME_FORMAT(vis));
  cv::Mat vis_m = tfgst::wrap_plane0(vis, view);
  cv::Mat out_m = tfgst::wrap_plane0(&out, view);
  double infer_ms = 0;
  try {
    cv::Mat ir_m;
    if (ir) {
      const tfgst::PlaneView irv = tfgst::plane_view(GST_VIDEO_FRAME_FORMAT(ir));
      ir_m = tfgst::wrap_plane0(ir, irv);
      // Luma with the IR frame's own channel order (it may differ from vis).
      if (ir_m.channels() > 1) ir_m = timfusion::luma_of(ir_m, irv.order);
      ir_m = timfusion::warp_ir(ir_m, h, vis_m.size());
    } else {
      if (st->black_ir.size() != vis_m.size()) st->black_ir = cv::Mat::zeros(vis_m.size(), CV_8UC1);
      ir_m = st->black_ir;
      if (!st->said_black_ir) {
        GST_INFO_OBJECT(self, "no IR frame for this output time: fusing with a black IR frame");
        st->said_black_ir = true;
      }
    }
    const auto t1 = Clock::now();
    engine->fuse(ir_m, vis_m, out_m, view.order);
    infer_ms = ms_since(t1);
  } catch (const std::exception& e) {
    gst_video_frame_unmap(&out);
    return fusion_failed(self, e.what());
  }
  if (view.yuv) tfgst::copy_chroma(vis, &out);

  // Keep a copy for repeats of the same pair.
  if (!st->cache) st->cache = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&vagg->info), nullptr);
  GstVideoFrame cached;
  if (st->cache && gst_video_frame_map(&cached, &vagg->info, st->cache, GST_MAP_WRITE)) {
    gst_video_frame_copy(&cached, &out);
    gst_video_frame_unmap(&cached);
    st->cache_key = key;
  }
  gst_video_frame_unmap(&out);

  ++st->processed;
  st->inference.add(infer_ms);
  st->processing.add(ms_since(t0));
  report_latency(self);
  return GST_FLOW_OK;
}

/* ------------------------------------------------------------------------ */
/* State changes                                                            */

static GstStateChangeReturn gst_timfusion_change_state(GstElement* element, GstStateChange transition) {
  GstTimFusion* self = GST_TIMFUSION(element);
  tfgst::State* st = self->st;
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!prepare_registration(self) || !prepare_model(self)) return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      st->inputs_end = GST_CLOCK_TIME_NONE;
      st->said_black_ir = false;
      st->processed = st->dropped = 0;
      st->processing.forget_report();
      st->clear_cache();
      break;
    default: break;
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_timfusion_parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) return ret;
  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY: st->clear_cache(); break;
    case GST_STATE_CHANGE_READY_TO_NULL:
      // The loaded model stays cached for the next NULL->READY.
      st->loader.wait_idle();
      break;
    default: break;
  }
  return ret;
}

/* ------------------------------------------------------------------------ */
/* GObject                                                                  */

static void gst_timfusion_finalize(GObject* object) {
  GstTimFusion* self = GST_TIMFUSION(object);
  // Loader threads hold a reference: none is running by now.
  self->st->clear_cache();
  delete self->st;
  self->st = nullptr;
  G_OBJECT_CLASS(gst_timfusion_parent_class)->finalize(object);
}

static GstVideoAggregatorPad* add_sink_pad(GstTimFusion* self, const char* name) {
  GstPadTemplate* templ = gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(self), name);
  auto* pad = static_cast<GstVideoAggregatorPad*>(g_object_new(GST_TYPE_VIDEO_AGGREGATOR_PAD, "name", name,
                                                               "direction", GST_PAD_SINK, "template", templ,
                                                               "repeat-after-eos", TRUE, nullptr));
  gst_element_add_pad(GST_ELEMENT(self), GST_PAD(pad));
  return pad;
}

static void gst_timfusion_init(GstTimFusion* self) {
  self->st = new tfgst::State();
  self->vis_pad = add_sink_pad(self, "vis");
  self->ir_pad = add_sink_pad(self, "ir");
}

static std::string join_arch_names() {
  std::string s;
  for (const auto& n : timfusion::ArchSpec::names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

static void gst_timfusion_class_init(GstTimFusionClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstAggregatorClass* agg_class = GST_AGGREGATOR_CLASS(klass);
  GstVideoAggregatorClass* vagg_class = GST_VIDEO_AGGREGATOR_CLASS(klass);

  gobject_class->set_property = gst_timfusion_set_property;
  gobject_class->get_property = gst_timfusion_get_property;
  gobject_class->finalize = gst_timfusion_finalize;

  // Blurbs that are built at run time are copied by GLib (no STATIC_BLURB).
  const auto dyn = static_cast<GParamFlags>(G_PARAM_STATIC_NAME | G_PARAM_STATIC_NICK);
  const auto rw_ready = static_cast<GParamFlags>(G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY);
  const auto rw_playing = static_cast<GParamFlags>(G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING);
  const auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  gchar* model_blurb = g_strdup_printf(
      "TIM weight file (.safetensors) to fuse with. Empty: the default model (now %s; $TIMFUSION_MODEL overrides "
      "it). Loaded at NULL->READY (a missing or bad file fails that state change); set while READY or later, the "
      "new file is loaded in the background and swapped in between frames (if it is bad, a warning is posted and "
      "the current model stays)",
      timfusion::default_model_path().c_str());
  g_object_class_install_property(gobject_class, PROP_MODEL,
                                  g_param_spec_string("model", "Model file", model_blurb, "",
                                                      static_cast<GParamFlags>(rw_playing | dyn)));
  g_free(model_blurb);

  gchar* arch_blurb = g_strdup_printf(
      "Architecture of a weight file that has no timfusion.arch metadata: a built-in name (%s) or a JSON genotype "
      "file. Empty: read it from the file. Takes effect at the next NULL->READY (or model swap)",
      join_arch_names().c_str());
  g_object_class_install_property(gobject_class, PROP_ARCH,
                                  g_param_spec_string("arch", "Architecture", arch_blurb, "",
                                                      static_cast<GParamFlags>(rw_ready | dyn)));
  g_free(arch_blurb);

  g_object_class_install_property(
      gobject_class, PROP_DEVICE,
      g_param_spec_enum("device", "Device",
                        "Where the network runs. auto picks CUDA when usable, else the CPU; cuda fails the "
                        "NULL->READY state change when no GPU is usable. See actual-device for what is used",
                        GST_TYPE_TIMFUSION_DEVICE, static_cast<gint>(timfusion::Device::Auto),
                        static_cast<GParamFlags>(rw_ready | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_THREADS,
      g_param_spec_int("threads", "Threads",
                       "CPU threads for inference (LibTorch intra-op threads, a process-wide setting); 0 = "
                       "LibTorch's default (one per core)",
                       0, 1024, 0, static_cast<GParamFlags>(rw_ready | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_PRECISION,
      g_param_spec_enum("precision", "Precision",
                        "Arithmetic of the network: fp32 everywhere, fp16 on CUDA only, bf16 where the LibTorch "
                        "build supports it (an unsupported choice fails NULL->READY)",
                        GST_TYPE_TIMFUSION_PRECISION, static_cast<gint>(timfusion::Precision::Fp32),
                        static_cast<GParamFlags>(rw_ready | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_IR_HOMOGRAPHY,
      g_param_spec_string(
          "ir-homography", "IR homography",
          "3x3 homography, row-major, that maps IR pixel coordinates (x, y, 1) to visible pixel coordinates: 9 "
          "numbers \"a,b,c,d,e,f,g,h,i\" (a GstValueArray \"<a, b, ..., i>\" is accepted too). Empty = identity: "
          "the cameras are co-aligned and the IR frame is scaled to the visible size. It must be finite, "
          "invertible and must not mirror the image (else NULL->READY fails; set while running, a bad value is "
          "ignored with a warning)",
          "", static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_CALIBRATION_FILE,
      g_param_spec_string("calibration-file", "Calibration file",
                          "File with the IR homography (same meaning as ir-homography, which it overrides): JSON "
                          "{\"ir-homography\": [9 numbers]} or a key file line ir-homography=a;b;...;i. Read and "
                          "validated at NULL->READY (a missing or invalid file fails it) or when set while running",
                          "", static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_INFERENCE_MS,
      g_param_spec_double("inference-ms", "Inference time (ms)",
                          "Moving average of the time the network takes per frame, in milliseconds (0 before the "
                          "first frame)",
                          0, G_MAXDOUBLE, 0, ro));
  g_object_class_install_property(
      gobject_class, PROP_ACTUAL_DEVICE,
      g_param_spec_string("actual-device", "Actual device",
                          "Device the loaded model really runs on (cpu or cuda); empty before the model is loaded "
                          "(NULL->READY)",
                          "", ro));
  g_object_class_install_property(
      gobject_class, PROP_ACTUAL_MODEL,
      g_param_spec_string("actual-model", "Actual model",
                          "Weight file of the model in use (changes when a model swap completes); empty before "
                          "the first load",
                          "", ro));

  gst_element_class_set_static_metadata(
      element_class, "TIM infrared/visible fusion", "Filter/Editor/Video/Compositor",
      "Fuses a thermal camera (sink pad \"ir\": GRAY8, GRAY16_LE, RGB, BGR) with a visible camera (sink pad \"vis\") "
      "into one video with a TIM fusion network. The output has the visible pad's format, size and framerate; IR "
      "frames are warped onto the visible grid (ir-homography). Both sink pads repeat their last frame after EOS "
      "until the other ends; before the first IR frame the visible frame is fused with black IR",
      "timfusion developers");
  gst_element_class_add_static_pad_template_with_gtype(element_class, &src_template, GST_TYPE_AGGREGATOR_PAD);
  gst_element_class_add_static_pad_template_with_gtype(element_class, &vis_template, GST_TYPE_VIDEO_AGGREGATOR_PAD);
  gst_element_class_add_static_pad_template_with_gtype(element_class, &ir_template, GST_TYPE_VIDEO_AGGREGATOR_PAD);

  element_class->change_state = GST_DEBUG_FUNCPTR(gst_timfusion_change_state);
  agg_class->sink_query = GST_DEBUG_FUNCPTR(gst_timfusion_sink_query);
  agg_class->update_src_caps = GST_DEBUG_FUNCPTR(gst_timfusion_update_src_caps);
  agg_class->fixate_src_caps = GST_DEBUG_FUNCPTR(gst_timfusion_fixate_src_caps);
  agg_class->negotiated_src_caps = GST_DEBUG_FUNCPTR(gst_timfusion_negotiated_src_caps);
  agg_class->aggregate = GST_DEBUG_FUNCPTR(gst_timfusion_aggregate);
  agg_class->flush = GST_DEBUG_FUNCPTR(gst_timfusion_flush);
  vagg_class->create_output_buffer = GST_DEBUG_FUNCPTR(gst_timfusion_create_output_buffer);
  vagg_class->aggregate_frames = GST_DEBUG_FUNCPTR(gst_timfusion_aggregate_frames);

  gst_type_mark_as_plugin_api(GST_TYPE_TIMFUSION_DEVICE, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_TIMFUSION_PRECISION, static_cast<GstPluginAPIFlags>(0));
}
