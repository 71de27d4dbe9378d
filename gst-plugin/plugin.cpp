// timfusion: GStreamer plugin registration (element "timfusion").
// GST_PLUGIN_DEFINE records PACKAGE as the plugin's source module; the version
// is the meson project version (timfusion/version.h), the licence LGPL (COPYING/LICENSE).
#define PACKAGE "timfusion"
#include <gst/gst.h>

#include "gsttimfusion.h"
#include "timfusion/version.h"

static gboolean plugin_init(GstPlugin* plugin) { return GST_ELEMENT_REGISTER(timfusion, plugin); }

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, timfusion,
                  "Real-time infrared + visible image fusion with TIM networks", plugin_init, TIMFUSION_VERSION,
                  "LGPL", "timfusion", TIMFUSION_ORIGIN)
