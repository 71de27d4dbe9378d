// A rendered heated checkerboard seen by a rig: a visible camera and a
// thermal camera of half its resolution under a known homography, with the
// board's opposite polarity, blur and noise (tests of the checkerboard
// calibration in core and in the element). OpenCV only.
#pragma once
#include <opencv2/core.hpp>

namespace tftest {

// 10 x 7 squares: 9 x 6 inner corners.
inline const cv::Size kBoardInner(9, 6);
inline const cv::Size kBoardVisSize(640, 480), kBoardIrSize(320, 240);

struct BoardView {
  cv::Mat ir, vis;     // CV_8UC1 each
  cv::Matx33d truth;   // IR pixel -> visible pixel
};

// The board (squares of 30 px, turned by deg and mildly tilted, its top-left
// outer corner at `at` in the visible frame) on a textured wall; the IR
// camera (ir_size pixels over the visible frame's view) sees the scene
// scaled by 1.1, turned 2 degrees and shifted.
BoardView heated_board_view(cv::Point2f at, double deg, cv::Size ir_size = kBoardIrSize);

}  // namespace tftest
