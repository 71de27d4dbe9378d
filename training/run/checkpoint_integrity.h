// timfusion-train: what a checkpoint or model file must be before it is
// written, and what a checkpoint must still be when it is read back (no
// LibTorch).
//
//  - Finite: a diverged run held inf in its checkpoint and wrote it as the
//    model (issue 27). Every float tensor is checked before a write; a
//    non-finite value is an Error naming the tensor, and nothing is written.
//  - Intact: a corrupted checkpoint used to show up only as "loss became
//    nan" after --resume. Each checkpoint carries a CRC-32 (zlib's) of its
//    tensors' names, dtypes, shapes and bytes in its metadata
//    ("timfusion.tensors_crc32"); read_checkpoint verifies it. (CRC-32 finds
//    every burst error of up to 32 bits and random corruption with
//    probability 1 - 2^-32: enough to tell a damaged file from a diverged run;
//    it is not meant against tampering.)
#pragma once
#include <string>

#include "timfusion/safetensors.h"

namespace timfusion::train {

constexpr const char* kTensorsChecksumKey = "timfusion.tensors_crc32";

// Throws Error("<path>: not written: tensor \"<name>\" holds <value> ...")
// when a float tensor holds inf or NaN.
void require_finite(const SafetensorsFile& f, const std::string& path);
// The CRC-32 of the tensors, as 8 hex digits.
std::string tensors_checksum(const SafetensorsFile& f);
// Checkpoints only: require_finite, the checksum into the metadata, then an atomic write.
void write_checkpoint(const std::string& path, SafetensorsFile& f);
// Throws Error naming the file when its checksum does not match (a file
// without one, from an older version, is accepted).
void verify_checksum(const SafetensorsFile& f, const std::string& path);

}  // namespace timfusion::train
