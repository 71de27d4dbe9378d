// timfusion: TIM weight files = safetensors + self-description.
//
// Metadata keys written by timfusion (only by describe_model below):
//   timfusion.arch        ArchSpec JSON (see arch.h)
//   timfusion.provenance  JSON object: how the weights were made, with
//                         timfusion_version (the timfusion that wrote it)
// A file without timfusion.arch (e.g. a converted official checkpoint)
// loads when the architecture is named by the caller.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "timfusion/arch.h"
#include "timfusion/safetensors.h"

namespace timfusion {

struct ModelFile {
  std::string path;
  ArchSpec arch;
  std::string provenance;  // JSON, "{}" when absent
  SafetensorsFile weights;
};

// arch_override: empty, a built-in name, or a JSON genotype file. It wins
// over the file's metadata. Throws Error naming the file and the problem.
// Tensor names and shapes are checked later against the built network.
ModelFile load_model_file(const std::string& path, const std::string& arch_override = "");
// Weight files read in full by load_model_file in this process so far. Fusers
// share one prepared network per file (fuser.h), so a process with many
// Fusers or elements of one model reads its file once (tests check it).
uint64_t model_file_reads();

// Stores the self-description in `file`'s metadata: timfusion.arch, and
// timfusion.provenance unless `provenance_json` is empty (a JSON object gets
// "timfusion_version" added when it has none). The one writer of
// these keys (final weights, checkpoints, benchmark files).
void describe_model(SafetensorsFile& file, const ArchSpec& arch, const std::string& provenance_json = "");
// Writes `weights` with their self-description (through write_safetensors).
void write_model_file(const std::string& path, SafetensorsFile weights, const ArchSpec& arch,
                      const std::string& provenance_json);

// The model used when none is given: $TIMFUSION_MODEL, else the installed
// default (ivif-rt: the searched real-time network, trained by timfusion-train),
// else the source tree copy.
std::string default_model_path();

// A weight file path, or the name of a shipped model ("ivif-light",
// "ivif-rt"): <models dir>/<name>.safetensors. Empty = default_model_path().
std::string resolve_model_path(const std::string& name_or_path);

}  // namespace timfusion
