// timfusion: the fusion engine. Loads a TIM weight file, builds the network
// on the chosen device and fuses IR + visible images. No torch types leak.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "timfusion/arch.h"
#include "timfusion/color.h"
#include "timfusion/device_name.h"

namespace timfusion {

enum class Precision { Fp32, Fp16, Bf16 };

const char* precision_name(Precision p);
// A device name (device_name.h) the Fuser can take: auto, cpu or cuda (the
// current CUDA device; not cuda:N). Throws Error.
Device parse_device(const std::string& s);
Precision parse_precision(const std::string& s);  // throws Error

struct FuserOptions {
  std::string model;  // weight file or shipped model name; empty = default_model_path()
  std::string arch;   // for files without metadata (name or JSON path)
  Device device = Device::Auto;
  Precision precision = Precision::Fp32;
  // Intra-op (LibTorch/OpenMP) threads for this Fuser's forward passes; 0 =
  // one per core. Applied on the thread that calls fuse()/warmup(), so
  // Fusers with different counts in one process do not affect each other.
  int threads = 0;
  // Run each frame as a task on the process's shared CPU (shared_cpu.h) with
  // one intra-op thread, instead of on the calling thread with `threads`
  // (then ignored): what many Fusers in one process (many rigs) should do.
  bool shared_cpu = false;
};

class Fuser {
 public:
  // Loads, validates and prepares the model (BN folded, warmed-up kernels
  // are not). Throws Error naming the file and the problem.
  explicit Fuser(const FuserOptions& options);
  ~Fuser();
  Fuser(const Fuser&) = delete;
  Fuser& operator=(const Fuser&) = delete;

  // ir:  CV_8UC1, CV_16UC1 (scaled from 0..65535), CV_8UC3/4 (luma taken).
  // vis: CV_8UC1, CV_8UC3 or CV_8UC4 of the same size as ir.
  // out: the fused image, vis's type; chroma/alpha from vis. It may be
  // preallocated (e.g. wrapping a video frame) and is then written in place.
  void fuse(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& out,
            ChannelOrder order = ChannelOrder::BGR);
  cv::Mat fuse(const cv::Mat& ir, const cv::Mat& vis, ChannelOrder order = ChannelOrder::BGR);
  // With shared_cpu: the frame's deadline orders it among the process's
  // waiting frames (earliest first); the overloads above use "now". Without
  // shared_cpu it is ignored.
  void fuse(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& out, ChannelOrder order,
            std::chrono::steady_clock::time_point deadline);

  // Runs one frame of this size so that the first real frame is not slow.
  void warmup(cv::Size size);

  const ArchSpec& arch() const;
  const std::string& model_path() const;
  Device device() const;  // the device actually used (never Auto)
  Precision precision() const;
  int threads() const;  // the intra-op thread count in effect (0 resolved; 1 with shared_cpu)
  bool shared_cpu() const;
  // LibTorch's intra-op thread count seen inside the last forward pass (0
  // before the first): lets tests and tools check that threads took effect.
  int threads_in_last_forward() const;
  // Bytes of CPU tensor memory this Fuser's frames have taken from the
  // system: frames reuse it, so it stops growing after the first frame at a size.
  // With shared_cpu, frames reuse their worker's memory (shared by every
  // Fuser whose frames run there) and this stays 0.
  size_t tensor_memory_bytes() const;
  // Frees the tensor memory kept for the next frame (e.g. when frames go to
  // other Fusers for a while); the next frame allocates it again.
  void release_memory();

  static bool cuda_available();
  // Whether this CPU computes bf16 natively (AVX512-BF16), the condition
  // for precision=bf16 on device=cpu.
  static bool cpu_has_bf16();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace timfusion
