#include "timfusion/fuser.h"

#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <thread>

#ifdef TIMFUSION_HAVE_CUDA_KERNELS
#include <c10/cuda/CUDAStream.h>

#include "luma_transfer.h"
#endif

#include "model_cache.h"
#include "timfusion/torch/frame_memory.h"
#include "timfusion/torch/networks.h"
#include "timfusion/torch/state_dict.h"
#include "timfusion/error.h"
#include "timfusion/error_message.h"
#include "timfusion/image_limits.h"
#include "timfusion/model_file.h"
#include "timfusion/shared_cpu.h"
#include "timfusion/thread_limits.h"

namespace timfusion {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::Fp32: return "fp32";
    case Precision::Fp16: return "fp16";
    case Precision::Bf16: return "bf16";
  }
  return "?";
}

Device parse_device(const std::string& s) {
  const DeviceName d = parse_device_name(s);
  if (d.index >= 0) throw Error("device \"" + s + "\": fusion runs on the current CUDA device; give cuda");
  return d.kind;
}

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::Fp32;
  if (s == "fp16") return Precision::Fp16;
  if (s == "bf16") return Precision::Bf16;
  throw Error("unknown precision \"" + s + "\" (expected fp32, fp16 or bf16)");
}

bool Fuser::cuda_available() { return torch::cuda::is_available(); }

bool Fuser::cpu_has_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  // AVX512-BF16 (Cooper Lake, Sapphire Rapids and later, AMD Zen 4): oneDNN
  // then runs bf16 convolutions natively (on AMX where present). Without it
  // LibTorch 1.13 still accepts bf16, but emulates it far slower than fp32.
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;  // this build has no check for other CPUs' bf16 instructions
#endif
}

struct Fuser::Impl {
  // Shared with every Fuser of the process that uses the same file, device
  // and precision (model_cache.h); read-only here.
  std::shared_ptr<const PreparedModel> model;
  nn::TimNet net{nullptr};
  Device device = Device::Cpu;
  Precision precision = Precision::Fp32;
  torch::Device tdev{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  int threads = 1;                       // this Fuser's intra-op threads
  bool shared_cpu = false;               // frames run as tasks on SharedCpu::process()
  std::atomic<int> threads_seen{0};      // LibTorch's thread count inside the last forward
  // Tensor memory reused from frame to frame; per-frame planes kept at the last size.
  FrameMemory memory;
  cv::Size frame_size;
  // The CPU path's per-frame planes and the detail kernel's scratch, kept
  // between frames; on the shared CPU, the worker thread's (as frame_memory()).
  struct Planes {
    cv::Mat vis_y, ir_y, ir_f, vis_f, fused_y;
    std::vector<float> head_scratch;  // the kernel's two box-sum planes
  };
  Planes own_planes;
  Planes& planes() {
    if (!shared_cpu) return own_planes;
    thread_local Planes per_worker;
    return per_worker;
  }

  // LibTorch's OpenMP thread count is a per-thread setting (OpenMP's
  // nthreads ICV of the calling thread; the process-wide value only seeds
  // threads that have not run LibTorch yet). Setting it here, on the thread
  // that runs the forward, gives every Fuser its own count even when several
  // run in one process. It changes only on a thread's first frame (or when
  // one thread alternates between Fusers): at::set_num_threads also drops
  // oneDNN's cached primitives, which must not happen every frame.
  void use_threads() {
    if (at::get_num_threads() != threads) at::set_num_threads(threads);
  }

  // Per-frame state for a frame of this size: a new size frees what the old
  // one cached.
  void begin_frame(cv::Size size) {
    use_threads();
    if (size != frame_size) {
      if (!shared_cpu) memory.release_cached();  // a worker's memory serves other Fusers' sizes too
      frame_size = size;
    }
  }

  // The tensor memory a frame reuses. On the shared CPU it is the worker
  // thread's, for every Fuser whose frames run there: eight rigs of one model
  // on 2 cores keep 2 frames' worth of tensors, not 8.
  FrameMemory& frame_memory() {
    if (!shared_cpu) return memory;
    thread_local FrameMemory per_worker;  // lives as long as the worker (the process)
    return per_worker;
  }

  // Network on one luma pair: both [1,1,H,W] float32 in [0,1] on tdev (the
  // network's layers convert to and from the model's precision themselves).
  // Returns the fused luma as round(clamp(y,0,1)*255), still float (a copy
  // into a uint8 tensor truncates, exactly as .to(kUInt8) does).
  torch::Tensor run(const torch::Tensor& ir, const torch::Tensor& vis) {
    threads_seen = at::get_num_threads();
    auto y = net->forward(ir, vis).to(torch::kFloat32);
    return y.clamp(0, 1).mul_(255).round_();
  }

  // The CPU frame path, straight into 8-bit luma (out: H*W bytes): the
  // detail head's one-pass kernel where it applies (TimNet::forward_to_u8;
  // timfusion-bench times this same call).
  void run_u8(const torch::Tensor& ir, const torch::Tensor& vis, uint8_t* out) {
    threads_seen = at::get_num_threads();
    net->forward_to_u8(ir, vis, out, planes().head_scratch);
  }

  // warmup() and fuse() on the calling thread (with shared_cpu, on a worker).
  void warmup_here(cv::Size size);
  void fuse_here(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& out, ChannelOrder order);
};

namespace {

torch::Tensor view_of(const cv::Mat& m) {
  // from_blob needs a dense buffer; frames with row padding are compacted.
  cv::Mat c = m.isContinuous() ? m : m.clone();
  auto t = torch::from_blob(c.data, {c.rows, c.cols, c.channels()},
                            torch::TensorOptions().dtype(c.depth() == CV_16U ? torch::kInt16 : torch::kUInt8));
  return m.isContinuous() ? t : t.clone();
}

void check_size(int w, int h) {
  if (w < kMinImageSide || h < kMinImageSide || w > kMaxImageSide || h > kMaxImageSide ||
      int64_t{w} * h > kMaxImagePixels)
    throw Error("the images are " + std::to_string(w) + "x" + std::to_string(h) + ": fusion takes " +
                std::to_string(kMinImageSide) + " to " + std::to_string(kMaxImageSide) + " pixels on a side, at most " +
                std::to_string(kMaxImagePixels >> 20) + " megapixels");
}

void check_inputs(const cv::Mat& ir, const cv::Mat& vis) {
  if (ir.empty() || vis.empty()) throw Error("empty input image");
  if (ir.size() != vis.size())
    throw Error("IR is " + std::to_string(ir.cols) + "x" + std::to_string(ir.rows) + " but visible is " +
                std::to_string(vis.cols) + "x" + std::to_string(vis.rows) + ": register/resize IR first");
  check_size(vis.cols, vis.rows);  // before LibTorch sees a 1x1 frame (its padding error is no message for users)
  const int it = ir.type(), vt = vis.type();
  if (it != CV_8UC1 && it != CV_16UC1 && it != CV_8UC3 && it != CV_8UC4)
    throw Error("IR image must be 8-bit or 16-bit gray, or 8-bit colour");
  if (vt != CV_8UC1 && vt != CV_8UC3 && vt != CV_8UC4) throw Error("visible image must be 8-bit gray or colour");
}

// BT.601 luma of [H,W,C] uint8 in OpenCV's fixed point (bit-exact with
// cv::cvtColor), on whichever device the tensor lives.
torch::Tensor luma_fixed(const torch::Tensor& hwc, ChannelOrder order) {
  if (hwc.size(2) == 1) return hwc.select(2, 0);
  auto i = hwc.to(torch::kInt32);
  auto r = i.select(2, order == ChannelOrder::RGB ? 0 : 2), g = i.select(2, 1),
       b = i.select(2, order == ChannelOrder::RGB ? 2 : 0);
  return (r * 4899 + g * 9617 + b * 1868 + 8192).__rshift__(14).to(torch::kUInt8);
}

}  // namespace

// A function-try-block: whatever LibTorch throws while building (bad_alloc,
// c10::Error) leaves as one clean Error line.
Fuser::Fuser(const FuserOptions& o) try : impl_(std::make_unique<Impl>()) {
  if (o.threads < 0 || o.threads > kMaxThreads)
    throw Error("threads=" + std::to_string(o.threads) + ": must be 0 (one per core) to " +
                std::to_string(kMaxThreads));
  const std::string path = resolve_model_path(o.model);
  // LibTorch may start with a single intra-op thread: use every core by default.
  // Applied per call, on the calling thread (see use_threads), not process-wide.
  impl_->threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  Device dev = o.device;
  if (dev == Device::Auto) dev = cuda_available() ? Device::Cuda : Device::Cpu;
  if (dev == Device::Cuda && !cuda_available())
    throw Error(std::string("device=cuda, but ") +
                (torch::cuda::device_count() == 0 ? "this LibTorch build has no CUDA support or no GPU is visible"
                                                  : "CUDA is not usable") +
                " (use device=auto or cpu)");
  impl_->device = dev;
  // A GPU runs one frame at a time well and needs no CPU workers.
  impl_->shared_cpu = o.shared_cpu && dev == Device::Cpu;
  if (impl_->shared_cpu) impl_->threads = 1;  // one task, one core
  impl_->tdev = dev == Device::Cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  impl_->precision = o.precision;
  if (o.precision == Precision::Fp16 && dev != Device::Cuda)
    throw Error("precision=fp16 needs a CUDA device; on CPU use fp32");
  if (o.precision == Precision::Bf16 && dev == Device::Cpu && !cpu_has_bf16())
    throw Error("precision=bf16 is not supported on cpu: this CPU has no AVX512-BF16 instructions (use fp32)");
  impl_->dtype = o.precision == Precision::Fp32 ? torch::kFloat32
                 : o.precision == Precision::Fp16 ? torch::kFloat16
                                                  : torch::kBFloat16;
  // Read, built, moved and folded once per process for all Fusers of this file.
  impl_->model = prepared_model(path, o.arch, dev, o.precision);
  impl_->net = impl_->model->net;
  if (o.precision != Precision::Fp32) {
    try {  // Not every LibTorch build has every kernel in reduced precision.
      warmup(cv::Size(16, 16));
    } catch (const Error& e) {  // warmup() turns c10::Error into Error
      throw Error(std::string("precision=") + precision_name(o.precision) + " is not supported on " +
                  device_name(dev) + " by this LibTorch build (" + e.what() + ")");
    }
  }
} catch (...) {
  rethrow_as_error();
}

Fuser::~Fuser() = default;

void Fuser::Impl::warmup_here(cv::Size size) {
  check_size(size.width, size.height);
  try {
    c10::InferenceMode guard;
    begin_frame(size);
    FrameMemory::Scope reuse(frame_memory());
    auto z = torch::zeros({1, 1, size.height, size.width}, torch::TensorOptions().device(tdev));
    if (device == Device::Cpu) {  // the path fuse() takes
      std::vector<uint8_t> out(static_cast<size_t>(size.area()));
      run_u8(z, z, out.data());
    } else {
      run(z, z);
    }
  } catch (...) {
    rethrow_as_error("inference failed: ");
  }
}

void Fuser::Impl::fuse_here(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& out, ChannelOrder order) {
  check_inputs(ir, vis);
  if (!out.empty() && (out.size() != vis.size() || out.type() != vis.type()))
    throw Error("output image must match the visible image's size and type");
  c10::InferenceMode guard;
  const int H = vis.rows, W = vis.cols;
  try {
    // Every plane and CPU tensor is reused from the previous frame of this size.
    begin_frame(vis.size());
    FrameMemory::Scope reuse(frame_memory());
    if (device == Device::Cpu) {
      // CPU: OpenCV for the cheap colour maths, LibTorch for the network.
      Planes& m = planes();
      const cv::Mat* vis_y = &vis;
      if (vis.channels() > 1) {
        luma_of(vis, order, m.vis_y);
        vis_y = &m.vis_y;
      }
      if (ir.channels() > 1) {
        luma_of(ir, order, m.ir_y);
        ir_to_unit(m.ir_y, order, m.ir_f);
      } else {
        ir_to_unit(ir, order, m.ir_f);
      }
      unit_of_8bit(*vis_y, m.vis_f);
      auto opts = torch::TensorOptions().dtype(torch::kFloat32);
      auto it = torch::from_blob(m.ir_f.data, {1, 1, H, W}, opts);
      auto vt = torch::from_blob(m.vis_f.data, {1, 1, H, W}, opts);
      m.fused_y.create(H, W, CV_8UC1);
      run_u8(it, vt, m.fused_y.data);
      replace_luma(vis, *vis_y, m.fused_y, out);
      return;
    }
    // GPU: upload the raw frames once; colour maths and the network stay on
    // the device; one download of the finished frame.
    auto dev = tdev;
    auto vis_t = view_of(vis).to(dev, /*non_blocking=*/true);
    torch::Tensor ir_u;
    if (ir.type() == CV_16UC1) {
      auto raw = view_of(ir).to(dev).to(torch::kInt32).bitwise_and(0xFFFF);  // int16 -> unsigned
      ir_u = raw.select(2, 0).to(torch::kFloat32).div(65535.0);
    } else {
      ir_u = luma_fixed(view_of(ir).to(dev), order).to(torch::kFloat32).div(255.0);
    }
    auto vy = luma_fixed(vis_t, order);
    auto fy = run(ir_u.view({1, 1, H, W}), vy.to(torch::kFloat32).div(255.0).view({1, 1, H, W}))
                  .to(torch::kUInt8)
                  .view({H, W});
    torch::Tensor res;
    if (vis.channels() == 1) {
      res = fy;
    } else {
#ifdef TIMFUSION_HAVE_CUDA_KERNELS
      // One fused kernel instead of ~6 elementwise passes.
      res = torch::empty_like(vis_t);
      int rc = timfusion_cuda_luma_transfer(vis_t.data_ptr<uint8_t>(), vy.contiguous().data_ptr<uint8_t>(),
                                            fy.contiguous().data_ptr<uint8_t>(), res.data_ptr<uint8_t>(), W, H,
                                            vis.channels(), c10::cuda::getCurrentCUDAStream().stream());
      if (rc != 0) throw Error("CUDA colour kernel failed");
#else
      auto d = fy.to(torch::kInt32) - vy.to(torch::kInt32);
      auto rgb = (vis_t.narrow(2, 0, 3).to(torch::kInt32) + d.unsqueeze(2)).clamp(0, 255).to(torch::kUInt8);
      res = vis.channels() == 4 ? torch::cat({rgb, vis_t.narrow(2, 3, 1)}, 2) : rgb;
#endif
    }
    res = res.to(torch::kCPU).contiguous();
    out.create(vis.size(), vis.type());
    cv::Mat src(H, W, vis.type(), res.data_ptr());
    src.copyTo(out);
  } catch (...) {  // c10::Error, bad_alloc, cv::Exception: one clean line
    rethrow_as_error("inference failed: ");
  }
}

void Fuser::warmup(cv::Size size) {
  if (!impl_->shared_cpu) return impl_->warmup_here(size);
  SharedCpu::process().run(SharedCpu::Clock::now(), [&] { impl_->warmup_here(size); });
}

void Fuser::fuse(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& out, ChannelOrder order) {
  fuse(ir, vis, out, order, SharedCpu::Clock::now());
}

void Fuser::fuse(const cv::Mat& ir, const cv::Mat& vis, cv::Mat& out, ChannelOrder order,
                 std::chrono::steady_clock::time_point deadline) {
  if (!impl_->shared_cpu) return impl_->fuse_here(ir, vis, out, order);
  SharedCpu::process().run(deadline, [&] { impl_->fuse_here(ir, vis, out, order); });
}

cv::Mat Fuser::fuse(const cv::Mat& ir, const cv::Mat& vis, ChannelOrder order) {
  cv::Mat out;
  fuse(ir, vis, out, order);
  return out;
}

const ArchSpec& Fuser::arch() const { return impl_->model->file.arch; }
const std::string& Fuser::model_path() const { return impl_->model->file.path; }
Device Fuser::device() const { return impl_->device; }
Precision Fuser::precision() const { return impl_->precision; }
int Fuser::threads() const { return impl_->threads; }
bool Fuser::shared_cpu() const { return impl_->shared_cpu; }
int Fuser::threads_in_last_forward() const { return impl_->threads_seen; }
size_t Fuser::tensor_memory_bytes() const { return impl_->memory.allocated_bytes(); }

void Fuser::release_memory() {
  impl_->memory.release_cached();
  impl_->frame_size = cv::Size();  // the next frame starts afresh
}

}  // namespace timfusion
