// timfusion: colour handling. The networks fuse luma only: the visible
// image's BT.601 luma (as OpenCV's RGB<->YCrCb) is fused with the IR, and the
// visible chroma is kept, so RGB in gives RGB out and gray gives gray.
#pragma once
#include <opencv2/core.hpp>

namespace timfusion {

enum class ChannelOrder { RGB, BGR };

// Luma (CV_8UC1) of a CV_8UC1/3/4 image; 4-channel = RGBx/RGBA (alpha ignored).
cv::Mat luma_of(const cv::Mat& image, ChannelOrder order);

// An 8-bit gray plane as float v/255 (true division, see ir_to_unit).
cv::Mat unit_of_8bit(const cv::Mat& gray8);

// IR plane as float in [0,1]: 8-bit /255, 16-bit (radiometric) /65535,
// 3/4-channel images by their luma.
cv::Mat ir_to_unit(const cv::Mat& ir, ChannelOrder order);

// The same, written into `out`, which is reallocated only when its size or
// type differs: a video loop that keeps `out` allocates nothing per frame.
// (luma_of copies a gray image into `out`; callers that can use the image
// itself should do so.)
void luma_of(const cv::Mat& image, ChannelOrder order, cv::Mat& out);
void unit_of_8bit(const cv::Mat& gray8, cv::Mat& out);
void ir_to_unit(const cv::Mat& ir, ChannelOrder order, cv::Mat& out);

// out = vis with its luma replaced by fused_y (CV_8UC1); chroma and alpha
// come from vis. Keeping BT.601 chroma (Cr = 0.713(R-Y), Cb = 0.564(B-Y))
// while Y changes means adding (fused_y - vis_y) to each colour channel,
// which is what this does, in integers (exact round trip, no drift).
// vis_y is luma_of(vis) (computed when empty). out must be empty or of vis's
// size and type (it may wrap foreign memory such as a video frame).
void replace_luma(const cv::Mat& vis, const cv::Mat& vis_y, const cv::Mat& fused_y, cv::Mat& out);

}  // namespace timfusion
