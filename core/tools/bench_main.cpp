// timfusion-bench: forward time, page faults and peak memory of a TIM
// network on CPU, its GFLOP/s and efficiency against one large 3x3
// convolution measured in the same run, and (--profile) where the time goes,
// per LibTorch op. Each configuration runs in its own child process so that
// its peak RSS is its own. Prints Markdown tables.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include "timfusion/torch/frame_memory.h"
#include "timfusion/torch/networks.h"
#include "timfusion/torch/state_dict.h"
#include "timfusion/error.h"
#include "timfusion/fuser.h"
#include "timfusion/model_file.h"
#include "bench_temporal.h"
#include "tool_cli.h"

using namespace timfusion;
namespace tool = timfusion::tool;

namespace {

struct Config {
  int width, height, threads;
  bool channels_last = true;
  int batch = 1;  // frames per network pass (--batching): > 1 times TimNet::forward() on [batch,1,H,W]
};

// What one timed frame runs: the element's CPU path by default.
struct Engine {
  bool forward_only = false;           // TimNet::forward() + clamp (the training/eval path) instead
  torch::ScalarType dtype = torch::kFloat32;  // the weights' precision (--precision)
};

struct Result {
  double ms_mean, ms_min;
  double rss_mb;
  double faults_per_frame;  // minor page faults per timed frame (steady state)
  double gflop;             // convolution GFLOP per frame (LibTorch profiler count)
  double conv_gflops;       // one large 3x3 convolution, GFLOP/s, same process and threads
};

long minor_faults() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

nn::TimNet load_net(const std::string& model, const std::string& arch, bool channels_last, torch::ScalarType dtype) {
  // With a weight file, its own metadata names the architecture unless --arch overrides it.
  nn::TimNet net{nullptr};
  if (model.empty()) {
    net = nn::TimNet(ArchSpec::resolve(arch.empty() ? "ivif-light" : arch));
  } else {
    ModelFile f = load_model_file(resolve_model_path(model), arch);
    net = nn::TimNet(f.arch);
    nn::load_state(*net, f.weights, model);
  }
  net->eval();
  net->to(dtype);  // as Fuser prepares it: precision, layout, then BN folding
  if (channels_last) net->to_channels_last();
  net->fold_bn();
  return net;
}

// One frame's network work on float32 [1,1,H,W] luma planes, as the Fuser
// does it on CPU (TimNet::forward_to_u8: the detail head's one-pass kernel
// where it applies, 8-bit luma out), or --forward's plain forward(). Shared
// by measure() and profile(), so both time the same thing. Tensor memory is
// reused from frame to frame while `reuse` lives, as in Fuser::fuse.
struct BenchFrame {
  BenchFrame(const std::string& model, const std::string& arch, const Config& c, const Engine& e)
      : net(load_net(model, arch, c.channels_last, e.dtype)), engine(e) {
    auto fmt = c.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    ir = torch::rand({c.batch, 1, c.height, c.width}).contiguous(fmt);
    vis = torch::rand({c.batch, 1, c.height, c.width}).contiguous(fmt);
    batched = c.batch > 1;
    out.resize(static_cast<size_t>(c.width) * c.height);
  }
  void run() {
    if (engine.forward_only || batched)  // forward_to_u8 takes one frame
      net->forward(ir, vis).clamp(0, 1);
    else
      net->forward_to_u8(ir, vis, out.data(), scratch);
  }

  nn::TimNet net;
  Engine engine;
  bool batched = false;
  torch::Tensor ir, vis;
  std::vector<uint8_t> out;
  std::vector<float> scratch;
  FrameMemory memory;
  FrameMemory::Scope reuse{memory};
};

namespace prof = torch::autograd::profiler;

// Runs fn under LibTorch's (CPU) profiler; returns each thread's events.
template <typename Fn>
prof::thread_event_lists profiled(Fn fn) {
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU,
                                                                   /*report_input_shapes=*/true,
                                                                   /*profile_memory=*/false, /*with_stack=*/false,
                                                                   /*with_flops=*/true));
  fn();
  return prof::disableProfilerLegacy();
}

struct OpStat {
  int calls = 0;
  double us = 0;
  double flop = 0;
};

// "[1,34,120,160] x [32,34,3,3]": a convolution's input and weight shapes.
std::string shape_text(const std::vector<std::vector<int64_t>>& shapes) {
  std::string text;
  for (size_t i = 0; i < shapes.size() && i < 2; ++i) {
    text += i ? " x [" : "[";
    for (size_t d = 0; d < shapes[i].size(); ++d) text += (d ? "," : "") + std::to_string(shapes[i][d]);
    text += "]";
  }
  return text;
}

// Outermost ops only (a conv's inner aten calls count towards the conv).
std::map<std::string, OpStat> op_stats(prof::thread_event_lists& lists) {
  std::map<std::string, OpStat> stats;
  for (auto& list : lists) {
    std::vector<prof::LegacyEvent*> stack;
    for (auto& e : list) {
      if (e.kindStr() == "push") {
        stack.push_back(&e);
      } else if (e.kindStr() == "pop" && !stack.empty()) {
        prof::LegacyEvent* start = stack.back();
        stack.pop_back();
        if (!stack.empty()) continue;
        // Convolutions by shape (input, weight): which layer the time is in.
        std::string key = start->name();
        double flop = static_cast<double>(start->flops());
        if (key == "aten::mkldnn_convolution") {
          // The 1x1 convolutions the networks send to oneDNN directly at
          // inference (ops.cpp); the profiler counts FLOPs for conv2d only.
          // 1x1, stride 1, no padding: output positions = input positions.
          const auto& sh = start->shapes();
          if (sh.size() >= 2 && sh[0].size() == 4 && sh[1].size() == 4 && sh[1][2] == 1 && sh[1][3] == 1)
            flop = 2.0 * sh[0][0] * sh[0][2] * sh[0][3] * sh[1][0] * sh[1][1];
          key = "aten::conv2d";  // what it is, whichever kernel LibTorch would have picked
        }
        if (key == "aten::conv2d") key += " " + shape_text(start->shapes());
        OpStat& s = stats[key];
        s.calls += 1;
        s.us += start->cpuElapsedUs(e);
        s.flop += flop;
      }
    }
  }
  return stats;
}

// Convolution FLOPs of one frame as LibTorch's profiler counts them
// (2 per multiply-add; transposed and 1-D convolutions are not counted).
double frame_gflop(BenchFrame& frame) {
  auto lists = profiled([&] { frame.run(); });
  double flop = 0;
  for (auto& [name, s] : op_stats(lists)) flop += s.flop;
  return flop / 1e9;
}

// GFLOP/s of one large 3x3 convolution (64 -> 64 channels on 320x240, NHWC,
// in the model's precision, as the networks run): what these cores reach on
// the dominant op class.
double big_conv_gflops(torch::ScalarType dtype) {
  const int64_t C = 64, H = 240, W = 320;
  auto x = torch::rand({1, C, H, W}).to(dtype).contiguous(at::MemoryFormat::ChannelsLast);
  auto w = torch::rand({C, C, 3, 3}).to(dtype).contiguous(at::MemoryFormat::ChannelsLast);
  auto b = torch::rand({C}).to(dtype);
  torch::conv2d(x, w, b, 1, 1);  // primitive creation
  const int reps = 5;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) torch::conv2d(x, w, b, 1, 1);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * C * C * 9 * H * W * reps / s / 1e9;
}

Result measure(const std::string& model, const std::string& arch, const Config& c, const Engine& e, int frames) {
  torch::set_num_threads(c.threads);
  c10::InferenceMode guard;
  BenchFrame frame(model, arch, c, e);
  frame.run();  // warm-up: oneDNN primitive creation
  double total = 0, best = 1e30;
  const long faults0 = minor_faults();
  for (int i = 0; i < frames; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    frame.run();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / c.batch;
    total += ms;
    best = std::min(best, ms);
  }
  const double faults = double(minor_faults() - faults0) / frames / c.batch;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const double rss = ru.ru_maxrss / 1024.0;
  return {total / frames, best, rss, faults, frame_gflop(frame) / c.batch, big_conv_gflops(e.dtype)};
}

// Per-op table: where one frame's time goes (outermost LibTorch ops, summed
// over `frames` profiled frames after a warm-up).
void profile(const std::string& model, const std::string& arch, const Config& c, const Engine& e, int frames) {
  torch::set_num_threads(c.threads);
  c10::InferenceMode guard;
  BenchFrame frame(model, arch, c, e);
  frame.run();
  auto t0 = std::chrono::steady_clock::now();
  auto lists = profiled([&] {
    for (int i = 0; i < frames; ++i) frame.run();
  });
  const double frame_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / frames;
  auto stats = op_stats(lists);
  std::vector<std::pair<std::string, OpStat>> rows(stats.begin(), stats.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.us > b.second.us; });
  double sum_ms = 0;
  for (auto& [n, s] : rows) sum_ms += s.us / 1000.0 / frames;
  std::printf("\n### Per-op profile: %dx%d, %d threads, %d frames (profiled: %.1f ms/frame; ops below sum to %.1f)\n\n",
              c.width, c.height, c.threads, frames, frame_ms, sum_ms);
  std::printf("| op | calls/frame | ms/frame | %% of ops | GFLOP/frame | GFLOP/s |\n|---|---|---|---|---|---|\n");
  for (auto& [name, s] : rows) {
    const double ms = s.us / 1000.0 / frames, gflop = s.flop / 1e9 / frames;
    std::printf("| %s | %d | %.2f | %.1f | %s | %s |\n", name.c_str(), s.calls / frames, ms, 100.0 * ms / sum_ms,
                gflop > 0 ? std::to_string(gflop).substr(0, 6).c_str() : "-",
                gflop > 0 ? std::to_string(int(gflop / (ms / 1000.0))).c_str() : "-");
  }
}

template <typename Fn>
bool in_child(Fn fn) {
  std::fflush(stdout);  // else the child prints the parent's buffered output again
  pid_t pid = fork();
  if (pid == 0) {
    // On a worker thread, as the element's streaming thread runs it.
    std::thread worker([&] {
      try {
        fn();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "timfusion-bench: %s\n", e.what());
        _exit(1);
      }
    });
    worker.join();
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string arch, model;
  int frames = 3, profile_threads = 0;
  bool quick = false, small = false, layouts = false, batching = false, temporal = false;
  Engine engine;
  std::string precision = "fp32";
  std::vector<Config> configs = {{640, 480, 1}, {640, 480, 2}, {1280, 1024, 1}, {1280, 1024, 2}};
  CLI::App app{"", "timfusion-bench"};
  tool::setup_app(app,
                  "Times the network's frame path on CPU as the Fuser (and so the element) runs it (BN folded, "
                  "InferenceMode, tensor memory reused, 8-bit luma out through the detail head's one-pass kernel "
                  "where it applies; --forward: TimNet::forward() instead), counts its page faults and convolution GFLOP, and measures one large 3x3 "
                  "convolution in the same process for the efficiency column (a Markdown table).",
                  "Each configuration runs in its own process, so its peak RSS is its own.");
  app.add_option("--arch", arch, "architecture (built-in name or JSON genotype; default ivif-light)")
      ->type_name("NAME|FILE");
  app.add_option("--model", model, "weights (.safetensors) or a shipped model name")->type_name("FILE|NAME");
  app.add_option("--frames", frames, "timed frames per configuration, after one untimed warm-up")
      ->check(CLI::Range(1, 1000000))
      ->type_name("N");
  auto* q = app.add_flag("--quick", quick, "640x480, 2 threads only");
  auto* sm = app.add_flag("--small", small, "640x480 only, 1 and 2 threads")->excludes(q);
  auto* lay = app.add_flag("--layouts", layouts, "640x480, 2 threads, NCHW vs NHWC")->excludes(q)->excludes(sm);
  app.add_flag("--batching", batching,
               "640x480, 1 thread: TimNet::forward() on 1, 2 and 4 frames per pass (as a scheduler batching "
               "frames of several rigs would run them), ms per frame")
      ->excludes(q)
      ->excludes(sm)
      ->excludes(lay);
  app.add_flag("--temporal", temporal,
               "instead: the element's temporal filter alone (default options, 640x480, 8- and 16-bit IR, RGB out), "
               "ms per frame on the calling thread");
  app.add_flag("--forward", engine.forward_only,
               "time TimNet::forward() (the training/eval path) instead of the Fuser's frame path");
  app.add_option("--precision", precision, "weights' precision: fp32, or bf16 (CPUs with AVX512-BF16)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->type_name("P");
  app.add_option("--profile", profile_threads, "instead: a per-op table of N frames at 640x480 with T threads")
      ->check(CLI::Range(1, 256))
      ->type_name("T");
  tool::parse_or_exit(app, argc, argv);
  if (precision == "bf16") {
    if (!Fuser::cpu_has_bf16()) {
      std::fprintf(stderr, "timfusion-bench: --precision bf16 needs a CPU with AVX512-BF16; this one has none\n");
      return 1;
    }
    engine.dtype = torch::kBFloat16;
  }
  if (quick) configs = {{640, 480, 2}};
  if (small) configs = {{640, 480, 1}, {640, 480, 2}};
  if (layouts) configs = {{640, 480, 2, false}, {640, 480, 2, true}};
  if (batching) {
    configs = {{640, 480, 1, true, 1}, {640, 480, 1, true, 2}, {640, 480, 1, true, 4}};
    engine.forward_only = true;  // one path for every batch size
  }
  if (temporal) return tool::bench_temporal(frames);
  const std::string shown = !arch.empty() ? arch : !model.empty() ? model : "ivif-light";
  if (profile_threads > 0) {
    std::printf("%s\n", at::get_parallel_info().c_str());
    return in_child([&] { profile(model, arch, {640, 480, profile_threads}, engine, frames); }) ? 0 : 1;
  }
  std::printf("timfusion-bench %s\n\n", TIMFUSION_VERSION);
  std::printf("Timed: %s, %s weights.\n\n",
              engine.forward_only ? "TimNet::forward() + clamp" : "the Fuser's CPU frame path (TimNet::forward_to_u8)",
              precision.c_str());
  std::printf("| arch | size | threads | layout | ms/frame (mean) | ms/frame (best) | fps | GFLOP/s | peak RSS MB "
              "| faults/frame | GFLOP/frame | 3x3 conv GFLOP/s | efficiency |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& c : configs) {
    int fd[2];
    if (pipe(fd) != 0) return 1;
    bool ran = in_child([&] {
      close(fd[0]);
      Result r{};
      // On a worker thread, as the element's streaming thread runs it: glibc's
      // main-thread heap hands large freed blocks back to the kernel, so per-frame
      // temporaries would cost page faults there (see timfusion_gst_bench.cpp).
      std::thread worker([&] {
        // One clean line for a bad model or arch (c10 and OpenCV messages trimmed).
        if (tool::guarded_main("timfusion-bench", [&] {
              r = measure(model, arch, c, engine, frames);
              return 0;
            }) != 0)
          _exit(1);
      });
      worker.join();
      if (write(fd[1], &r, sizeof r) != sizeof r) _exit(1);
    });
    close(fd[1]);
    Result r{};
    bool ok = ran && read(fd[0], &r, sizeof r) == sizeof r;
    close(fd[0]);
    if (!ok) return 1;
    const double gflops = r.gflop / (r.ms_mean / 1000.0);
    const std::string size = std::to_string(c.width) + "x" + std::to_string(c.height) +
                             (batching ? " (" + std::to_string(c.batch) + " per pass)" : "");
    std::printf("| %s | %s | %d | %s | %.1f | %.1f | %.2f | %.1f | %.0f | %.0f | %.2f | %.1f | %.0f%% |\n",
                shown.c_str(), size.c_str(), c.threads, c.channels_last ? "NHWC" : "NCHW", r.ms_mean, r.ms_min,
                1000.0 / r.ms_mean, gflops, r.rss_mb, r.faults_per_frame, r.gflop, r.conv_gflops,
                100.0 * gflops / r.conv_gflops);
    std::fflush(stdout);
  }
  std::printf("\nGFLOP: convolutions as LibTorch's profiler counts them (2 FLOP per multiply-add). Efficiency =\n"
              "the network's GFLOP/s over that of one large 3x3 convolution (64->64 channels, 320x240, NHWC,\n"
              "in the same precision)\n"
              "timed in the same process with the same threads.\n");
  return 0;
}
