#include "timfusion_formats.h"

namespace tfgst {

using timfusion::ChannelOrder;

PlaneView plane_view(GstVideoFormat format) {
  PlaneView v;
  v.supported = true;
  switch (format) {
    case GST_VIDEO_FORMAT_GRAY8: v.cv_type = CV_8UC1; break;
    // GRAY16_LE is read as host-order 16-bit: correct on little-endian hosts,
    // which are the only ones LibTorch supports.
    case GST_VIDEO_FORMAT_GRAY16_LE: v.cv_type = CV_16UC1; break;
    case GST_VIDEO_FORMAT_RGB: v.cv_type = CV_8UC3; v.order = ChannelOrder::RGB; break;
    case GST_VIDEO_FORMAT_BGR: v.cv_type = CV_8UC3; v.order = ChannelOrder::BGR; break;
    case GST_VIDEO_FORMAT_RGBx:
    case GST_VIDEO_FORMAT_RGBA: v.cv_type = CV_8UC4; v.order = ChannelOrder::RGB; break;
    case GST_VIDEO_FORMAT_BGRx:
    case GST_VIDEO_FORMAT_BGRA: v.cv_type = CV_8UC4; v.order = ChannelOrder::BGR; break;
    case GST_VIDEO_FORMAT_I420:
    case GST_VIDEO_FORMAT_NV12: v.cv_type = CV_8UC1; v.yuv = true; break;
    default: v.supported = false; break;
  }
  return v;
}

cv::Mat wrap_plane0(const GstVideoFrame* frame, const PlaneView& view) {
  // Plane 0 of every supported format spans the full frame size.
  return cv::Mat(GST_VIDEO_FRAME_HEIGHT(frame), GST_VIDEO_FRAME_WIDTH(frame), view.cv_type,
                 GST_VIDEO_FRAME_PLANE_DATA(frame, 0), static_cast<size_t>(GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0)));
}

void copy_chroma(const GstVideoFrame* src, GstVideoFrame* dst) {
  for (guint p = 1; p < GST_VIDEO_FRAME_N_PLANES(src); ++p) gst_video_frame_copy_plane(dst, src, p);
}

}  // namespace tfgst
