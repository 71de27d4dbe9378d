// timfusion GStreamer element: a sink pad left unlinked.
//
// GstAggregator waits for data on every sink pad before it outputs in a
// non-live pipeline, so an unlinked "ir" or "vis" would hang the pipeline in
// PREROLLING without a word. Linking may legitimately happen after
// READY->PAUSED (decodebin, rtspsrc and other sometimes-pads), so the check
// runs UNLINKED_PAD_TIMEOUT after READY->PAUSED, on a clock thread: a pad
// still unlinked then is an element error, or a warning when output flows
// anyway (live: the aggregator times out and fuses with black IR).
#include <string>

#include "gsttimfusion_private.h"

static gboolean check_links(GstClock*, GstClockTime, GstClockID, gpointer user_data) {
  GstTimFusion* self = GST_TIMFUSION(user_data);
  std::string unlinked;
  for (GstVideoAggregatorPad* pad : {self->vis_pad, self->ir_pad})
    if (!gst_pad_is_linked(GST_PAD(pad)))
      unlinked += std::string(unlinked.empty() ? "" : " and ") + "\"" + GST_PAD_NAME(pad) + "\"";
  if (unlinked.empty()) return TRUE;
  const char* plural = unlinked.find(" and ") != std::string::npos ? "s" : "";
  // Written by the streaming thread: a relaxed read is enough to tell "some output" from "none".
  const guint64 processed = __atomic_load_n(&self->st->processed, __ATOMIC_RELAXED);
  if (processed == 0)
    GST_ELEMENT_ERROR(self, CORE, PAD,
                      ("timfusion's sink pad%s %s %s not linked: link a source to each of \"ir\" and \"vis\" "
                       "(e.g. ... ! f.ir and ... ! f.vis for timfusion name=f)",
                       plural, unlinked.c_str(), *plural ? "are" : "is"),
                      ("still unlinked %u s after READY->PAUSED; the element waits for data on both pads",
                       static_cast<unsigned>(UNLINKED_PAD_TIMEOUT / GST_SECOND)));
  else
    GST_ELEMENT_WARNING(self, CORE, PAD,
                        ("timfusion's sink pad%s %s %s not linked: output continues without it", plural,
                         unlinked.c_str(), *plural ? "are" : "is"),
                        ("still unlinked %u s after READY->PAUSED",
                         static_cast<unsigned>(UNLINKED_PAD_TIMEOUT / GST_SECOND)));
  return TRUE;
}

void gst_timfusion_start_link_check(GstTimFusion* self) {
  gst_timfusion_stop_link_check(self);
  GstClock* clock = gst_system_clock_obtain();
  GstClockID id = gst_clock_new_single_shot_id(clock, gst_clock_get_time(clock) + UNLINKED_PAD_TIMEOUT);
  gst_object_unref(clock);
  if (gst_clock_id_wait_async(id, check_links, gst_object_ref(self), gst_object_unref) != GST_CLOCK_OK) {
    gst_clock_id_unref(id);
    return;
  }
  std::lock_guard<std::mutex> lock(self->st->link_check_mu);
  self->st->link_check = id;
}

void gst_timfusion_stop_link_check(GstTimFusion* self) {
  GstClockID id;
  {
    std::lock_guard<std::mutex> lock(self->st->link_check_mu);
    id = self->st->link_check;
    self->st->link_check = nullptr;
  }
  if (!id) return;
  gst_clock_id_unschedule(id);
  gst_clock_id_unref(id);
}
