#include "timfusion/device_name.h"

#include "timfusion/error.h"

namespace timfusion {

const char* device_name(Device d) {
  switch (d) {
    case Device::Auto: return "auto";
    case Device::Cpu: return "cpu";
    case Device::Cuda: return "cuda";
  }
  return "?";
}

DeviceName parse_device_name(const std::string& s) {
  if (s == "auto") return {Device::Auto, -1};
  if (s == "cpu") return {Device::Cpu, -1};
  if (s == "cuda") return {Device::Cuda, -1};
  const std::string prefix = "cuda:";
  const std::string digits = s.size() > prefix.size() && s.compare(0, prefix.size(), prefix) == 0 ? s.substr(prefix.size()) : "";
  if (!digits.empty() && digits.size() <= 4 && digits.find_first_not_of("0123456789") == std::string::npos)
    return {Device::Cuda, std::stoi(digits)};
  throw Error("unknown device \"" + s + "\" (expected auto, cpu, cuda or cuda:N)");
}

}  // namespace timfusion
