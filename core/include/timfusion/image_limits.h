// timfusion: the image sizes fusion takes (Fuser::fuse and warmup throw an
// Error naming the size otherwise).
//
// Smaller images leave the networks' 3x3 reflection padding without pixels
// (1x1 and 2x2 gave raw LibTorch errors); larger ones need more memory than
// machines have (ivif-rt needs ~35 bytes per pixel, 48-channel networks ~1 KB:
// 20000x20000 took 13.4 GB).
#pragma once
#include <cstdint>

namespace timfusion {

constexpr int kMinImageSide = 8;
constexpr int kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = int64_t{64} << 20;  // 64 MP, e.g. 8192 x 8192

// The largest image file read_image (pairs.h) reads: an uncompressed image
// of kMaxImagePixels in 16-bit RGBA, plus room for metadata.
constexpr uint64_t kMaxImageFileBytes = uint64_t{kMaxImagePixels} * 8 + (uint64_t{16} << 20);

}  // namespace timfusion
