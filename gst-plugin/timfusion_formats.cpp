#include "timfusion_formats.h"

#include <opencv2/imgproc.hpp>

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

void scale_plane(const cv::Mat& src, cv::Mat dst) {
  const bool shrink = dst.cols < src.cols || dst.rows < src.rows;
  cv::resize(src, dst, dst.size(), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);  // dst: written in place
}

// Plane p (p >= 1) of a mapped I420 (one component per plane) or NV12 (plane 1:
// U and V interleaved) frame.
static cv::Mat wrap_chroma_plane(const GstVideoFrame* frame, guint p) {
  const bool interleaved = GST_VIDEO_FRAME_FORMAT(frame) == GST_VIDEO_FORMAT_NV12;
  return cv::Mat(GST_VIDEO_FRAME_COMP_HEIGHT(frame, p), GST_VIDEO_FRAME_COMP_WIDTH(frame, p),
                 interleaved ? CV_8UC2 : CV_8UC1, GST_VIDEO_FRAME_PLANE_DATA(frame, p),
                 static_cast<size_t>(GST_VIDEO_FRAME_PLANE_STRIDE(frame, p)));
}

void scale_chroma(const GstVideoFrame* src, GstVideoFrame* dst) {
  for (guint p = 1; p < GST_VIDEO_FRAME_N_PLANES(src); ++p)
    scale_plane(wrap_chroma_plane(src, p), wrap_chroma_plane(dst, p));
}

}  // namespace tfgst
