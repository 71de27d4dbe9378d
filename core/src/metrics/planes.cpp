#include "planes.h"

#include <cmath>
#include <string>

#include "timfusion/error.h"

namespace timfusion::metrics_detail {

cv::Mat rgb2gray(const cv::Mat& bgr8) {
  // MATLAB's coefficients (BT.601 luma, inverted from its YIQ matrix).
  const double wr = 0.298936021293775, wg = 0.587043074451121, wb = 0.114020904255103;
  const int ch = bgr8.channels();
  cv::Mat out(bgr8.size(), CV_8U);
  for (int i = 0; i < bgr8.rows; ++i) {
    const uchar* p = bgr8.ptr<uchar>(i);
    uchar* q = out.ptr<uchar>(i);
    for (int j = 0; j < bgr8.cols; ++j, p += ch)
      q[j] = cv::saturate_cast<uchar>(std::round(wr * p[2] + wg * p[1] + wb * p[0]));
  }
  return out;
}

static std::string describe(const cv::Mat& m) {
  static const char* depths[] = {"8-bit", "8-bit signed", "16-bit", "16-bit signed", "32-bit integer",
                                  "32-bit float", "64-bit float", "16-bit float"};
  return std::to_string(m.cols) + "x" + std::to_string(m.rows) + "x" + std::to_string(m.channels()) + ", " +
         depths[m.depth() & 7];
}

static void check(const cv::Mat& m, const char* what) {
  if (m.empty()) throw Error(std::string("metrics: the ") + what + " image is empty");
  if (m.depth() != CV_8U || (m.channels() != 1 && m.channels() != 3 && m.channels() != 4))
    throw Error(std::string("metrics: the ") + what +
                " image must be 8-bit gray, BGR or BGRA (got " + describe(m) + ")");
}

static cv::Mat to_double(const cv::Mat& u8) {
  cv::Mat d;
  u8.convertTo(d, CV_64F);
  return d;
}

static cv::Mat gray8(const cv::Mat& m) { return m.channels() == 1 ? m : rgb2gray(m); }

std::vector<Planes> make_planes(const MetricInputs& in, ColorMode mode) {
  check(in.ir, "infrared");
  check(in.vis, "visible");
  check(in.fused, "fused");
  if (in.ir.size() != in.vis.size() || in.ir.size() != in.fused.size())
    throw Error("metrics: image sizes differ (infrared " + describe(in.ir) + ", visible " +
                describe(in.vis) + ", fused " + describe(in.fused) + ")");
  // The infrared is one gray plane in every mode (VIFB passes it whole to each channel).
  cv::Mat ir = to_double(gray8(in.ir));
  if (mode == ColorMode::Luma || in.fused.channels() == 1)
    return {Planes{to_double(gray8(in.vis)), ir, to_double(gray8(in.fused))}};

  std::vector<cv::Mat> f, v;
  cv::split(in.fused, f);
  if (in.vis.channels() > 1) cv::split(in.vis, v);
  std::vector<Planes> out;
  for (int k : {2, 1, 0}) {  // R, G, B: VIFB's channel order (matters for SF only)
    // VIFB would fail on a gray visible image with a colour fused one; reuse it.
    cv::Mat vk = in.vis.channels() == 1 ? in.vis : v[k];
    out.push_back(Planes{to_double(vk), ir, to_double(f[k])});
  }
  return out;
}

}  // namespace timfusion::metrics_detail
