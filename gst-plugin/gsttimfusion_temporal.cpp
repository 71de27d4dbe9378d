// timfusion GStreamer element: temporal stability (the `temporal` and
// `temporal-strength` properties). The maths is core's TemporalFilter; here:
// which luma it sees, when it forgets the past, and its settings.
#include "gsttimfusion_private.h"

namespace {

// The filter with the properties' current settings (rebuilt when they changed).
timfusion::TemporalFilter& filter_for_settings(tfgst::State* st) {
  const double strength = st->temporal_strength.load();
  if (st->temporal.options().strength != strength) {
    timfusion::TemporalFilterOptions options;
    options.strength = strength;  // range-checked by the param spec
    st->temporal = timfusion::TemporalFilter(options);
  }
  return st->temporal;
}

}  // namespace

void gst_timfusion_temporal_apply(GstTimFusion* self, const cv::Mat& ir_luma, const cv::Mat& vis_plane,
                                  timfusion::ChannelOrder order, cv::Mat& fused_plane, uint64_t engine_generation,
                                  bool discont) {
  tfgst::State* st = self->st;
  if (!st->temporal_on.load()) {
    st->temporal.reset();  // switched back on later: no stale past
    return;
  }
  timfusion::TemporalFilter& filter = filter_for_settings(st);
  // A new model fuses differently; a discontinuity breaks the timeline.
  if (engine_generation != st->temporal_generation || discont) {
    filter.reset();
    st->temporal_generation = engine_generation;
  }
  const cv::Mat* vis_luma = &vis_plane;
  if (vis_plane.channels() > 1) {
    timfusion::luma_of(vis_plane, order, st->temporal_vis_luma);
    vis_luma = &st->temporal_vis_luma;
  }
  filter.apply(ir_luma, *vis_luma, fused_plane);
}
