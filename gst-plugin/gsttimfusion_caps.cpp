// timfusion GStreamer element: caps. The sink pads' caps queries and the
// output caps (the visible pad's format, size and framerate), with the
// model warm-up at the negotiated size.
#include <exception>

#include "gsttimfusion_private.h"

// Sink caps: ir takes its template (any size/rate: it is warped onto the
// visible grid); vis also has to suit downstream's format, since the output has
// it. Downstream's size comes first (fusion at the output size), any other size
// after it: the element then scales the fused frame, as compositor does.
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
    GstCaps* any_size = gst_caps_copy(down);
    for (guint i = 0; i < gst_caps_get_size(any_size); ++i)
      gst_structure_remove_fields(gst_caps_get_structure(any_size, i), "width", "height", "pixel-aspect-ratio",
                                  nullptr);
    result = gst_caps_merge(gst_caps_intersect(down, templ), gst_caps_intersect(any_size, templ));
    gst_caps_unref(any_size);
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

gboolean gst_timfusion_sink_query(GstAggregator* agg, GstAggregatorPad* bpad, GstQuery* query) {
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
                             ": the output has the visible pad's format, and downstream + this pad "
                             "accept only %" GST_PTR_FORMAT " (put videoconvert before the vis pad)",
                             caps, allowed);
        else
          GST_WARNING_OBJECT(bpad, "refusing %" GST_PTR_FORMAT ": the ir pad accepts only %" GST_PTR_FORMAT, caps,
                             allowed);
      }
      gst_caps_unref(allowed);
      gst_query_set_accept_caps_result(query, ok);
      return TRUE;
    }
    default: return gst_timfusion_parent_agg_class()->sink_query(agg, bpad, query);
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
GstFlowReturn gst_timfusion_update_src_caps(GstAggregator* agg, GstCaps* downstream_caps, GstCaps** ret) {
  GstTimFusion* self = GST_TIMFUSION(agg);
  *ret = nullptr;
  // Frames still on workers were made for the current caps: out before new ones.
  if (const GstFlowReturn drained = gst_timfusion_drain_in_flight(self); drained != GST_FLOW_OK) return drained;
  GstVideoInfo vis = pad_info(self, self->vis_pad);
  GstVideoInfo ir = pad_info(self, self->ir_pad);
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
    // Downstream fixes another size: output that size (nearest to the visible
    // one), the fused frame scaled to it (gsttimfusion_frames.cpp).
    GstCaps* any_size = gst_caps_copy(caps);
    gst_structure_remove_fields(gst_caps_get_structure(any_size, 0), "width", "height", "pixel-aspect-ratio", nullptr);
    GstCaps* scaled = gst_caps_intersect(any_size, downstream_caps);
    gst_caps_unref(any_size);
    if (!gst_caps_is_empty(scaled)) {
      scaled = gst_caps_truncate(scaled);
      GstStructure* st = gst_caps_get_structure(scaled, 0);
      gst_structure_fixate_field_nearest_int(st, "width", GST_VIDEO_INFO_WIDTH(&vis));
      gst_structure_fixate_field_nearest_int(st, "height", GST_VIDEO_INFO_HEIGHT(&vis));
      gst_structure_fixate_field_nearest_fraction(st, "pixel-aspect-ratio", 1, 1);
      scaled = gst_caps_fixate(scaled);
      GST_INFO_OBJECT(self, "downstream fixes another size: fusing at %dx%d, output %" GST_PTR_FORMAT,
                      GST_VIDEO_INFO_WIDTH(&vis), GST_VIDEO_INFO_HEIGHT(&vis), scaled);
      gst_caps_unref(result);
      result = scaled;
    } else {
      gst_caps_unref(scaled);
    }
  }
  if (gst_caps_is_empty(result)) {
    gchar* want = gst_caps_to_string(caps);
    gchar* down = gst_caps_to_string(downstream_caps);
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                      ("Downstream does not accept the fused video (%s): the output has the visible pad's format "
                       "and framerate (any size: it is scaled); add videoconvert/videorate after timfusion",
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

GstCaps* gst_timfusion_fixate_src_caps(GstAggregator* agg, GstCaps* caps) { return gst_caps_fixate(caps); }

gboolean gst_timfusion_negotiated_src_caps(GstAggregator* agg, GstCaps* caps) {
  GstTimFusion* self = GST_TIMFUSION(agg);
  tfgst::State* st = self->st;
  if (!gst_timfusion_parent_agg_class()->negotiated_src_caps(agg, caps)) return FALSE;
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, caps)) return FALSE;
  st->frame_duration = GST_VIDEO_INFO_FPS_N(&info) > 0
                           ? gst_util_uint64_scale_int(GST_SECOND, GST_VIDEO_INFO_FPS_D(&info), GST_VIDEO_INFO_FPS_N(&info))
                           : 0;
  st->forget_past();
  // Warm-up at the fusion size (the visible frames'; the output may be scaled), before the first frame's deadline.
  const GstVideoInfo vis = pad_info(self, self->vis_pad);
  const cv::Size fusion_size = vis.finfo && GST_VIDEO_INFO_WIDTH(&vis) > 0
                                   ? cv::Size(GST_VIDEO_INFO_WIDTH(&vis), GST_VIDEO_INFO_HEIGHT(&vis))
                                   : cv::Size(GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info));
  if (auto engine = st->current_engine()) {
    try {
      const double ms = engine->warmup(fusion_size);
      if (ms >= 0) {
        GST_INFO_OBJECT(self, "warm-up at %dx%d took %.1f ms", fusion_size.width, fusion_size.height, ms);
        if (!st->processing.has_samples()) st->processing.add(ms);
      }
    } catch (const std::exception& e) {
      GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Fusion model warm-up failed: %s", e.what()), (nullptr));
      return FALSE;
    }
  }
  st->processing.forget_report();
  gst_timfusion_report_latency(self);
  return TRUE;
}
