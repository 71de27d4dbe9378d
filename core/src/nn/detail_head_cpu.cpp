#include "nn/detail_head_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "timfusion/error.h"

namespace timfusion::nn {

namespace {

// Index of row/column i of a plane of n after reflect-101 padding by 2 (the
// padding base_layer uses: the edge sample is not repeated). n >= 3.
inline int64_t reflect(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

// Horizontal 5-tap sums of one row (reflect-101 at both ends).
void row_sums(const float* src, float* dst, int64_t n) {
  for (int64_t x = 0; x < n; ++x) {
    float s = 0;
    if (x >= 2 && x + 2 < n) {
      s = src[x - 2] + src[x - 1] + src[x] + src[x + 1] + src[x + 2];
    } else {
      for (int64_t d = -2; d <= 2; ++d) s += src[reflect(x + d, n)];
    }
    dst[x] = s;
  }
}

inline float soft_threshold(float d, float t) { return d - std::clamp(d, -t, t); }

}  // namespace

void detail_head_to_u8(const torch::Tensor& raw_grid, int64_t downscale, const float* first, const float* second,
                       int64_t height, int64_t width, double coring, uint8_t* out, std::vector<float>& scratch) {
  const int64_t s = downscale, s2 = s * s, H = height, W = width;
  if (H < 3 || W < 3 || H % s || W % s || raw_grid.dim() != 4 || raw_grid.size(0) != 1 ||
      raw_grid.size(1) != 4 * s2 || raw_grid.size(2) != H / s || raw_grid.size(3) != W / s ||
      raw_grid.scalar_type() != torch::kFloat32 || !raw_grid.device().is_cpu())
    throw Error("detail head kernel: grid output does not match the frame");
  // NCHW: each channel group is one contiguous block, so the two sigmoids
  // below are long contiguous runs (LibTorch's vectorised kernel).
  auto grid = raw_grid.contiguous();
  grid.narrow(1, 0, s2).sigmoid_();           // base weight w
  grid.narrow(1, 2 * s2, 2 * s2).sigmoid_();  // detail gains / 2
  const float* g = grid.data_ptr<float>();
  const int64_t Hg = H / s, Wg = W / s, plane = Hg * Wg;

  const size_t need = static_cast<size_t>(2 * H * W);
  if (scratch.size() < need) scratch.resize(need);
  float* sum_a = scratch.data();
  float* sum_b = scratch.data() + H * W;
  const float t = static_cast<float>(coring), inv25 = 1.0f / 25.0f;

  at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      row_sums(first + y * W, sum_a + y * W, W);
      row_sums(second + y * W, sum_b + y * W, W);
    }
  });
  at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const float* ra[5];
      const float* rb[5];
      for (int d = 0; d < 5; ++d) {
        const int64_t yy = reflect(y + d - 2, H);
        ra[d] = sum_a + yy * W;
        rb[d] = sum_b + yy * W;
      }
      const float* a = first + y * W;
      const float* b = second + y * W;
      // Grid row and the sub-row's channel offset: pixel (y, x) reads channel
      // q*s² + (y%s)*s + (x%s) at grid (y/s, x/s) (pixel_shuffle's order).
      const float* grow = g + (y / s) * Wg + (y % s) * s * plane;
      uint8_t* o = out + y * W;
      for (int64_t x = 0; x < W; ++x) {
        const float* c = grow + (x % s) * plane + x / s;
        const float w = c[0], r = c[s2 * plane], ga = 2 * c[2 * s2 * plane], gb = 2 * c[3 * s2 * plane];
        const float base_a = (ra[0][x] + ra[1][x] + ra[2][x] + ra[3][x] + ra[4][x]) * inv25;
        const float base_b = (rb[0][x] + rb[1][x] + rb[2][x] + rb[3][x] + rb[4][x]) * inv25;
        float da = a[x] - base_a, db = b[x] - base_b;
        if (t > 0) da = soft_threshold(da, t), db = soft_threshold(db, t);
        const float f = base_b + r + w * (base_a - base_b) + ga * da + gb * db;
        o[x] = static_cast<uint8_t>(std::nearbyint(std::clamp(f, 0.0f, 1.0f) * 255.0f));
      }
    }
  });
}

}  // namespace timfusion::nn
