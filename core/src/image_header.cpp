#include "timfusion/image_header.h"

#include <cctype>
#include <cstdlib>
#include <cstring>

#include "timfusion/error.h"

namespace timfusion {

namespace {

class Bytes {
 public:
  Bytes(const std::string& s, const std::string& path) : s_(s), path_(path) {}
  size_t size() const { return s_.size(); }
  uint32_t u8(size_t at) const {
    need(at, 1);
    return static_cast<unsigned char>(s_[at]);
  }
  uint32_t be16(size_t at) const { return u8(at) << 8 | u8(at + 1); }
  uint32_t le16(size_t at) const { return u8(at) | u8(at + 1) << 8; }
  uint32_t be32(size_t at) const { return be16(at) << 16 | be16(at + 2); }
  uint32_t le32(size_t at) const { return le16(at) | le16(at + 2) << 16; }
  bool starts(size_t at, const char* magic) const {
    const size_t n = std::strlen(magic);
    return at + n <= s_.size() && std::memcmp(s_.data() + at, magic, n) == 0;
  }
  [[noreturn]] void cut() const { throw Error(path_ + ": the image header is cut short (corrupt file)"); }
  void need(size_t at, size_t n) const {
    if (at + n > s_.size() || at + n < at) cut();
  }
  const std::string& str() const { return s_; }

 private:
  const std::string& s_;
  const std::string& path_;
};

ImageHeader png(const Bytes& b) {
  if (!b.starts(12, "IHDR")) b.cut();
  return {"PNG", b.be32(16), b.be32(20)};
}

// Walks the marker segments up to the first start-of-frame (SOF0..SOF15 but
// DHT, JPG and DAC, which share the range).
ImageHeader jpeg(const Bytes& b, const std::string& path) {
  size_t at = 2;
  for (;;) {
    if (b.u8(at) != 0xFF) throw Error(path + ": corrupt JPEG (no frame header before the image data)");
    uint32_t marker = b.u8(at + 1);
    while (marker == 0xFF) marker = b.u8(++at + 1);  // fill bytes
    at += 2;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (marker == 0xD9 || marker == 0xDA)
      throw Error(path + ": corrupt JPEG (no frame header before the image data)");
    const uint32_t len = b.be16(at);
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC)
      return {"JPEG", b.be16(at + 5), b.be16(at + 3)};
    if (len < 2) b.cut();
    at += len;
  }
}

ImageHeader bmp(const Bytes& b) {
  const uint32_t dib = b.le32(14);
  if (dib == 12) return {"BMP", b.le16(18), b.le16(20)};
  const auto w = static_cast<int32_t>(b.le32(18)), h = static_cast<int32_t>(b.le32(22));
  return {"BMP", std::llabs(w), std::llabs(h)};  // a negative height is a top-down image
}

ImageHeader tiff(const Bytes& b, const std::string& path) {
  const bool le = b.starts(0, "II");
  auto u16 = [&](size_t at) { return le ? b.le16(at) : b.be16(at); };
  auto u32 = [&](size_t at) { return le ? b.le32(at) : b.be32(at); };
  if (u16(2) != 42 && u16(2) != 43) throw Error(path + ": not an image OpenCV can read (corrupt or unsupported format)");
  if (u16(2) != 42) throw Error(path + ": BigTIFF images are not supported (save as PNG or classic TIFF)");
  const size_t ifd = u32(4);
  const uint32_t n = u16(ifd);
  ImageHeader h{"TIFF", -1, -1};
  for (uint32_t i = 0; i < n; ++i) {
    const size_t e = ifd + 2 + 12 * size_t{i};
    const uint32_t tag = u16(e), type = u16(e + 2);
    const int64_t v = type == 3 ? u16(e + 8) : u32(e + 8);  // SHORT or LONG
    if (tag == 256) h.width = v;
    if (tag == 257) h.height = v;
  }
  if (h.width < 0 || h.height < 0) throw Error(path + ": corrupt TIFF (no image width or height)");
  return h;
}

ImageHeader webp(const Bytes& b, const std::string& path) {
  if (b.starts(12, "VP8X")) return {"WebP", 1 + (b.le32(24) & 0xFFFFFF), 1 + (b.le32(27) & 0xFFFFFF)};
  if (b.starts(12, "VP8L")) {
    const uint32_t v = b.le32(21);
    return {"WebP", 1 + (v & 0x3FFF), 1 + ((v >> 14) & 0x3FFF)};
  }
  if (b.starts(12, "VP8 ")) return {"WebP", b.le16(26) & 0x3FFF, b.le16(28) & 0x3FFF};
  throw Error(path + ": corrupt WebP (no VP8 image chunk)");
}

// Netpbm (P1-P6: width and height are the first two numbers, # starts a
// comment) and PAM (P7: WIDTH and HEIGHT lines).
ImageHeader pnm(const Bytes& b, const std::string& path) {
  const std::string& s = b.str();
  const size_t end = std::min<size_t>(s.size(), 4096);
  std::string head = s.substr(0, end);
  if (b.starts(0, "P7")) {
    ImageHeader h{"PNM", -1, -1};
    for (const char* key : {"WIDTH", "HEIGHT"}) {
      const size_t k = head.find(std::string("\n") + key);
      if (k == std::string::npos) throw Error(path + ": corrupt PAM (no " + key + " line)");
      (key[0] == 'W' ? h.width : h.height) = std::strtoll(head.c_str() + k + 1 + std::strlen(key), nullptr, 10);
    }
    return h;
  }
  int64_t v[2] = {-1, -1};
  size_t at = 2;
  for (int64_t& x : v) {
    for (;;) {
      while (at < end && std::isspace(static_cast<unsigned char>(head[at]))) ++at;
      if (at < end && head[at] == '#') {
        while (at < end && head[at] != '\n') ++at;
        continue;
      }
      break;
    }
    if (at >= end || !std::isdigit(static_cast<unsigned char>(head[at]))) b.cut();
    x = 0;
    while (at < end && std::isdigit(static_cast<unsigned char>(head[at])) && x < (int64_t{1} << 40))
      x = x * 10 + (head[at++] - '0');
  }
  return {"PNM", v[0], v[1]};
}

// Radiance HDR: text lines, an empty line, then "-Y <h> +X <w>" (or another orientation).
ImageHeader hdr(const Bytes& b, const std::string& path) {
  const std::string head = b.str().substr(0, std::min<size_t>(b.size(), 65536));
  const size_t blank = head.find("\n\n");
  if (blank == std::string::npos) b.cut();
  char ya[3] = {}, xa[3] = {};
  long long h = -1, w = -1;
  if (std::sscanf(head.c_str() + blank + 2, "%2s %lld %2s %lld", ya, &h, xa, &w) != 4)
    throw Error(path + ": corrupt Radiance HDR (no resolution line)");
  if (ya[1] == 'X') std::swap(h, w);
  return {"HDR", w, h};
}

}  // namespace

ImageHeader parse_image_header(const std::string& bytes, const std::string& path) {
  const Bytes b(bytes, path);
  if (b.starts(0, "\x89PNG\r\n\x1a\n")) return png(b);
  if (b.starts(0, "\xFF\xD8")) return jpeg(b, path);
  if (b.starts(0, "BM")) return bmp(b);
  if (b.starts(0, "II") || b.starts(0, "MM")) return tiff(b, path);  // 42 (or 43: BigTIFF) follows
  if (b.starts(0, "RIFF") && b.starts(8, "WEBP")) return webp(b, path);
  if (b.size() >= 2 && b.str()[0] == 'P' && b.str()[1] >= '1' && b.str()[1] <= '7') return pnm(b, path);
  if (b.starts(0, "#?")) return hdr(b, path);
  throw Error(path + ": not an image whose size can be checked before decoding (PNG, JPEG, TIFF, BMP, WebP, "
              "PNM and Radiance HDR are read; convert others to PNG)");
}

}  // namespace timfusion
