// timfusion GStreamer element: GEnum types of the device and precision properties.
#pragma once

#include <glib-object.h>

#include "timfusion/fuser.h"

G_BEGIN_DECLS

#define GST_TYPE_TIMFUSION_DEVICE (gst_timfusion_device_get_type())
GType gst_timfusion_device_get_type(void);

#define GST_TYPE_TIMFUSION_PRECISION (gst_timfusion_precision_get_type())
GType gst_timfusion_precision_get_type(void);

G_END_DECLS
