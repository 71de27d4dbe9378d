#include "timfusion/registration.h"

#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "timfusion/error.h"

namespace timfusion {

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
  std::string t = std::regex_replace(text, std::regex("[;,\\[\\]<>{}()]"), " ");
  std::istringstream ss(t);
  Homography h;
  std::vector<double> v;
  double d;
  while (ss >> d) v.push_back(d);
  if (!ss.eof() || v.size() != 9)
    throw Error("ir-homography needs 9 numbers (row-major 3x3), got \"" + text + "\"");
  std::copy(v.begin(), v.end(), h.m.begin());
  h.validate();
  return h;
}

Homography Homography::load(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": calibration file not found");
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  try {
    size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '{') {
      auto j = nlohmann::json::parse(text);
      if (!j.contains("ir-homography")) throw Error("no \"ir-homography\" entry");
      return parse(j["ir-homography"].dump());
    }
    std::smatch mt;
    if (std::regex_search(text, mt, std::regex("(^|\\n)\\s*ir-homography\\s*=\\s*([^\\n]*)")))
      return parse(mt[2].str());
    throw Error("no ir-homography= line");
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

cv::Mat warp_ir(const cv::Mat& ir, const Homography& h, cv::Size vis_size) {
  if (h.is_identity()) {
    if (ir.size() == vis_size) return ir;
    cv::Mat out;
    bool shrink = ir.cols > vis_size.width;
    cv::resize(ir, out, vis_size, 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
    return out;
  }
  cv::Mat H(3, 3, CV_64F, const_cast<double*>(h.m.data()));
  cv::Mat out;
  // H maps IR pixels to visible pixels; warpPerspective inverts it per pixel.
  cv::warpPerspective(ir, out, H, vis_size, cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0));
  return out;
}

}  // namespace timfusion
