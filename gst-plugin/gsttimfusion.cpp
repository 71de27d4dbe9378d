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

#include "gsttimfusion_pad.h"
#include "gsttimfusion_private.h"
#include "timfusion_enums.h"
#include "timfusion_formats.h"

GST_DEBUG_CATEGORY(gst_timfusion_debug);

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
  gst_timfusion_init_properties(self);  // the property defaults
  self->vis_pad = add_sink_pad(self, "vis");
  self->ir_pad = add_sink_pad(self, "ir");
}

/* ------------------------------------------------------------------------ */
/* Class (the properties: gsttimfusion_properties.cpp)                      */

// The element's description and its pad templates (the sink pads are GstTimFusionPad).
static void add_metadata_and_pad_templates(GstElementClass* element_class) {
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
}

// GObject's finalize, the element's state changes, the (video) aggregator's methods.
static void set_vfuncs(GstTimFusionClass* klass) {
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstAggregatorClass* agg_class = GST_AGGREGATOR_CLASS(klass);
  GstVideoAggregatorClass* vagg_class = GST_VIDEO_AGGREGATOR_CLASS(klass);
  G_OBJECT_CLASS(klass)->finalize = gst_timfusion_finalize;
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
}

// Types the element's documentation links to (its pad class and property enums).
static void mark_plugin_api_types() {
  gst_type_mark_as_plugin_api(GST_TYPE_TIMFUSION_PAD, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_TIMFUSION_DEVICE, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_TIMFUSION_PRECISION, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_TIMFUSION_IR_RANGE, static_cast<GstPluginAPIFlags>(0));
}

static void gst_timfusion_class_init(GstTimFusionClass* klass) {
  gst_timfusion_install_properties(G_OBJECT_CLASS(klass));  // gsttimfusion_properties.cpp
  add_metadata_and_pad_templates(GST_ELEMENT_CLASS(klass));
  set_vfuncs(klass);
  mark_plugin_api_types();
}
