// timfusion: an image file's declared size, read from its header without
// decoding it, so that a decompression bomb (a 2.6 MB PNG declaring
// 30000x30000 pixels) is refused before anything is allocated (issue 27).
//
// Written here rather than taken from a library: OpenCV 4.6 has no public
// header-only call (its decoders' readHeader is internal, and its own
// pixel limit, 2^30, is read once from an environment variable), and linking
// libpng, libjpeg, libtiff and libwebp only to read two numbers each would
// add four dependencies for a few dozen lines of byte reading.
#pragma once
#include <cstdint>
#include <string>

namespace timfusion {

struct ImageHeader {
  std::string format;  // "PNG", "JPEG", "BMP", "TIFF", "WebP", "PNM", "HDR"
  int64_t width = 0, height = 0;
};

// The header at the start of `bytes` (a whole image file, `path` names it in
// messages). Throws Error("<path>: ...") for a format whose size it cannot
// read (the formats OpenCV reads that are not listed above: JPEG 2000,
// OpenEXR, ...) or a header that is cut short.
ImageHeader parse_image_header(const std::string& bytes, const std::string& path);

}  // namespace timfusion
