#include "timfusion_enums.h"

// The enum values are the core's timfusion::Device / timfusion::Precision.
GType gst_timfusion_device_get_type(void) {
  static gsize type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(timfusion::Device::Auto), "CUDA when this build and machine have a usable GPU, else CPU",
       "auto"},
      {static_cast<gint>(timfusion::Device::Cpu), "CPU", "cpu"},
      {static_cast<gint>(timfusion::Device::Cuda), "CUDA GPU (fails if none is usable)", "cuda"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstTimFusionDevice", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

GType gst_timfusion_precision_get_type(void) {
  static gsize type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(timfusion::Precision::Fp32), "32-bit float", "fp32"},
      {static_cast<gint>(timfusion::Precision::Fp16), "16-bit float (CUDA only)", "fp16"},
      {static_cast<gint>(timfusion::Precision::Bf16), "bfloat16 (CUDA, or a CPU with AVX512-BF16)", "bf16"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstTimFusionPrecision", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

GType gst_timfusion_ir_range_get_type(void) {
  static gsize type = 0;
  static const GEnumValue values[] = {
      {GST_TIMFUSION_IR_RANGE_FULL, "16-bit IR scaled over 0..65535", "full"},
      {GST_TIMFUSION_IR_RANGE_AUTO,
       "16-bit IR stretched between its 0.5 % and 99.5 % percentiles, smoothed over time", "auto"},
      {GST_TIMFUSION_IR_RANGE_FIXED, "16-bit IR stretched between ir-range-min and ir-range-max", "fixed"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstTimFusionIrRange", values);
    g_once_init_leave(&type, t);
  }
  return type;
}
