// timfusion: device names as users write them, one parser for every tool,
// the element and the training configuration: auto | cpu | cuda | cuda:N.
// No LibTorch here (the training side turns the result into a torch::Device).
#pragma once
#include <string>

namespace timfusion {

enum class Device { Auto, Cpu, Cuda };

const char* device_name(Device d);  // "auto", "cpu", "cuda"

struct DeviceName {
  Device kind = Device::Auto;
  int index = -1;  // N of "cuda:N"; -1 where no index was written
};

// Throws Error naming the value and the accepted shapes for anything else
// ("gpu", "cuda:", "cuda:x", "CPU", ...).
DeviceName parse_device_name(const std::string& s);

}  // namespace timfusion
