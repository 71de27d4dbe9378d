// timfusion: CUDA kernels callable from C++ without CUDA headers.
#pragma once
#include <cstdint>

extern "C" {
// Device pointers, packed rows (width * channels bytes), channels 3 or 4.
// stream: a cudaStream_t (nullptr = default stream). Returns 0 on success.
int timfusion_cuda_luma_transfer(const uint8_t* vis, const uint8_t* vis_y, const uint8_t* fused_y, uint8_t* out,
                                 int width, int height, int channels, void* stream);
}
