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
 *  - EOS: both sink pads have repeat-after-eos=TRUE (their default). When one
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
 *    skipped without inference (a QoS message is posted), and a queued input
 *    frame too old for any slot gives way to the next one arriving instead
 *    of holding the source back, so the newest pair is fused next and
 *    latency stays bounded however fast the sources are (3 s of 320x240
 *    video at 1000 fps plays in about 3 s). Downstream QoS events are
 *    honoured by the base class as well.
 *  - Latency: upstream latency + one output frame (aggregation) + the moving
 *    average of the measured processing time + 5% headroom; a LATENCY
 *    message is posted when the estimate grows or drops by more than 25%.
 *  - Threads: with threads=0 (the default) the element's frames are tasks
 *    on the process's shared CPU (timfusion/shared_cpu.h): one worker per
 *    core for every timfusion of the process, each frame whole on one core,
 *    frames of all elements taken earliest deadline first. So N rigs in one
 *    process never run more fusion threads than cores (eight elements with
 *    their own threads each put 2 x cores threads on the cores and dropped
 *    frames at 195 % CPU on 2 cores), and all elements of a model share one
 *    prepared network (the weight file is read once per process). A live
 *    pipeline fuses one frame at a time; a non-live one (files, test
 *    sources, transcoding) keeps min(cores, 4) frames in flight. A frame
 *    needing more than 256 MiB of tensor memory (ivif-light at 640x480) is
 *    split over every core instead. threads=N > 0 gives the element its own
 *    N intra-op threads as before: a live pipeline splits each frame over
 *    them; a non-live one with N > 1 fuses min(N, 4) whole frames at once,
 *    each on its own worker: one frame's layers never wait for another core
 *    (fuser_pool.h). Output is pushed in order, byte-identical to one frame
 *    at a time; a frame is held back only while the next input pair is
 *    already queued, so an application that waits for each output before
 *    pushing the next input gets it. See frames-in-flight.
 *  - Unlinked sink pad: 5 s after READY->PAUSED an element error names the
 *    unlinked pad (a warning when output flows anyway), instead of a silent
 *    hang in PREROLLING.
 *  - The model is loaded at NULL->READY and kept (also in NULL) while the
 *    model/arch/device/precision/threads properties are unchanged, so state
 *    cycles do not reload it. Setting "model" in READY or above loads the new
 *    file on a background thread and swaps it between frames; a bad file
 *    posts a warning and the old model stays. At most one load runs at a
 *    time: sets made meanwhile replace each other, and the last one is loaded
 *    next (an application setting "model" at 50 Hz costs one load at a time,
 *    and the last file set is the one in use after the burst).
 *
 * Pad properties (the base class's max-last-buffer-repeat, ...) can be set
 * from gst-launch through GstChildProxy: `timfusion name=f
 * ir::max-last-buffer-repeat=1000000000`.
 *
 * Messages: "timfusion-model-loaded" (element message, each time a model is
 * loaded or swapped in: model = the file path, device, load-ms, swap), QoS
 * messages for output slots skipped when late (live), LATENCY when the
 * latency estimate changes, and element errors/warnings described in README.md.
 *
 * |[
 * gst-launch-1.0 timfusion name=f ! videoconvert ! autovideosink \
 *   v4l2src device=/dev/video2 ! videoconvert ! video/x-raw,format=GRAY8 ! f.ir \
 *   v4l2src device=/dev/video0 ! videoconvert ! video/x-raw,format=I420 ! f.vis
 * ]|
 */
#include "gsttimfusion.h"

#include <string>

#include "gsttimfusion_pad.h"
#include "gsttimfusion_private.h"
#include "timfusion/arch.h"
#include "timfusion/model_file.h"
#include "timfusion/thread_limits.h"
#include "timfusion_enums.h"
#include "timfusion_formats.h"

GST_DEBUG_CATEGORY(gst_timfusion_debug);

// Property defaults: one constant each, used by the param specs and by the instance.
#define DEFAULT_MODEL ""
#define DEFAULT_ARCH ""
#define DEFAULT_DEVICE timfusion::Device::Auto
#define DEFAULT_THREADS 0
#define DEFAULT_PARALLEL_FRAMES TRUE
#define DEFAULT_TEMPORAL TRUE
#define DEFAULT_TEMPORAL_STRENGTH 0.75
#define DEFAULT_PRECISION timfusion::Precision::Fp32
#define DEFAULT_IR_HOMOGRAPHY ""
#define DEFAULT_CALIBRATION_FILE ""

enum {
  PROP_0,
  PROP_MODEL,
  PROP_ARCH,
  PROP_DEVICE,
  PROP_THREADS,
  PROP_PARALLEL_FRAMES,
  PROP_TEMPORAL,
  PROP_TEMPORAL_STRENGTH,
  PROP_PRECISION,
  PROP_IR_HOMOGRAPHY,
  PROP_CALIBRATION_FILE,
  PROP_INFERENCE_MS,
  PROP_ACTUAL_DEVICE,
  PROP_ACTUAL_MODEL,
  PROP_INFERENCE_THREADS,
  PROP_FRAMES_IN_FLIGHT,
  PROP_AUTO_CALIBRATE,
  PROP_AUTO_CALIBRATE_SECONDS,
  PROP_AUTO_CALIBRATE_FRAMES,
  PROP_AUTO_CALIBRATE_CHECKERBOARD,
  PROP_IR_RANGE,
  PROP_IR_RANGE_MIN,
  PROP_IR_RANGE_MAX,
};

#define DEFAULT_IR_RANGE GST_TIMFUSION_IR_RANGE_FULL
#define DEFAULT_IR_RANGE_MIN 0
#define DEFAULT_IR_RANGE_MAX 65535
#define DEFAULT_AUTO_CALIBRATE FALSE
#define DEFAULT_AUTO_CALIBRATE_SECONDS 2.0
#define DEFAULT_AUTO_CALIBRATE_FRAMES 4
#define DEFAULT_AUTO_CALIBRATE_CHECKERBOARD ""

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(TFGST_VIS_FORMATS)));
static GstStaticPadTemplate vis_template = GST_STATIC_PAD_TEMPLATE(
    "vis", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(TFGST_VIS_FORMATS)));
static GstStaticPadTemplate ir_template = GST_STATIC_PAD_TEMPLATE(
    "ir", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(TFGST_IR_FORMATS)));

static void gst_timfusion_child_proxy_init(gpointer g_iface, gpointer iface_data);

G_DEFINE_TYPE_WITH_CODE(GstTimFusion, gst_timfusion, GST_TYPE_VIDEO_AGGREGATOR,
                        G_IMPLEMENT_INTERFACE(GST_TYPE_CHILD_PROXY, gst_timfusion_child_proxy_init);
                        GST_DEBUG_CATEGORY_INIT(gst_timfusion_debug, "timfusion", 0,
                                                "TIM infrared/visible fusion element"));
GST_ELEMENT_REGISTER_DEFINE(timfusion, "timfusion", GST_RANK_NONE, GST_TYPE_TIMFUSION);

GstAggregatorClass* gst_timfusion_parent_agg_class() { return GST_AGGREGATOR_CLASS(gst_timfusion_parent_class); }
GstVideoAggregatorClass* gst_timfusion_parent_vagg_class() {
  return GST_VIDEO_AGGREGATOR_CLASS(gst_timfusion_parent_class);
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
      if (running) gst_timfusion_request_model_swap(self);
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
      // READY-only, as documented: a change in PAUSED/PLAYING would be used by
      // the next model swap behind the application's back (issue 27), so it
      // is refused with a warning and the count in effect stays.
      GST_OBJECT_LOCK(self);
      const gboolean streaming = GST_STATE(self) >= GST_STATE_PAUSED;
      GST_OBJECT_UNLOCK(self);
      const int requested = g_value_get_int(value);
      std::lock_guard<std::mutex> lock(st->props_mu);
      if (streaming && requested != st->options.threads) {
        GST_ELEMENT_WARNING(self, CORE, STATE_CHANGE,
                            ("threads=%d ignored: threads can only be changed in the NULL or READY state", requested),
                            ("keeping threads=%d", st->options.threads));
        break;
      }
      st->options.threads = requested;
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
      if (running) gst_timfusion_apply_registration_live(self);
      break;
    }
    case PROP_CALIBRATION_FILE: {
      {
        std::lock_guard<std::mutex> lock(st->props_mu);
        st->calibration_file = str();
      }
      if (running) gst_timfusion_apply_registration_live(self);
      break;
    }
    case PROP_PARALLEL_FRAMES: st->parallel_frames = g_value_get_boolean(value); break;
    case PROP_TEMPORAL: st->temporal_on = g_value_get_boolean(value); break;
    case PROP_TEMPORAL_STRENGTH: st->temporal_strength = g_value_get_double(value); break;
    case PROP_AUTO_CALIBRATE: {
      {
        std::lock_guard<std::mutex> lock(st->props_mu);
        st->auto_calibrate = g_value_get_boolean(value);
      }
      // Switched on while running: collect from the next frame on.
      GST_OBJECT_LOCK(self);
      const gboolean streaming = GST_STATE(self) >= GST_STATE_PAUSED;
      GST_OBJECT_UNLOCK(self);
      if (streaming) gst_timfusion_autocal_arm(self);
      break;
    }
    case PROP_AUTO_CALIBRATE_SECONDS: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      st->auto_calibrate_seconds = g_value_get_double(value);
      break;
    }
    case PROP_AUTO_CALIBRATE_FRAMES: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      st->auto_calibrate_frames = g_value_get_int(value);
      break;
    }
    case PROP_AUTO_CALIBRATE_CHECKERBOARD: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      const gchar* v = g_value_get_string(value);
      st->auto_calibrate_checkerboard = v ? v : "";
      break;
    }
    case PROP_IR_RANGE: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      st->ir_range_mode = g_value_get_enum(value);
      break;
    }
    case PROP_IR_RANGE_MIN: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      st->ir_range_min = g_value_get_int(value);
      break;
    }
    case PROP_IR_RANGE_MAX: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      st->ir_range_max = g_value_get_int(value);
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
    case PROP_PARALLEL_FRAMES: g_value_set_boolean(value, st->parallel_frames); break;
    case PROP_TEMPORAL: g_value_set_boolean(value, st->temporal_on); break;
    case PROP_TEMPORAL_STRENGTH: g_value_set_double(value, st->temporal_strength); break;
    case PROP_AUTO_CALIBRATE: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_boolean(value, st->auto_calibrate);
      break;
    }
    case PROP_AUTO_CALIBRATE_SECONDS: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_double(value, st->auto_calibrate_seconds);
      break;
    }
    case PROP_AUTO_CALIBRATE_FRAMES: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_int(value, st->auto_calibrate_frames);
      break;
    }
    case PROP_AUTO_CALIBRATE_CHECKERBOARD: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_string(value, st->auto_calibrate_checkerboard.c_str());
      break;
    }
    case PROP_IR_RANGE: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_enum(value, st->ir_range_mode);
      break;
    }
    case PROP_IR_RANGE_MIN: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_int(value, st->ir_range_min);
      break;
    }
    case PROP_IR_RANGE_MAX: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      g_value_set_int(value, st->ir_range_max);
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
    case PROP_INFERENCE_THREADS: {
      auto e = st->current_engine();
      g_value_set_int(value, e ? e->threads_in_last_forward() : 0);
      break;
    }
    case PROP_FRAMES_IN_FLIGHT: {
      auto e = st->current_engine();
      g_value_set_int(value, e ? e->frames_in_flight_last() : 0);
      break;
    }
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

/* ------------------------------------------------------------------------ */
/* State changes                                                            */

static GstStateChangeReturn gst_timfusion_change_state(GstElement* element, GstStateChange transition) {
  GstTimFusion* self = GST_TIMFUSION(element);
  tfgst::State* st = self->st;
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!gst_timfusion_prepare_registration(self) || !gst_timfusion_prepare_model(self))
        return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      gst_timfusion_start_link_check(self);
      st->inputs_end = GST_CLOCK_TIME_NONE;
      st->said_black_ir = false;
      st->processed = st->dropped = 0;
      st->processing.forget_report();
      st->forget_past();
      st->ir_auto.reset();  // ir-range=auto starts from the first frame of the run
      gst_timfusion_autocal_arm(self);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY: gst_timfusion_autocal_stop(self); break;
    default: break;
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_timfusion_parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) gst_timfusion_stop_link_check(self);
    return ret;
  }
  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      gst_timfusion_stop_link_check(self);
      gst_timfusion_discard_in_flight(self);  // the streaming task has stopped
      st->forget_past();
      break;
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
  // Loader threads and the link check hold a reference: none is pending by now.
  gst_timfusion_stop_link_check(self);
  // Loader threads hold a reference: none is running by now.
  gst_timfusion_autocal_stop(self);
  gst_timfusion_discard_in_flight(self);
  self->st->forget_past();
  delete self->st;
  self->st = nullptr;
  G_OBJECT_CLASS(gst_timfusion_parent_class)->finalize(object);
}

// A sink pad from its template, of the template's pad GType (GstTimFusionPad).
static GstVideoAggregatorPad* add_sink_pad(GstTimFusion* self, const char* name) {
  GstPadTemplate* templ = gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(self), name);
  auto* pad = static_cast<GstVideoAggregatorPad*>(g_object_new(GST_PAD_TEMPLATE_GTYPE(templ), "name", name,
                                                               "direction", GST_PAD_SINK, "template", templ,
                                                               nullptr));
  gst_element_add_pad(GST_ELEMENT(self), GST_PAD(pad));
  gst_timfusion_wrap_chain(GST_PAD(pad));
  return pad;
}

/* GstChildProxy: the sink pads as children, so that gst-launch reaches their
 * properties (timfusion ir::max-last-buffer-repeat=...), as in compositor. */
static GObject* gst_timfusion_child_proxy_get_child_by_index(GstChildProxy* proxy, guint index) {
  GstElement* element = GST_ELEMENT(proxy);
  GST_OBJECT_LOCK(element);
  auto* obj = static_cast<GObject*>(g_list_nth_data(element->sinkpads, index));
  if (obj) gst_object_ref(obj);
  GST_OBJECT_UNLOCK(element);
  return obj;
}

static guint gst_timfusion_child_proxy_get_children_count(GstChildProxy* proxy) {
  GstElement* element = GST_ELEMENT(proxy);
  GST_OBJECT_LOCK(element);
  const guint n = element->numsinkpads;
  GST_OBJECT_UNLOCK(element);
  return n;
}

static void gst_timfusion_child_proxy_init(gpointer g_iface, gpointer) {
  auto* iface = static_cast<GstChildProxyInterface*>(g_iface);
  iface->get_child_by_index = gst_timfusion_child_proxy_get_child_by_index;
  iface->get_children_count = gst_timfusion_child_proxy_get_children_count;
}

static void gst_timfusion_init(GstTimFusion* self) {
  self->st = new tfgst::State();
  self->st->options.model = DEFAULT_MODEL;
  self->st->options.arch = DEFAULT_ARCH;
  self->st->options.device = DEFAULT_DEVICE;
  self->st->options.threads = DEFAULT_THREADS;
  self->st->parallel_frames = DEFAULT_PARALLEL_FRAMES;
  self->st->temporal_on = DEFAULT_TEMPORAL;
  self->st->temporal_strength = DEFAULT_TEMPORAL_STRENGTH;
  self->st->options.precision = DEFAULT_PRECISION;
  self->st->homography_text = DEFAULT_IR_HOMOGRAPHY;
  self->st->calibration_file = DEFAULT_CALIBRATION_FILE;
  self->st->ir_range_mode = DEFAULT_IR_RANGE;
  self->st->ir_range_min = DEFAULT_IR_RANGE_MIN;
  self->st->ir_range_max = DEFAULT_IR_RANGE_MAX;
  self->st->auto_calibrate = DEFAULT_AUTO_CALIBRATE;
  self->st->auto_calibrate_seconds = DEFAULT_AUTO_CALIBRATE_SECONDS;
  self->st->auto_calibrate_frames = DEFAULT_AUTO_CALIBRATE_FRAMES;
  self->st->auto_calibrate_checkerboard = DEFAULT_AUTO_CALIBRATE_CHECKERBOARD;
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
      "the current model stays). One load at a time: sets made while one runs replace each other, and the last "
      "one wins",
      timfusion::default_model_path().c_str());
  g_object_class_install_property(gobject_class, PROP_MODEL,
                                  g_param_spec_string("model", "Model file", model_blurb, DEFAULT_MODEL,
                                                      static_cast<GParamFlags>(rw_playing | dyn)));
  g_free(model_blurb);

  gchar* arch_blurb = g_strdup_printf(
      "Architecture of a weight file that has no timfusion.arch metadata: a built-in name (%s) or a JSON genotype "
      "file. Empty: read it from the file. Takes effect at the next NULL->READY (or model swap)",
      join_arch_names().c_str());
  g_object_class_install_property(gobject_class, PROP_ARCH,
                                  g_param_spec_string("arch", "Architecture", arch_blurb, DEFAULT_ARCH,
                                                      static_cast<GParamFlags>(rw_ready | dyn)));
  g_free(arch_blurb);

  g_object_class_install_property(
      gobject_class, PROP_DEVICE,
      g_param_spec_enum("device", "Device",
                        "Where the network runs. auto picks CUDA when usable, else the CPU; cuda fails the "
                        "NULL->READY state change when no GPU is usable. See actual-device for what is used",
                        GST_TYPE_TIMFUSION_DEVICE, static_cast<gint>(DEFAULT_DEVICE),
                        static_cast<GParamFlags>(rw_ready | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_THREADS,
      g_param_spec_int("threads", "Threads",
                       "CPU threads for this element's inference. 0 = the process's shared CPU: one fusion "
                       "worker per core for all timfusion elements of the process, each frame on one core, "
                       "frames of all elements taken earliest deadline first (many rigs in one process without "
                       "oversubscribing the cores); a frame needing more than 256 MiB of tensor memory is split "
                       "over every core instead. N > 0 = this element's own N threads: live pipelines split each "
                       "frame over them (LibTorch/OpenMP intra-op threads); non-live ones fuse min(N, 4) whole "
                       "frames at once on their own workers (see frames-in-flight); elements with their own "
                       "threads compete with each other for the cores. See inference-threads for the count in "
                       "effect. At most 64; changeable in NULL or READY only (a change while PAUSED or PLAYING "
                       "is refused with a warning)",
                       0, timfusion::kMaxThreads, DEFAULT_THREADS, static_cast<GParamFlags>(rw_ready | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_PARALLEL_FRAMES,
      g_param_spec_boolean("parallel-frames", "Parallel frames",
                           "Non-live CPU pipelines (threads=0 on more than one core, or threads > 1): fuse whole "
                           "frames in parallel on separate workers (throughput; up to min(threads or cores, 4) frames of extra latency and each frame in flight "
                           "holds its own memory; see frames-in-flight). FALSE: split each frame over the threads, "
                           "as live pipelines always do (lowest latency and memory). Takes effect at the next frame",
                           DEFAULT_PARALLEL_FRAMES, static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_TEMPORAL,
      g_param_spec_boolean("temporal", "Temporal stability",
                           "Filter the fused video over time where the scene stands still: camera noise that "
                           "changes every frame no longer makes static parts shimmer, while whatever either camera "
                           "sees move is fused from the current frame alone (a motion gate in units of each "
                           "camera's measured noise). Forgets the past at flushing seeks, caps changes, "
                           "discontinuities and model swaps. FALSE: every frame is fused on its own (stills, "
                           "frame-exact processing). Takes effect at the next frame",
                           DEFAULT_TEMPORAL, static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_TEMPORAL_STRENGTH,
      g_param_spec_double("temporal-strength", "Temporal strength",
                          "With temporal=TRUE: how much of the past a static pixel keeps, 0..0.95 (0 = off). "
                          "0.75 takes a quarter of each new frame there: the frame-to-frame noise of a static "
                          "scene drops to about a fifth; higher is smoother but slower to follow slow changes "
                          "below the cameras' noise. Takes effect at the next frame",
                          0.0, 0.95, DEFAULT_TEMPORAL_STRENGTH,
                          static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_PRECISION,
      g_param_spec_enum("precision", "Precision",
                        "Arithmetic of the network: fp32 everywhere, fp16 on CUDA only, bf16 on CUDA and on CPUs "
                        "with AVX512-BF16 (an unsupported choice fails NULL->READY)",
                        GST_TYPE_TIMFUSION_PRECISION, static_cast<gint>(DEFAULT_PRECISION),
                        static_cast<GParamFlags>(rw_ready | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_IR_HOMOGRAPHY,
      g_param_spec_string(
          "ir-homography", "IR homography",
          "3x3 homography, row-major, that maps IR pixel coordinates (x, y, 1) to visible pixel coordinates: 9 "
          "numbers \"a,b,c,d,e,f,g,h,i\" (a GstValueArray \"<a, b, ..., i>\" is accepted too). Empty = identity: "
          "the cameras are co-aligned and the IR frame is scaled to the visible size. It must be finite, "
          "invertible and must not mirror the image (else NULL->READY fails; set while running, a bad value is "
          "ignored with a warning and the property reads back the homography in use)",
          DEFAULT_IR_HOMOGRAPHY, static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_CALIBRATION_FILE,
      g_param_spec_string("calibration-file", "Calibration file",
                          "File with the IR homography (same meaning as ir-homography, which it overrides): JSON "
                          "{\"ir-homography\": [9 numbers]} or a key file line ir-homography=a;b;...;i. Read and "
                          "validated at NULL->READY (a missing or invalid file fails it) or when set while running",
                          DEFAULT_CALIBRATION_FILE, static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_AUTO_CALIBRATE,
      g_param_spec_boolean(
          "auto-calibrate", "Auto-calibrate",
          "Estimate the IR homography from the cameras' own frames: the first auto-calibrate-seconds of frame pairs "
          "after the pipeline starts (or after this is switched on while running) are registered on a background "
          "thread (timfusion-calibrate's method); the result replaces the active homography between two frames "
          "and is posted as an element message \"timfusion-calibration\" (success, ir-homography, correlation, "
          "distinctness, residual-px, spread-px, confidence, frames). A refusal (not enough common structure) is "
          "posted as a warning and the current homography stays",
          DEFAULT_AUTO_CALIBRATE, static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_AUTO_CALIBRATE_SECONDS,
      g_param_spec_double("auto-calibrate-seconds", "Auto-calibrate seconds",
                          "Stream time over which auto-calibrate samples its frame pairs",
                          0, 600, DEFAULT_AUTO_CALIBRATE_SECONDS,
                          static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_AUTO_CALIBRATE_FRAMES,
      g_param_spec_int("auto-calibrate-frames", "Auto-calibrate frames",
                       "Frame pairs auto-calibrate samples, evenly over auto-calibrate-seconds (more pairs: a "
                       "consensus that tolerates a bad frame, but a longer background estimate)",
                       1, 30, DEFAULT_AUTO_CALIBRATE_FRAMES,
                       static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_AUTO_CALIBRATE_CHECKERBOARD,
      g_param_spec_string("auto-calibrate-checkerboard", "Auto-calibrate checkerboard",
                          "Calibrate on a (heated) checkerboard held in view instead of the scene's structure: its "
                          "inner corners as COLSxROWS, e.g. 9x6 for a board of 10x7 squares (timfusion-calibrate "
                          "--checkerboard); empty: the scene's structure. A malformed value is a warning when "
                          "auto-calibrate starts, and no calibration runs",
                          DEFAULT_AUTO_CALIBRATE_CHECKERBOARD,
                          static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_IR_RANGE,
      g_param_spec_enum("ir-range", "IR range",
                        "How 16-bit (GRAY16_LE) IR is mapped onto the network's input: full = 0..65535 as it comes "
                        "(a camera reporting 7000-8000 gives little contrast); auto = stretched between the frame's "
                        "0.5 % and 99.5 % percentiles, smoothed over time (each frame moves it 5 % of the way, so "
                        "it does not pump); fixed = stretched between ir-range-min and ir-range-max. 8-bit IR is "
                        "not changed. Takes effect at the next frame",
                        GST_TYPE_TIMFUSION_IR_RANGE, DEFAULT_IR_RANGE,
                        static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_IR_RANGE_MIN,
      g_param_spec_int("ir-range-min", "IR range minimum",
                       "ir-range=fixed: the 16-bit IR value shown black (below it: black too)", 0, 65535,
                       DEFAULT_IR_RANGE_MIN, static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_IR_RANGE_MAX,
      g_param_spec_int("ir-range-max", "IR range maximum",
                       "ir-range=fixed: the 16-bit IR value shown white (above it: white too); a maximum not above "
                       "ir-range-min maps everything from ir-range-min up to white",
                       0, 65535, DEFAULT_IR_RANGE_MAX,
                       static_cast<GParamFlags>(rw_playing | G_PARAM_STATIC_STRINGS)));
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
                          "Path of the weight file in use (absolute; a shipped model's name is resolved to its "
                          "file; changes when a model swap completes); empty before the first load",
                          "", ro));
  g_object_class_install_property(
      gobject_class, PROP_INFERENCE_THREADS,
      g_param_spec_int("inference-threads", "Inference threads",
                       "Intra-op threads LibTorch used for the last frame's network pass: 1 on the shared CPU "
                       "(threads=0; the core count for a frame split over every core), threads in a live "
                       "pipeline with threads > 0, threads / frames-in-flight when frames are fused in "
                       "parallel; 0 before the first frame",
                       0, G_MAXINT, 0, ro));
  g_object_class_install_property(
      gobject_class, PROP_FRAMES_IN_FLIGHT,
      g_param_spec_int("frames-in-flight", "Frames in flight",
                       "Frames fused at the same time when the last frame was: in a non-live CPU pipeline with "
                       "parallel-frames and threads > 1 (or 0 on more than one core), min(threads or cores, 4) "
                       "whole frames on separate workers (more "
                       "throughput, up to that many frames of extra latency); else 1 (live, one thread, "
                       "parallel-frames=false, a GPU, a scaled output, or a model whose frame needs more than "
                       "256 MiB of tensor memory); 0 before the first frame",
                       0, G_MAXINT, 0, ro));

  gst_element_class_set_static_metadata(
      element_class, "TIM infrared/visible fusion", "Filter/Editor/Video/Compositor",
      "Fuses a thermal camera (sink pad \"ir\": GRAY8, GRAY16_LE, RGB, BGR) with a visible camera (sink pad \"vis\") "
      "into one video with a TIM fusion network. The output has the visible pad's format, size and framerate; IR "
      "frames are warped onto the visible grid (ir-homography). Both sink pads repeat their last frame after EOS "
      "until the other ends; before the first IR frame the visible frame is fused with black IR",
      "timfusion developers");
  gst_element_class_add_static_pad_template_with_gtype(element_class, &src_template, GST_TYPE_AGGREGATOR_PAD);
  gst_element_class_add_static_pad_template_with_gtype(element_class, &vis_template, GST_TYPE_TIMFUSION_PAD);
  gst_element_class_add_static_pad_template_with_gtype(element_class, &ir_template, GST_TYPE_TIMFUSION_PAD);

  element_class->change_state = GST_DEBUG_FUNCPTR(gst_timfusion_change_state);
  agg_class->sink_query = GST_DEBUG_FUNCPTR(gst_timfusion_sink_query);
  agg_class->update_src_caps = GST_DEBUG_FUNCPTR(gst_timfusion_update_src_caps);
  agg_class->fixate_src_caps = GST_DEBUG_FUNCPTR(gst_timfusion_fixate_src_caps);
  agg_class->negotiated_src_caps = GST_DEBUG_FUNCPTR(gst_timfusion_negotiated_src_caps);
  agg_class->aggregate = GST_DEBUG_FUNCPTR(gst_timfusion_aggregate);
  agg_class->flush = GST_DEBUG_FUNCPTR(gst_timfusion_flush);
  agg_class->finish_buffer = GST_DEBUG_FUNCPTR(gst_timfusion_finish_buffer);
  vagg_class->create_output_buffer = GST_DEBUG_FUNCPTR(gst_timfusion_create_output_buffer);
  vagg_class->aggregate_frames = GST_DEBUG_FUNCPTR(gst_timfusion_aggregate_frames);

  gst_type_mark_as_plugin_api(GST_TYPE_TIMFUSION_PAD, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_TIMFUSION_DEVICE, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_TIMFUSION_PRECISION, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_TIMFUSION_IR_RANGE, static_cast<GstPluginAPIFlags>(0));
}
