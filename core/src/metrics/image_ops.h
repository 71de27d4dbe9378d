// Internal: the MATLAB building blocks the VIFB metrics are written in, on CV_64F
// single-channel planes, reproduced with MATLAB's border and rounding rules.
#pragma once
#include <opencv2/core.hpp>

namespace timfusion::metrics_detail {

// fspecial('gaussian', n, sigma) as a normalised 1-D factor: the 2-D window is its
// outer product (fspecial's eps-truncation never bites for the sizes used here).
cv::Mat gaussian_factor(int n, double sigma);

// filter2(w, x, 'valid') for the separable window g*g' (correlation, no border).
cv::Mat filter_valid(const cv::Mat& x, const cv::Mat& g);
// filter2(w, x, 'same') for the separable window scale*g*g', zero padding.
cv::Mat filter_same_zero(const cv::Mat& x, const cv::Mat& g, double scale);

enum class Border { Zero, Replicate, Reflect101 };
// 3x3 correlation (MATLAB filter2 / imfilter); conv2 is this with the kernel rotated
// by 180 degrees. Sums start from +0 so an all-zero neighbourhood gives +0, as MATLAB.
cv::Mat correlate3x3(const cv::Mat& x, const double k[9], Border border);

// MATLAB gradient(x): central differences inside, one-sided at the borders.
void matlab_gradient(const cv::Mat& x, cv::Mat& gx, cv::Mat& gy);

// Z. Liu's normalize1: round((x-min)/(max-min)*255); an all-zero plane stays as is,
// any other constant plane becomes NaN (0/0), as in the MATLAB original.
cv::Mat normalize1(const cv::Mat& x);

// real(ifft2(ifftshift(fftshift(fft2(x)) .* H))) where H = h(r) on MATLAB's
// freqspace([rows cols],'meshgrid') grid scaled by (su, sv): r = hypot(su*u, sv*v).
cv::Mat radial_filter(const cv::Mat& x, double su, double sv, double (*h)(double r));

// blkproc(x, [b b], @(x) sum(x(:))): sums over b x b blocks, partial blocks padded with 0.
cv::Mat block_sums(const cv::Mat& x, int b);

// MATLAB corr2: Pearson correlation of two planes (NaN when one is constant).
double corr2(const cv::Mat& a, const cv::Mat& b);

}  // namespace timfusion::metrics_detail
