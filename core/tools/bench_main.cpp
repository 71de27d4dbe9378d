// timfusion-bench: forward time and peak memory of a TIM network on CPU.
// Each configuration runs in its own child process so that its peak RSS is
// its own. Prints a Markdown table.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "nn/networks.h"
#include "nn/state_dict.h"
#include "timfusion/error.h"
#include "timfusion/model_file.h"
#include "tool_cli.h"

using namespace timfusion;
namespace tool = timfusion::tool;

namespace {

struct Config {
  int width, height, threads;
  bool channels_last = true;
};

struct Result {
  double ms_mean, ms_min;
  double rss_mb;
};

Result measure(const std::string& model, const std::string& arch, const Config& c, int frames) {
  torch::set_num_threads(c.threads);
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
  if (c.channels_last) net->to_channels_last();
  net->fold_bn();
  c10::InferenceMode guard;
  auto fmt = c.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  auto ir = torch::rand({1, 1, c.height, c.width}).contiguous(fmt);
  auto vis = torch::rand({1, 1, c.height, c.width}).contiguous(fmt);
  net->forward(ir, vis);  // warm-up: oneDNN primitive creation
  double total = 0, best = 1e30;
  for (int i = 0; i < frames; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto y = net->forward(ir, vis).clamp(0, 1);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    total += ms;
    best = std::min(best, ms);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return {total / frames, best, ru.ru_maxrss / 1024.0};
}

}  // namespace

int main(int argc, char** argv) {
  std::string arch, model;
  int frames = 3;
  bool quick = false, layouts = false;
  std::vector<Config> configs = {{640, 480, 1}, {640, 480, 2}, {1280, 1024, 1}, {1280, 1024, 2}};
  CLI::App app{"", "timfusion-bench"};
  tool::setup_app(app, "Times the network forward (BN folded, InferenceMode) per frame on CPU (a Markdown table).",
                  "Each configuration runs in its own process, so its peak RSS is its own.");
  app.add_option("--arch", arch, "architecture (built-in name or JSON genotype; default ivif-light)")
      ->type_name("NAME|FILE");
  app.add_option("--model", model, "weights (.safetensors) or a shipped model name")->type_name("FILE|NAME");
  app.add_option("--frames", frames, "timed frames per configuration, after one untimed warm-up")
      ->check(CLI::Range(1, 1000000))
      ->type_name("N");
  auto* q = app.add_flag("--quick", quick, "640x480, 2 threads only");
  app.add_flag("--layouts", layouts, "640x480, 2 threads, NCHW vs NHWC")->excludes(q);
  tool::parse_or_exit(app, argc, argv);
  if (quick) configs = {{640, 480, 2}};
  if (layouts) configs = {{640, 480, 2, false}, {640, 480, 2, true}};
  std::printf("timfusion-bench %s\n\n", TIMFUSION_VERSION);
  std::printf("| arch | size | threads | layout | ms/frame (mean) | ms/frame (best) | fps | GFLOP/s* | peak RSS MB |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& c : configs) {
    int fd[2];
    if (pipe(fd) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
      close(fd[0]);
      Result r{};
      // On a worker thread, as the element's streaming thread runs it: glibc's
      // main-thread heap hands large freed blocks back to the kernel, so per-frame
      // temporaries would cost page faults there (see timfusion_gst_bench.cpp).
      std::thread worker([&] {
        // One clean line for a bad model or arch (c10 and OpenCV messages trimmed).
        if (tool::guarded_main("timfusion-bench", [&] {
              r = measure(model, arch, c, frames);
              return 0;
            }) != 0)
          _exit(1);
      });
      worker.join();
      if (write(fd[1], &r, sizeof r) != sizeof r) _exit(1);
      _exit(0);
    }
    close(fd[1]);
    Result r{};
    bool ok = read(fd[0], &r, sizeof r) == sizeof r;
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!ok) return 1;
    // 77.87 GFLOP per 640x480 frame for ivif-light (TIM.md), scaled by pixels.
    const std::string shown = !arch.empty() ? arch : !model.empty() ? model : "ivif-light";
    double gflop = shown == "ivif-light" ? 77.87 * (double(c.width) * c.height) / (640.0 * 480.0) : 0;
    std::printf("| %s | %dx%d | %d | %s | %.1f | %.1f | %.2f | %s | %.0f |\n", shown.c_str(), c.width, c.height, c.threads, c.channels_last ? "NHWC" : "NCHW",
                r.ms_mean, r.ms_min, 1000.0 / r.ms_mean,
                gflop > 0 ? std::to_string(int(gflop / (r.ms_mean / 1000.0))).c_str() : "-", r.rss_mb);
    std::fflush(stdout);
  }
  std::printf("\n* GFLOP/s counts ivif-light's 77.87 GFLOP per 640x480 frame (2 FLOP per MAC).\n");
  return 0;
}
