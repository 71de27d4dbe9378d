// timfusion: sink pad class (see gsttimfusion_pad.h).
//
// GstVideoAggregatorPad keeps repeat-after-eos in its private data, with a
// param spec default of FALSE. This class installs its own "repeat-after-eos"
// (same name and meaning, default TRUE), which GObject uses in place of the
// base class's, and forwards every set/get to the base class's property.
#include "gsttimfusion_pad.h"

struct _GstTimFusionPad {
  GstVideoAggregatorPad parent;
};

G_DEFINE_TYPE(GstTimFusionPad, gst_timfusion_pad, GST_TYPE_VIDEO_AGGREGATOR_PAD)

enum { PROP_0, PROP_REPEAT_AFTER_EOS };

static GParamSpec* base_repeat_after_eos() {
  static GParamSpec* pspec = g_object_class_find_property(
      G_OBJECT_CLASS(gst_timfusion_pad_parent_class), "repeat-after-eos");
  return pspec;
}

static void gst_timfusion_pad_set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  if (prop_id == PROP_REPEAT_AFTER_EOS && base_repeat_after_eos()) {
    GParamSpec* base = base_repeat_after_eos();
    G_OBJECT_CLASS(gst_timfusion_pad_parent_class)->set_property(object, base->param_id, value, base);
  } else {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void gst_timfusion_pad_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  if (prop_id == PROP_REPEAT_AFTER_EOS && base_repeat_after_eos()) {
    GParamSpec* base = base_repeat_after_eos();
    G_OBJECT_CLASS(gst_timfusion_pad_parent_class)->get_property(object, base->param_id, value, base);
  } else {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void gst_timfusion_pad_init(GstTimFusionPad* pad) {
  GParamSpec* base = base_repeat_after_eos();
  if (!base) return;
  GValue v = G_VALUE_INIT;
  g_value_init(&v, G_TYPE_BOOLEAN);
  g_value_set_boolean(&v, DEFAULT_PAD_REPEAT_AFTER_EOS);
  G_OBJECT_CLASS(gst_timfusion_pad_parent_class)->set_property(G_OBJECT(pad), base->param_id, &v, base);
  g_value_unset(&v);
}

static void gst_timfusion_pad_class_init(GstTimFusionPadClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  gobject_class->set_property = gst_timfusion_pad_set_property;
  gobject_class->get_property = gst_timfusion_pad_get_property;
  g_object_class_install_property(
      gobject_class, PROP_REPEAT_AFTER_EOS,
      g_param_spec_boolean("repeat-after-eos", "Repeat After EOS",
                           "Keep fusing this pad's last frame after it has gone EOS, until the other pad ends too "
                           "(FALSE on ir: the IR is black after the IR stream ends)",
                           DEFAULT_PAD_REPEAT_AFTER_EOS,
                           static_cast<GParamFlags>(G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING |
                                                    G_PARAM_STATIC_STRINGS)));
}
