#include "timfusion/registration.h"

#include <opencv2/imgproc.hpp>

namespace timfusion {

cv::Mat warp_ir(const cv::Mat& ir, const Homography& h, cv::Size vis_size) {
  if (h.is_identity()) {
    if (ir.size() == vis_size) return ir;
    cv::Mat out;
    bool shrink = ir.cols > vis_size.width;
    cv::resize(ir, out, vis_size, 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
    return out;
  }
  cv::Mat H(3, 3, CV_64F, const_cast<double*>(h.m.data()));
  cv::Mat out;
  // H maps IR pixels to visible pixels; warpPerspective inverts it per pixel.
  cv::warpPerspective(ir, out, H, vis_size, cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0));
  return out;
}

}  // namespace timfusion
