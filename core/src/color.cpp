#include "timfusion/color.h"

#include <opencv2/imgproc.hpp>


#include "timfusion/error.h"

namespace timfusion {

void luma_of(const cv::Mat& image, ChannelOrder order, cv::Mat& out) {
  const bool rgb = order == ChannelOrder::RGB;
  switch (image.type()) {
    case CV_8UC1: image.copyTo(out); return;
    case CV_8UC3: cv::cvtColor(image, out, rgb ? cv::COLOR_RGB2GRAY : cv::COLOR_BGR2GRAY); return;
    case CV_8UC4: cv::cvtColor(image, out, rgb ? cv::COLOR_RGBA2GRAY : cv::COLOR_BGRA2GRAY); return;
    default: throw Error("unsupported image type for luma (expected 8-bit gray, 3 or 4 channels)");
  }
}

cv::Mat luma_of(const cv::Mat& image, ChannelOrder order) {
  if (image.type() == CV_8UC1) return image;
  cv::Mat y;
  luma_of(image, order, y);
  return y;
}

namespace {

// v / max as a correctly rounded float division (not v * (1/max)), so that
// an 8-bit value v and its 16-bit twin v*257 map to the very same float, and
// CPU and GPU (which divide) agree bit for bit. Divided in the loop, not read
// from a table: the compiler vectorises the division (2-3x faster than a
// 256-entry table, and a 65536-entry one for 16 bits did not fit the cache).
template <typename T>
void scale_to_unit(const cv::Mat& m, float max, cv::Mat& f) {
  f.create(m.size(), CV_32F);
  for (int r = 0; r < m.rows; ++r) {
    const T* s = m.ptr<T>(r);
    float* d = f.ptr<float>(r);
    for (int c = 0; c < m.cols; ++c) d[c] = static_cast<float>(s[c]) / max;
  }
}

}  // namespace

void unit_of_8bit(const cv::Mat& gray8, cv::Mat& out) {
  if (gray8.type() != CV_8UC1) throw Error("expected an 8-bit gray plane");
  scale_to_unit<uint8_t>(gray8, 255.0f, out);
}

cv::Mat unit_of_8bit(const cv::Mat& gray8) {
  cv::Mat f;
  unit_of_8bit(gray8, f);
  return f;
}

void ir_to_unit(const cv::Mat& ir, ChannelOrder order, cv::Mat& out) {
  if (ir.type() == CV_16UC1) return scale_to_unit<uint16_t>(ir, 65535.0f, out);
  unit_of_8bit(luma_of(ir, order), out);
}

cv::Mat ir_to_unit(const cv::Mat& ir, ChannelOrder order) {
  cv::Mat f;
  ir_to_unit(ir, order, f);
  return f;
}

namespace {

// One row of replace_luma: each pixel's colour channels move by its luma
// change, saturated to 0..255; a fourth channel (alpha) is kept. The channel
// count is a template parameter, so the compiler vectorises the loop (with a
// run-time check for overlapping rows: out may be vis, in place): about 4x
// faster than with a run-time count in a side-by-side build, and with many
// rigs it was 3 % of the process's CPU.
template <int CN>
void shift_row_by_luma(const uchar* vis, const uchar* vis_y, const uchar* fused_y,
                       uchar* out, int n) {
  for (int c = 0; c < n; ++c) {
    const int d = int(fused_y[c]) - int(vis_y[c]);
    for (int k = 0; k < 3; ++k) {
      const int v = int(vis[c * CN + k]) + d;
      out[c * CN + k] = uchar(v < 0 ? 0 : (v > 255 ? 255 : v));
    }
    if (CN == 4) out[c * CN + 3] = vis[c * CN + 3];
  }
}

}  // namespace

void replace_luma(const cv::Mat& vis, const cv::Mat& vis_y_in, const cv::Mat& fused_y, cv::Mat& out) {
  if (fused_y.type() != CV_8UC1 || fused_y.size() != vis.size())
    throw Error("fused luma must be 8-bit gray of the visible image's size");
  if (!out.empty() && (out.size() != vis.size() || out.type() != vis.type()))
    throw Error("output image must match the visible image's size and type");
  out.create(vis.size(), vis.type());
  const int cn = vis.channels();
  if (cn == 1) {
    fused_y.copyTo(out);
    return;
  }
  if (cn != 3 && cn != 4) throw Error("visible image must have 1, 3 or 4 channels");
  // Channel order does not matter here: the same delta goes to R, G and B.
  cv::Mat vis_y = vis_y_in.empty() ? luma_of(vis, ChannelOrder::BGR) : vis_y_in;
  if (vis_y.type() != CV_8UC1 || vis_y.size() != vis.size()) throw Error("visible luma has the wrong size or type");
  for (int r = 0; r < vis.rows; ++r) {
    if (cn == 3)
      shift_row_by_luma<3>(vis.ptr<uchar>(r), vis_y.ptr<uchar>(r), fused_y.ptr<uchar>(r), out.ptr<uchar>(r), vis.cols);
    else
      shift_row_by_luma<4>(vis.ptr<uchar>(r), vis_y.ptr<uchar>(r), fused_y.ptr<uchar>(r), out.ptr<uchar>(r), vis.cols);
  }
}

}  // namespace timfusion
