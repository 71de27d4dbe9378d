// timfusion GStreamer element: which raw video formats each pad takes, and
// how a mapped GstVideoFrame is seen by the core (cv::Mat views, no copies).
#pragma once

#include <gst/video/video.h>
#include <opencv2/core.hpp>

#include "timfusion/color.h"

namespace tfgst {

// Pad template caps strings (any size, any framerate).
//   ir:  8-bit or 16-bit (radiometric, little-endian) gray, or RGB/BGR (luma taken).
//   vis: gray, packed RGB/BGR with or without a 4th byte, or planar YUV
//        (only Y is fused; chroma is copied from the visible frame).
#define TFGST_IR_FORMATS "{ GRAY8, GRAY16_LE, RGB, BGR }"
#define TFGST_VIS_FORMATS "{ GRAY8, RGB, BGR, RGBx, BGRx, RGBA, BGRA, I420, NV12 }"

// How the core sees the first plane of a frame of this format.
struct PlaneView {
  bool supported = false;
  int cv_type = -1;                                          // CV_8UC1, CV_16UC1, CV_8UC3, CV_8UC4
  timfusion::ChannelOrder order = timfusion::ChannelOrder::BGR;  // for 3/4 channels
  bool yuv = false;  // planar/semi-planar YUV: plane 0 is luma, the others are chroma
};

PlaneView plane_view(GstVideoFormat format);

// A cv::Mat header over plane 0 of a mapped frame (stride respected, no copy).
cv::Mat wrap_plane0(const GstVideoFrame* frame, const PlaneView& view);

// Copies every plane after the first (the chroma of I420/NV12) from src to dst.
void copy_chroma(const GstVideoFrame* src, GstVideoFrame* dst);

// Scales src into dst (its size), for an output size downstream fixed: area
// averaging when shrinking, bilinear when enlarging.
void scale_plane(const cv::Mat& src, cv::Mat dst);
// copy_chroma for frames of different sizes: each chroma plane scaled.
void scale_chroma(const GstVideoFrame* src, GstVideoFrame* dst);

}  // namespace tfgst
