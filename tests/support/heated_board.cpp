#include "heated_board.h"

#include <cmath>

#include <opencv2/imgproc.hpp>

namespace tftest {

namespace {

cv::Mat visible_scene(cv::Point2f at, double deg) {
  cv::Mat wall(kBoardVisSize, CV_8UC1);
  cv::randu(wall, 60, 190);
  cv::GaussianBlur(wall, wall, cv::Size(0, 0), 6);
  const int sq = 30;
  cv::Mat board((kBoardInner.height + 3) * sq, (kBoardInner.width + 3) * sq, CV_8UC1, cv::Scalar(235));  // margin
  for (int r = 0; r <= kBoardInner.height; ++r)
    for (int c = 0; c <= kBoardInner.width; ++c)
      if ((r + c) % 2 == 0) cv::rectangle(board, cv::Rect((c + 1) * sq, (r + 1) * sq, sq, sq), cv::Scalar(25), -1);
  const double th = deg * CV_PI / 180;
  const cv::Matx33d place(std::cos(th), -std::sin(th), at.x, std::sin(th), std::cos(th), at.y, 0.0002, 0.0001, 1);
  cv::Mat mask(board.size(), CV_8UC1, cv::Scalar(255)), warped, wmask;
  cv::warpPerspective(board, warped, cv::Mat(place), kBoardVisSize, cv::INTER_AREA);
  cv::warpPerspective(mask, wmask, cv::Mat(place), kBoardVisSize, cv::INTER_NEAREST);
  warped.copyTo(wall, wmask);
  return wall;
}

cv::Matx33d ir_truth(cv::Size ir_size) {
  const double s = 1.1, th = 2.0 * CV_PI / 180, cx = (kBoardVisSize.width - 1) / 2.0,
               cy = (kBoardVisSize.height - 1) / 2.0;
  const double f = double(kBoardVisSize.width) / ir_size.width;
  const cv::Matx33d res(f, 0, 0.5 * f - 0.5, 0, f, 0.5 * f - 0.5, 0, 0, 1);
  const cv::Matx33d a(s * std::cos(th), -s * std::sin(th), cx + 0.04 * kBoardVisSize.width, s * std::sin(th),
                      s * std::cos(th), cy - 0.03 * kBoardVisSize.height, 0, 0, 1);
  return a * cv::Matx33d(1, 0, -cx, 0, 1, -cy, 0, 0, 1) * res;
}

// The heated board's dark squares are the warm ones (opposite polarity);
// softer (IR optics, coarser pixels) and noisier.
cv::Mat thermal_view(const cv::Mat& vis_scene, const cv::Matx33d& truth, cv::Size ir_size) {
  cv::Mat inverted = 255 - vis_scene, blurred, ir;
  const double coarser = double(kBoardVisSize.width) / ir_size.width;
  cv::GaussianBlur(inverted, blurred, cv::Size(0, 0), 0.6 * coarser);
  cv::warpPerspective(blurred, ir, cv::Mat(truth), ir_size, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                      cv::BORDER_REFLECT_101);
  cv::Mat noise(ir.size(), CV_16SC1);
  cv::randn(noise, 0, 3);
  cv::Mat out;
  cv::add(ir, noise, out, cv::noArray(), CV_8U);
  return out;
}

}  // namespace

BoardView heated_board_view(cv::Point2f at, double deg, cv::Size ir_size) {
  BoardView v;
  v.vis = visible_scene(at, deg);
  v.truth = ir_truth(ir_size);
  v.ir = thermal_view(v.vis, v.truth, ir_size);
  return v;
}

}  // namespace tftest
