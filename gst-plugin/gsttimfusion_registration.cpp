// timfusion GStreamer element: the IR->visible registration. The
// ir-homography / calibration-file properties become the homography the
// frames use: at NULL->READY (an invalid one fails it), and at once when set
// while READY or above (an invalid one is ignored with a warning, and the
// properties read back the values in use, not the rejected ones).
#include <exception>

#include "gsttimfusion_private.h"

namespace {

struct RegistrationProps {
  std::string text;  // ir-homography
  std::string file;  // calibration-file (overrides text)
};

RegistrationProps registration_props(tfgst::State* st) {
  std::lock_guard<std::mutex> lock(st->props_mu);
  return {st->homography_text, st->calibration_file};
}

// Makes what the properties ask for the active homography. Throws
// timfusion::Error (and then the active one stays).
void activate(tfgst::State* st, const RegistrationProps& p) {
  timfusion::Homography h;
  if (!p.file.empty())
    h = timfusion::Homography::load(p.file);
  else if (!p.text.empty())
    h = timfusion::Homography::parse(p.text);
  {
    std::lock_guard<std::mutex> lock(st->reg_mu);
    st->homography = h;
    ++st->reg_generation;
  }
  std::lock_guard<std::mutex> lock(st->props_mu);
  st->active_homography_text = p.text;
  st->active_calibration_file = p.file;
}

// A rejected value is not kept in the property: reading ir-homography back
// used to return the last rejected value, not the one in use (issue 27).
void restore_active_props(tfgst::State* st) {
  std::lock_guard<std::mutex> lock(st->props_mu);
  st->homography_text = st->active_homography_text;
  st->calibration_file = st->active_calibration_file;
}

}  // namespace

gboolean gst_timfusion_prepare_registration(GstTimFusion* self) {
  const RegistrationProps p = registration_props(self->st);
  try {
    activate(self->st, p);
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid IR registration: %s", e.what()),
                      ("ir-homography=\"%s\" calibration-file=\"%s\"", p.text.c_str(), p.file.c_str()));
    return FALSE;
  }
  if (!p.file.empty() && !p.text.empty())
    GST_INFO_OBJECT(self, "calibration-file %s overrides ir-homography", p.file.c_str());
  return TRUE;
}

void gst_timfusion_apply_registration_live(GstTimFusion* self) {
  try {
    activate(self->st, registration_props(self->st));
  } catch (const std::exception& e) {
    restore_active_props(self->st);
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("Ignoring the new IR registration: %s", e.what()),
                        ("keeping the previous homography (ir-homography and calibration-file read back the "
                         "values in use)"));
  }
}
