// timfusion: the GPU twin of timfusion::replace_luma (core/src/color.cpp).
//
// One pass over a packed 3/4-channel frame: each colour channel gets
// (fused_y - vis_y) added and saturated; alpha/padding is copied. Keeping
// BT.601 chroma while the luma changes is exactly this (see color.h), so the
// frame never leaves the device between the network and the download.
#include <cuda_runtime.h>

#include <cstdint>

#include "luma_transfer.h"

namespace {

__global__ void luma_transfer_kernel(const uint8_t* vis, const uint8_t* vis_y, const uint8_t* fused_y, uint8_t* out,
                                     int width, int height, int channels) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= width || y >= height) return;
  const int p = y * width + x;
  const int d = int(fused_y[p]) - int(vis_y[p]);
  const uint8_t* v = vis + p * channels;
  uint8_t* o = out + p * channels;
#pragma unroll
  for (int c = 0; c < 3; ++c) o[c] = static_cast<uint8_t>(min(255, max(0, int(v[c]) + d)));
  if (channels == 4) o[3] = v[3];
}

}  // namespace

extern "C" int timfusion_cuda_luma_transfer(const uint8_t* vis, const uint8_t* vis_y, const uint8_t* fused_y,
                                            uint8_t* out, int width, int height, int channels, void* stream) {
  if (channels != 3 && channels != 4) return -1;
  dim3 block(32, 8);
  dim3 grid((width + block.x - 1) / block.x, (height + block.y - 1) / block.y);
  luma_transfer_kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(vis, vis_y, fused_y, out, width, height,
                                                                              channels);
  return cudaGetLastError() == cudaSuccess ? 0 : -2;
}
