// timfusion GStreamer element: its properties. The param specs (name, nick,
// blurb, range, default, flags: what gst-inspect-1.0 shows), the instance's
// defaults, and set_property/get_property.
#include <string>

#include "gsttimfusion_private.h"
#include "timfusion/arch.h"
#include "timfusion/model_file.h"
#include "timfusion/thread_limits.h"
#include "timfusion_enums.h"

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

// The param specs' flags.
namespace {

// Blurbs that are built at run time are copied by GLib (no STATIC_BLURB).
const auto dyn = static_cast<GParamFlags>(G_PARAM_STATIC_NAME | G_PARAM_STATIC_NICK);
const auto rw_ready = static_cast<GParamFlags>(G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY);
const auto rw_playing = static_cast<GParamFlags>(G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING);
const auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

}  // namespace

static std::string string_value(const GValue* value) {
  const gchar* s = g_value_get_string(value);
  return std::string(s ? s : "");
}

// Whether a change of a READY-only property arrives while PAUSED or PLAYING:
// then it is refused with a warning naming it (the value in effect stays).
static bool refused_while_streaming(GstTimFusion* self, const char* property, const GValue* value, bool changes) {
  GST_OBJECT_LOCK(self);
  const gboolean streaming = GST_STATE(self) >= GST_STATE_PAUSED;
  GST_OBJECT_UNLOCK(self);
  if (!streaming || !changes) return false;
  // The value as gst-launch-1.0 spells it (an enum's nick, a number).
  gchar* text = G_VALUE_HOLDS_ENUM(value) ? g_strdup(g_enum_get_value(G_ENUM_CLASS(g_type_class_peek(G_VALUE_TYPE(value))),
                                                                      g_value_get_enum(value))->value_nick)
                                          : gst_value_serialize(value);
  GST_ELEMENT_WARNING(self, CORE, STATE_CHANGE,
                      ("%s=%s ignored: %s can only be changed in the NULL or READY state", property, text, property),
                      ("keeping the %s in effect", property));
  g_free(text);
  return true;
}

// set_property: the model and how it runs. running: READY or above (a model set then is swapped in live).
static bool set_engine_property(GstTimFusion* self, guint prop_id, const GValue* value, gboolean running) {
  tfgst::State* st = self->st;
  switch (prop_id) {
    case PROP_MODEL: {
      {
        std::lock_guard<std::mutex> lock(st->props_mu);
        st->options.model = string_value(value);
      }
      if (running) gst_timfusion_request_model_swap(self);
      break;
    }
    case PROP_ARCH: {
      std::lock_guard<std::mutex> lock(st->props_mu);
      st->options.arch = string_value(value);
      break;
    }
    // device, threads and precision are READY-only, as documented: a change in
    // PAUSED/PLAYING would be used by the next model swap behind the
    // application's back (issue 27), so it is refused with a warning and the
    // value in effect stays.
    case PROP_DEVICE: {
      const auto requested = static_cast<timfusion::Device>(g_value_get_enum(value));
      std::lock_guard<std::mutex> lock(st->props_mu);
      if (refused_while_streaming(self, "device", value, requested != st->options.device)) break;
      st->options.device = requested;
      break;
    }
    case PROP_THREADS: {
      const int requested = g_value_get_int(value);
      std::lock_guard<std::mutex> lock(st->props_mu);
      if (refused_while_streaming(self, "threads", value, requested != st->options.threads)) break;
      st->options.threads = requested;
      break;
    }
    case PROP_PRECISION: {
      const auto requested = static_cast<timfusion::Precision>(g_value_get_enum(value));
      std::lock_guard<std::mutex> lock(st->props_mu);
      if (refused_while_streaming(self, "precision", value, requested != st->options.precision)) break;
      st->options.precision = requested;
      break;
    }
    case PROP_PARALLEL_FRAMES: st->parallel_frames = g_value_get_boolean(value); break;
    default: return false;
  }
  return true;
}

// set_property: the IR->visible homography, given or auto-calibrated.
static bool set_registration_property(GstTimFusion* self, guint prop_id, const GValue* value, gboolean running) {
  tfgst::State* st = self->st;
  switch (prop_id) {
    case PROP_IR_HOMOGRAPHY: {
      {
        std::lock_guard<std::mutex> lock(st->props_mu);
        st->homography_text = string_value(value);
      }
      if (running) gst_timfusion_apply_registration_live(self);
      break;
    }
    case PROP_CALIBRATION_FILE: {
      {
        std::lock_guard<std::mutex> lock(st->props_mu);
        st->calibration_file = string_value(value);
      }
      if (running) gst_timfusion_apply_registration_live(self);
      break;
    }
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
    default: return false;
  }
  return true;
}

// set_property: per-frame processing (temporal filter, ir-range), read by the streaming thread.
static bool set_frame_property(GstTimFusion* self, guint prop_id, const GValue* value) {
  tfgst::State* st = self->st;
  switch (prop_id) {
    case PROP_TEMPORAL: st->temporal_on = g_value_get_boolean(value); break;
    case PROP_TEMPORAL_STRENGTH: st->temporal_strength = g_value_get_double(value); break;
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
    default: return false;
  }
  return true;
}

static void gst_timfusion_set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  GstTimFusion* self = GST_TIMFUSION(object);
  GST_OBJECT_LOCK(self);
  const gboolean running = GST_STATE(self) >= GST_STATE_READY;
  GST_OBJECT_UNLOCK(self);
  if (set_engine_property(self, prop_id, value, running) || set_registration_property(self, prop_id, value, running) ||
      set_frame_property(self, prop_id, value))
    return;
  G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
}

// get_property: the model and how it runs.
static bool get_engine_property(GstTimFusion* self, guint prop_id, GValue* value) {
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
    case PROP_PARALLEL_FRAMES: g_value_set_boolean(value, st->parallel_frames); break;
    default: return false;
  }
  return true;
}

// get_property: the IR->visible homography, given or auto-calibrated.
static bool get_registration_property(GstTimFusion* self, guint prop_id, GValue* value) {
  tfgst::State* st = self->st;
  switch (prop_id) {
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
    default: return false;
  }
  return true;
}

// get_property: per-frame processing (temporal filter, ir-range).
static bool get_frame_property(GstTimFusion* self, guint prop_id, GValue* value) {
  tfgst::State* st = self->st;
  switch (prop_id) {
    case PROP_TEMPORAL: g_value_set_boolean(value, st->temporal_on); break;
    case PROP_TEMPORAL_STRENGTH: g_value_set_double(value, st->temporal_strength); break;
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
    default: return false;
  }
  return true;
}

// get_property: the read-only status properties.
static bool get_status_property(GstTimFusion* self, guint prop_id, GValue* value) {
  tfgst::State* st = self->st;
  switch (prop_id) {
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
    default: return false;
  }
  return true;
}

static void gst_timfusion_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstTimFusion* self = GST_TIMFUSION(object);
  if (get_engine_property(self, prop_id, value) || get_registration_property(self, prop_id, value) ||
      get_frame_property(self, prop_id, value) || get_status_property(self, prop_id, value))
    return;
  G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
}

static std::string join_arch_names() {
  std::string s;
  for (const auto& n : timfusion::ArchSpec::names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// The weight file and its architecture (blurbs built at run time).
static void install_model_file_properties(GObjectClass* gobject_class) {
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
}

// How and where the network runs.
static void install_engine_properties(GObjectClass* gobject_class) {
  g_object_class_install_property(
      gobject_class, PROP_DEVICE,
      g_param_spec_enum("device", "Device",
                        "Where the network runs. auto picks CUDA when usable, else the CPU; cuda fails the "
                        "NULL->READY state change when no GPU is usable. See actual-device for what is used. Changeable "
                        "in NULL or READY only (a change while PAUSED or PLAYING is refused with a warning)",
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
      gobject_class, PROP_PRECISION,
      g_param_spec_enum("precision", "Precision",
                        "Arithmetic of the network: fp32 everywhere, fp16 on CUDA only, bf16 on CUDA and on CPUs "
                        "with AVX512-BF16 (an unsupported choice fails NULL->READY). Changeable in NULL or READY only "
                        "(a change while PAUSED or PLAYING is refused with a warning)",
                        GST_TYPE_TIMFUSION_PRECISION, static_cast<gint>(DEFAULT_PRECISION),
                        static_cast<GParamFlags>(rw_ready | G_PARAM_STATIC_STRINGS)));
}

// Temporal stability of the fused video.
static void install_temporal_properties(GObjectClass* gobject_class) {
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
}

// The IR->visible homography, given.
static void install_registration_properties(GObjectClass* gobject_class) {
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
}

// The IR->visible homography, estimated from the frames.
static void install_auto_calibrate_properties(GObjectClass* gobject_class) {
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
}

// 16-bit IR onto the network's input.
static void install_ir_range_properties(GObjectClass* gobject_class) {
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
}

// Read-only: what the element is doing.
static void install_status_properties(GObjectClass* gobject_class) {
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
}

void gst_timfusion_install_properties(GObjectClass* gobject_class) {
  gobject_class->set_property = gst_timfusion_set_property;
  gobject_class->get_property = gst_timfusion_get_property;
  install_model_file_properties(gobject_class);
  install_engine_properties(gobject_class);
  install_temporal_properties(gobject_class);
  install_registration_properties(gobject_class);
  install_auto_calibrate_properties(gobject_class);
  install_ir_range_properties(gobject_class);
  install_status_properties(gobject_class);
}

void gst_timfusion_init_properties(GstTimFusion* self) {
  tfgst::State* st = self->st;
  st->options.model = DEFAULT_MODEL;
  st->options.arch = DEFAULT_ARCH;
  st->options.device = DEFAULT_DEVICE;
  st->options.threads = DEFAULT_THREADS;
  st->parallel_frames = DEFAULT_PARALLEL_FRAMES;
  st->temporal_on = DEFAULT_TEMPORAL;
  st->temporal_strength = DEFAULT_TEMPORAL_STRENGTH;
  st->options.precision = DEFAULT_PRECISION;
  st->homography_text = DEFAULT_IR_HOMOGRAPHY;
  st->calibration_file = DEFAULT_CALIBRATION_FILE;
  st->ir_range_mode = DEFAULT_IR_RANGE;
  st->ir_range_min = DEFAULT_IR_RANGE_MIN;
  st->ir_range_max = DEFAULT_IR_RANGE_MAX;
  st->auto_calibrate = DEFAULT_AUTO_CALIBRATE;
  st->auto_calibrate_seconds = DEFAULT_AUTO_CALIBRATE_SECONDS;
  st->auto_calibrate_frames = DEFAULT_AUTO_CALIBRATE_FRAMES;
  st->auto_calibrate_checkerboard = DEFAULT_AUTO_CALIBRATE_CHECKERBOARD;
}
