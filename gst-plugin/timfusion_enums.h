// timfusion GStreamer element: GEnum types of the device, precision and ir-range properties.
#pragma once

#include <glib-object.h>

#include "timfusion/fuser.h"

G_BEGIN_DECLS

#define GST_TYPE_TIMFUSION_DEVICE (gst_timfusion_device_get_type())
GType gst_timfusion_device_get_type(void);

#define GST_TYPE_TIMFUSION_PRECISION (gst_timfusion_precision_get_type())
GType gst_timfusion_precision_get_type(void);

// How 16-bit IR is mapped onto the network's input (timfusion/ir_range.h).
typedef enum {
  GST_TIMFUSION_IR_RANGE_FULL = 0,   // 0..65535 as it comes
  GST_TIMFUSION_IR_RANGE_AUTO = 1,   // robust percentiles, smoothed over time
  GST_TIMFUSION_IR_RANGE_FIXED = 2,  // ir-range-min..ir-range-max
} GstTimFusionIrRange;

#define GST_TYPE_TIMFUSION_IR_RANGE (gst_timfusion_ir_range_get_type())
GType gst_timfusion_ir_range_get_type(void);

G_END_DECLS
