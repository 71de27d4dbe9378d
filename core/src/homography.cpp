// Homography values and calibration files: the parsers (no OpenCV needed,
// so the fuzz target in tests/fuzz builds them alone).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <locale>
#include <sstream>
#include <vector>

#include "strict_json.h"
#include "timfusion/error.h"
#include "timfusion/input_file.h"
#include "timfusion/registration.h"

namespace timfusion {

namespace {

// Calibration files are a few hundred bytes; the limits only keep a hostile
// or mistaken file (a video, /dev/zero, a 30,000-character line) from costing
// memory or time.
constexpr uint64_t kMaxCalibrationFile = 64 << 10;
constexpr size_t kMaxLine = 4096;

std::string shorten(const std::string& s) { return s.size() > 100 ? s.substr(0, 100) + "..." : s; }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// The value of the first "ir-homography = ..." line of a GLib-style key file.
// Written by hand, in one linear pass: GLib's GKeyFile would also do, but the
// format has always accepted the key under any group and lines GKeyFile
// rejects (no group at all), and core does not depend on GLib. (The regex it
// replaces overflowed the stack on a long line.)
std::string key_file_value(const std::string& text) {
  static const std::string kKey = "ir-homography";
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    if (end - pos > kMaxLine)
      throw Error("line " + std::to_string(line_no) + " is longer than " + std::to_string(kMaxLine) + " characters");
    size_t i = pos;
    while (i < end && is_space(text[i])) ++i;
    if (text.compare(i, kKey.size(), kKey) == 0) {
      i += kKey.size();
      while (i < end && is_space(text[i])) ++i;
      if (i < end && text[i] == '=') {
        ++i;
        size_t e = end;
        while (e > i && is_space(text[e - 1])) --e;
        while (i < e && is_space(text[i])) ++i;
        return text.substr(i, e - i);
      }
    }
    pos = end + 1;
  }
  throw Error("no ir-homography= line");
}

}  // namespace

bool Homography::is_identity() const {
  static const std::array<double, 9> id{1, 0, 0, 0, 1, 0, 0, 0, 1};
  return m == id;
}

void Homography::validate() const {
  for (double v : m)
    if (!std::isfinite(v)) throw Error("ir-homography has a non-finite entry");
  // Sign-normalise (H and -H are the same mapping), then the determinant's
  // sign tells orientation: negative = mirrored, zero = not invertible.
  double s = m[8] < 0 ? -1.0 : 1.0;
  double det = s * s * s *
               (m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                m[2] * (m[3] * m[7] - m[4] * m[6]));
  if (std::abs(det) < 1e-12) throw Error("ir-homography is not invertible (determinant 0)");
  if (det < 0) throw Error("ir-homography mirrors the image (negative determinant): check the direction and signs");
}


Homography Homography::parse(const std::string& text) {
  if (text.size() > kMaxLine)
    throw Error("ir-homography is " + std::to_string(text.size()) + " characters long: 9 numbers need far fewer");
  // Separators of the notations people paste (GStreamer arrays, JSON, C): blanks.
  std::string t = text;
  for (char& c : t)
    if (std::strchr(";,[]<>{}()", c) && c != '\0') c = ' ';
  std::istringstream ss(t);
  ss.imbue(std::locale::classic());  // '.' decimals whatever the process locale
  Homography h;
  std::vector<double> v;
  double d;
  while (v.size() <= 9 && ss >> d) v.push_back(d);
  if (!(ss >> std::ws).eof() || v.size() != 9)
    throw Error("ir-homography needs 9 numbers (row-major 3x3), got \"" + shorten(text) + "\"");
  std::copy(v.begin(), v.end(), h.m.begin());
  h.validate();
  return h;
}

Homography Homography::load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(path + ": calibration file not found");
  const std::string text = read_small_file(path, kMaxCalibrationFile, "calibration file");
  try {
    return from_text(text);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

Homography Homography::from_text(const std::string& text) {
  if (text.size() > kMaxCalibrationFile)
    throw Error("calibration text of " + byte_size_str(text.size()) + ", more than the limit of " +
                byte_size_str(kMaxCalibrationFile));
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    JsonLimits limits;
    limits.max_depth = 8;  // room for what a calibration tool adds beside the matrix
    limits.max_items = 4096;
    auto j = parse_strict_json(text, limits);
    if (!j.is_object() || !j.contains("ir-homography")) throw Error("no \"ir-homography\" entry");
    return parse(j["ir-homography"].dump());
  }
  return parse(key_file_value(text));
}

}  // namespace timfusion
