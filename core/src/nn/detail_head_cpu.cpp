#include "nn/detail_head_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "timfusion/error.h"
#include "timfusion/torch/networks.h"

namespace timfusion::nn {

namespace {

// Index of row/column i of a plane of n after reflect-101 padding by 2 (the
// padding base_layer uses: the edge sample is not repeated). n >= 3.
inline int64_t reflect(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

// Horizontal 5-tap sums of one row (reflect-101 at both ends). The interior
// loop has no branch, so the compiler vectorises it; the sums add in the same
// order everywhere (src[x-2] first), as the bit-exactness of the output needs.
void row_sums(const float* src, float* dst, int64_t n) {
  auto edge = [&](int64_t x) {
    float s = 0;
    for (int64_t d = -2; d <= 2; ++d) s += src[reflect(x + d, n)];
    dst[x] = s;
  };
  const int64_t lo = std::min<int64_t>(2, n), hi = std::max<int64_t>(lo, n - 2);
  for (int64_t x = 0; x < lo; ++x) edge(x);
  for (int64_t x = lo; x < hi; ++x) dst[x] = src[x - 2] + src[x - 1] + src[x] + src[x + 1] + src[x + 2];
  for (int64_t x = hi; x < n; ++x) edge(x);
}

// d - clamp(d, -t, t), as min/max (branch-free, so the row loop vectorises).
inline float soft_threshold(float d, float t) { return d - std::min(std::max(d, -t), t); }

// round(clamp(f, 0, 1) * 255), half to even as std::nearbyint in the default
// rounding mode, without a libm call: adding 1.5 * 2^23 leaves no fraction
// bits and the FPU rounds that addition to nearest even (without -ffast-math
// the compiler keeps both operations). NaN gives 0.
inline uint8_t unit_to_u8(float f) {
  constexpr float magic = 12582912.0f;
  float v = f > 0.0f ? f : 0.0f;
  v = (v < 1.0f ? v : 1.0f) * 255.0f;
  return static_cast<uint8_t>(static_cast<int32_t>((v + magic) - magic));
}

// unit_to_u8 over a row. The compiler does not vectorise the clamp and the
// narrowing to 8 bits (it turns them into branches), so on x86-64 it is
// written with SSE2 (baseline there): the same operations, 16 pixels a step.
void unit_row_to_u8(const float* __restrict f, uint8_t* __restrict out, int64_t n) {
  int64_t x = 0;
#if defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps(), unit = _mm_set1_ps(1.0f), scale = _mm_set1_ps(255.0f),
               magic = _mm_set1_ps(12582912.0f);
  auto four = [&](const float* p) {
    __m128 v = _mm_min_ps(_mm_max_ps(_mm_loadu_ps(p), zero), unit);  // max(NaN, 0) = 0
    return _mm_cvttps_epi32(_mm_sub_ps(_mm_add_ps(_mm_mul_ps(v, scale), magic), magic));
  };
  for (; x + 16 <= n; x += 16) {
    const __m128i lo = _mm_packs_epi32(four(f + x), four(f + x + 4)), hi = _mm_packs_epi32(four(f + x + 8), four(f + x + 12));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + x), _mm_packus_epi16(lo, hi));
  }
#endif
  for (; x < n; ++x) out[x] = unit_to_u8(f[x]);
}

// Vertical 5-tap sum of five rows of horizontal sums, / 25: the base layer's
// row. Separate functions with restrict-qualified rows: the uint8 output of
// the row loop could alias anything, which kept the compiler from vectorising.
void base_row(const float* __restrict r0, const float* __restrict r1, const float* __restrict r2,
              const float* __restrict r3, const float* __restrict r4, float* __restrict base, int64_t n) {
  const float inv25 = 1.0f / 25.0f;
  for (int64_t x = 0; x < n; ++x) base[x] = (r0[x] + r1[x] + r2[x] + r3[x] + r4[x]) * inv25;
}

// F = base_b + r + w (base_a - base_b) + g_a core(a - base_a) + g_b core(b - base_b),
// the operations in the order apply_head does them (vectorised by the
// compiler). The head's switches are template arguments, so that each variant
// is a loop without branches: w through the prior (w p / (w p + (1 - w)(1 - p))),
// r left out, or the larger of the two cored details kept (detail_select).
constexpr float kInvRamp = static_cast<float>(1.0 / kSelectionRamp);

template <bool kPrior, bool kSelect, bool kResidual>
void fused_row(const float* __restrict a, const float* __restrict b, const float* __restrict base_a,
               const float* __restrict base_b, const float* __restrict w, const float* __restrict prior,
               const float* __restrict r, const float* __restrict ga, const float* __restrict gb, float ta, float tb,
               float* __restrict f, int64_t n) {
  for (int64_t x = 0; x < n; ++x) {
    float da = a[x] - base_a[x], db = b[x] - base_b[x];
    if (ta > 0) da = soft_threshold(da, ta);
    if (tb > 0) db = soft_threshold(db, tb);
    float wx = w[x];
    if constexpr (kPrior) {
      const float num = wx * prior[x];
      wx = num / (num + (1 - wx) * (1 - prior[x]));
    }
    float out = kResidual ? base_b[x] + r[x] : base_b[x];
    out += wx * (base_a[x] - base_b[x]);
    if constexpr (kSelect) {
      // selection_of_first (networks.h): a ramp of one grey level.
      const float keep_a = std::min(std::max((std::fabs(da) - std::fabs(db)) * kInvRamp + 0.5f, 0.0f), 1.0f);
      f[x] = out + keep_a * (ga[x] * da) + (1 - keep_a) * (gb[x] * db);
    } else
      f[x] = out + ga[x] * da + gb[x] * db;
  }
}

using FusedRow = void (*)(const float*, const float*, const float*, const float*, const float*, const float*,
                          const float*, const float*, const float*, float, float, float*, int64_t);

FusedRow fused_row_for(bool prior, bool select, bool residual) {
  static const FusedRow rows[8] = {fused_row<false, false, false>, fused_row<false, false, true>,
                                   fused_row<false, true, false>,  fused_row<false, true, true>,
                                   fused_row<true, false, false>,  fused_row<true, false, true>,
                                   fused_row<true, true, false>,   fused_row<true, true, true>};
  return rows[(prior ? 4 : 0) + (select ? 2 : 0) + (residual ? 1 : 0)];
}

}  // namespace

namespace {

constexpr int64_t kPriorRadius = kPriorWindow / 2;

// Horizontal kPriorWindow-tap sums of one row (reflect-101; n > kPriorRadius).
// As row_sums: a branch-free interior loop that the compiler vectorises.
void prior_row_sums(const float* __restrict src, float* __restrict dst, int64_t n) {
  auto edge = [&](int64_t x) {
    float s = 0;
    for (int64_t d = -kPriorRadius; d <= kPriorRadius; ++d) {
      int64_t i = x + d;
      i = i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
      s += src[i];
    }
    dst[x] = s;
  };
  const int64_t lo = std::min(kPriorRadius, n), hi = std::max(lo, n - kPriorRadius);
  for (int64_t x = 0; x < lo; ++x) edge(x);
  for (int64_t x = lo; x < hi; ++x) {
    float s = 0;
    for (int64_t d = -kPriorRadius; d <= kPriorRadius; ++d) s += src[x + d];
    dst[x] = s;
  }
  for (int64_t x = hi; x < n; ++x) edge(x);
}

// kPriorWindow x kPriorWindow box mean of an H x W plane (reflect-101), in
// two row-parallel passes on LibTorch's threads (OpenCV's own thread pool
// would compete with them for the same cores). `sums`: H*W scratch.
void prior_box(const float* src, float* sums, float* dst, int64_t H, int64_t W) {
  at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) prior_row_sums(src + y * W, sums + y * W, W);
  });
  const float scale = 1.0f / static_cast<float>(kPriorWindow * kPriorWindow);
  at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      float* __restrict out = dst + y * W;
      std::fill(out, out + W, 0.0f);
      for (int64_t d = -kPriorRadius; d <= kPriorRadius; ++d) {
        int64_t i = y + d;
        i = i < 0 ? -i : (i >= H ? 2 * (H - 1) - i : i);
        const float* __restrict row = sums + i * W;
        for (int64_t x = 0; x < W; ++x) out[x] += row[x];
      }
      for (int64_t x = 0; x < W; ++x) out[x] *= scale;
    }
  });
}

}  // namespace

void salient_prior_cpu(const float* first, const float* second, int64_t height, int64_t width, float mean_first,
                       float mean_second, double softness, float* prior) {
  if (height <= kPriorRadius || width <= kPriorRadius) throw Error("internal: salient prior kernel: frame under 8 pixels");
  const int64_t H = height, W = width, n = H * W;
  // Per calling thread, kept across frames: no allocation per frame.
  thread_local std::vector<float> scratch;
  if (scratch.size() < static_cast<size_t>(3 * n)) scratch.resize(static_cast<size_t>(3 * n));
  float* sums = scratch.data();
  float* box_a = sums + n;
  float* box_b = box_a + n;
  prior_box(first, sums, box_a, H, W);
  prior_box(second, sums, box_b, H, W);
  // The difference of the two deviations from the image means, over the
  // softness, then one vectorised sigmoid over the plane.
  const float inv_soft = static_cast<float>(1.0 / softness);
  at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t i = y0 * W; i < y1 * W; ++i)
      box_a[i] = (std::fabs(box_a[i] - mean_first) - std::fabs(box_b[i] - mean_second)) * inv_soft;
  });
  torch::from_blob(box_a, {n}, torch::kFloat32).sigmoid_();
  prior_box(box_a, sums, prior, H, W);
  const float lo = static_cast<float>(kPriorMargin), hi = static_cast<float>(1 - kPriorMargin);
  at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t i = y0 * W; i < y1 * W; ++i) prior[i] = std::min(std::max(prior[i], lo), hi);
  });
}

void detail_head_to_u8(const torch::Tensor& raw_grid, int64_t downscale, const float* first, const float* second,
                       int64_t height, int64_t width, const DetailKernelOptions& options, uint8_t* out,
                       std::vector<float>& scratch) {
  const int64_t s = downscale, s2 = s * s, H = height, W = width;
  if (H < 3 || W < 3 || H % s || W % s || raw_grid.dim() != 4 || raw_grid.size(0) != 1 ||
      raw_grid.size(1) != 4 * s2 || raw_grid.size(2) != H / s || raw_grid.size(3) != W / s ||
      raw_grid.scalar_type() != torch::kFloat32 || !raw_grid.device().is_cpu())
    throw Error("detail head kernel: grid output does not match the frame");
  // Read the grid in the layout the last convolution left it (channels-last
  // on CPU): converting it to NCHW first was one strided copy that cost as
  // much as the convolutions that made it. Any dense layout works through
  // the strides; a non-dense one is made dense once.
  auto raw = raw_grid;
  if (!raw.is_contiguous() && !raw.is_contiguous(at::MemoryFormat::ChannelsLast)) raw = raw.contiguous();
  // One vectorised sigmoid over the whole (dense) grid; the residual channels
  // are read from raw, the weight and gains from sig.
  auto sig = torch::sigmoid(raw);
  const float* g_raw = raw.data_ptr<float>();
  const float* g_sig = sig.data_ptr<float>();
  const int64_t cs = raw.stride(1), hs = raw.stride(2), ws = raw.stride(3);
  if (sig.stride(1) != cs || sig.stride(2) != hs || sig.stride(3) != ws)
    throw Error("internal: detail head kernel: sigmoid changed the grid's layout");
  const int64_t Wg = W / s;

  const size_t plane = static_cast<size_t>(H * W);
  if (scratch.size() < 2 * plane) scratch.resize(2 * plane);
  float* sum_a = scratch.data();
  float* sum_b = scratch.data() + plane;
  const float ta = static_cast<float>(options.coring[0]), tb = static_cast<float>(options.coring[1]);
  const FusedRow fused_row = fused_row_for(options.prior != nullptr, options.select, options.residual);

  at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      row_sums(first + y * W, sum_a + y * W, W);
      row_sums(second + y * W, sum_b + y * W, W);
    }
  });
  at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
    // One row of each head quantity, expanded from the grid: the pixel loop
    // below then reads only unit-stride rows and vectorises.
    // Per worker thread, kept across frames: no allocation per frame.
    thread_local std::vector<float> rows;
    if (rows.size() < static_cast<size_t>(7 * W)) rows.resize(static_cast<size_t>(7 * W));
    float* w_row = rows.data();
    float* r_row = w_row + W;
    float* ga_row = r_row + W;
    float* gb_row = ga_row + W;
    float* base_a = gb_row + W;
    float* base_b = base_a + W;
    float* fused = base_b + W;
    for (int64_t y = y0; y < y1; ++y) {
      // Pixel (y, x) reads channel q*s² + (y%s)*s + (x%s) at grid (y/s, x/s)
      // (pixel_shuffle's order), q = 0 weight, 1 residual, 2 and 3 gains.
      const int64_t row_off = (y / s) * hs + (y % s) * s * cs;
      for (int64_t gx = 0; gx < Wg; ++gx) {
        for (int64_t j = 0; j < s; ++j) {
          const int64_t c = row_off + gx * ws + j * cs, x = gx * s + j;
          w_row[x] = g_sig[c];
          r_row[x] = g_raw[c + s2 * cs];
          ga_row[x] = 2 * g_sig[c + 2 * s2 * cs];
          gb_row[x] = 2 * g_sig[c + 3 * s2 * cs];
        }
      }
      auto row = [&](const float* sums, int d) { return sums + reflect(y + d - 2, H) * W; };
      base_row(row(sum_a, 0), row(sum_a, 1), row(sum_a, 2), row(sum_a, 3), row(sum_a, 4), base_a, W);
      base_row(row(sum_b, 0), row(sum_b, 1), row(sum_b, 2), row(sum_b, 3), row(sum_b, 4), base_b, W);
      fused_row(first + y * W, second + y * W, base_a, base_b, w_row, options.prior ? options.prior + y * W : nullptr,
                r_row, ga_row, gb_row, ta, tb, fused, W);
      unit_row_to_u8(fused, out + y * W, W);
    }
  });
}

}  // namespace timfusion::nn
