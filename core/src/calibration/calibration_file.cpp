// timfusion calibration: writing the element's calibration file.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "timfusion/calibration.h"

namespace timfusion {

void write_calibration(const std::string& path, const Calibration& c, const std::string& tool_version) {
  nlohmann::ordered_json j;
  // The one key the element reads (Homography::load); the rest documents
  // where the numbers came from and how good they are.
  j["ir-homography"] = c.h.m;
  j["method"] = c.method;
  j["ir-size"] = {c.ir_size.width, c.ir_size.height};
  j["vis-size"] = {c.vis_size.width, c.vis_size.height};
  j["correlation"] = c.correlation;
  j["distinctness"] = c.distinctness;
  j["residual-px"] = c.residual_px;
  j["stability-px"] = c.stability_px;
  j["spread-px"] = c.spread_px;
  j["confidence"] = c.confidence;
  nlohmann::ordered_json frames = nlohmann::ordered_json::array();
  for (const auto& p : c.pairs) {
    nlohmann::ordered_json f;
    f["name"] = p.name;
    f["used"] = p.used;
    if (p.estimated) {
      if (p.correlation >= 0) f["correlation"] = p.correlation;  // -1: not measured (checkerboard)
      f["distance-px"] = p.distance_px;
    } else {
      f["problem"] = p.problem;
    }
    frames.push_back(f);
  }
  j["frames"] = frames;
  char when[32] = "";
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (gmtime_r(&now, &tm)) std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  j["created"] = when;
  j["tool"] = "timfusion-calibrate" + (tool_version.empty() ? std::string() : " " + tool_version);

  // Temporary file + rename: a reader (the element, set to this path) never
  // sees half a file, and a failed write leaves the old file in place.
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) throw Error(path + ": cannot write the calibration file (" + std::strerror(errno) + ")");
    f << j.dump(2) << "\n";
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      throw Error(path + ": writing the calibration file failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write the calibration file (" + why + ")");
  }
}

}  // namespace timfusion
