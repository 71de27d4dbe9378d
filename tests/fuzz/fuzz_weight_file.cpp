// libFuzzer target: the weight-file loader's parsing layer, as
// load_model_file runs it before LibTorch sees anything: safetensors header
// and data checks, the genotype (ArchSpec::from_json, bounds, validate) and
// the weight-count check against the header (model_arch). LibTorch itself is
// not linked (Debian's build is not instrumented, and clang + ASan + its
// static initialisers is impractical); nothing past this layer reads the file
// before the checks here have passed.
//
// The only allowed outcome besides success is timfusion::Error: any other
// exception, crash, leak, sanitizer report, >2 GB or >10 s is a finding.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "timfusion/arch.h"
#include "timfusion/arch_limits.h"
#include "timfusion/error.h"
#include "timfusion/model_header.h"
#include "timfusion/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    if (size > 0 && data[0] == '{') {
      // A genotype on its own (as --arch FILE or the timfusion.arch metadata).
      timfusion::ArchSpec a = timfusion::ArchSpec::from_json(std::string(reinterpret_cast<const char*>(data), size));
      (void)timfusion::min_weight_count(a);
      (void)a.to_json();
      return 0;
    }
    timfusion::SafetensorsFile f = timfusion::parse_safetensors(std::vector<uint8_t>(data, data + size));
    timfusion::model_arch(f);
  } catch (const timfusion::Error&) {
  }
  return 0;
}
