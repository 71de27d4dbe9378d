// libFuzzer target: calibration files (key file or JSON) and ir-homography
// strings, as Homography::load and the element's ir-homography property parse
// them. Besides success only timfusion::Error may come out; anything else,
// a crash, a sanitizer report, >2 GB or >10 s for one input is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "timfusion/error.h"
#include "timfusion/registration.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    timfusion::Homography::from_text(text);
  } catch (const timfusion::Error&) {
  }
  try {
    timfusion::Homography::parse(text);
  } catch (const timfusion::Error&) {
  }
  return 0;
}
