// timfusion-fuse: fuse IR + visible images (single pair or two folders).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "timfusion/error.h"
#include "timfusion/fuser.h"
#include "timfusion/fuser_pool.h"
#include "timfusion/model_file.h"
#include "timfusion/output_guard.h"
#include "timfusion/pairs.h"
#include "timfusion/progress.h"
#include "timfusion/registration.h"
#include "timfusion/thread_limits.h"
#include "tool_cli.h"

namespace fs = std::filesystem;
using namespace timfusion;

namespace {

const char* kSummary = "Fuses an infrared and a visible image with a TIM network.";
const char* kDetails =
    "IR, VIS and OUT are image files, or folders (pairs matched by base name, any\n"
    "format OpenCV reads; OUT/<name>.png is written for each pair).\n"
    "\n"
    "Colour: the visible luma (BT.601) is fused and the visible chroma kept, so a\n"
    "colour visible image gives a colour result. 16-bit IR is scaled from 0..65535.\n"
    "Output pixels are round(clamp(y, 0, 1) * 255).\n"
    "\n"
    "Folders on the CPU: min(threads, 4) pairs are read, fused and written at once,\n"
    "each by its own single-threaded worker when threads <= 4 (the threads are\n"
    "shared among them), so the output does not depend on the thread count.";

struct Args {
  FuserOptions fuser;
  std::string ir, vis, output;
  bool resize_ir = false, quiet = false, check_model = false;
};

// A CLI11 check from one of the core's parsers (they throw Error with the reason).
template <class Parse>
std::function<std::string(const std::string&)> checked_by(Parse parse) {
  return [parse](const std::string& v) {
    try {
      parse(v);
      return std::string();
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
}

Args parse(int argc, char** argv) {
  Args a;
  std::string device = "auto", precision = "fp32";
  CLI::App app{"", "timfusion-fuse"};
  tool::setup_app(app, kSummary, kDetails);
  // Required unless --check-model (checked after parsing).
  app.add_option("--ir", a.ir, "infrared image or folder (required)")->type_name("IR");
  app.add_option("--vis", a.vis, "visible image or folder (required)")->type_name("VIS");
  app.add_option("-o,--output", a.output, "fused image, or folder for folder input (required)")->type_name("OUT");
  app.add_option("--model", a.fuser.model,
                 "weights (.safetensors) or a shipped model name (ivif-light, ivif-rt); default: the installed "
                 "ivif-rt model")
      ->type_name("FILE|NAME");
  app.add_option("--arch", a.fuser.arch,
                 "architecture for files without metadata: ivif-light, ivif-full, mmif-ct, mmif-pet, mmif-spect, "
                 "or a JSON genotype")
      ->type_name("NAME|FILE");
  app.add_flag("--resize-ir", a.resize_ir, "scale IR to the visible size when they differ (default: error)");
  app.add_option("--threads", a.fuser.threads,
                 "CPU threads for inference (default: one per core); with folders, pairs are fused side by side "
                 "(see below)")
      ->check(CLI::Range(1, kMaxThreads))
      ->type_name("N");
  app.add_option("--device", device, "auto | cpu | cuda")
      ->check(checked_by(parse_device))
      ->capture_default_str()
      ->type_name("D");
  app.add_option("--precision", precision, "fp32 | bf16 | fp16 (fp16 on CUDA only)")
      ->check(checked_by(parse_precision))
      ->capture_default_str()
      ->type_name("P");
  app.add_flag("-q,--quiet", a.quiet, "no progress bar");
  // For tools outside the C++ code (timfusion-export): the weight file checked
  // by the loader the element uses, rather than by a second implementation.
  app.add_flag("--check-model", a.check_model,
               "instead of fusing: load and validate the model (header, architecture, every tensor's name, shape "
               "and type), print {\"path\": ..., \"arch\": ...} as JSON on stdout and exit");
  tool::parse_or_exit(app, argc, argv);
  if (!a.check_model)
    for (const auto& [value, name] : {std::pair{&a.ir, "--ir"}, {&a.vis, "--vis"}, {&a.output, "--output"}})
      if (value->empty()) tool::usage_error("timfusion-fuse", std::string(name) + " is required");
  a.fuser.device = parse_device(device);
  a.fuser.precision = parse_precision(precision);
  return a;
}

struct LoadedPair {
  cv::Mat ir, vis;
};

// Reads and checks one pair (before any model is loaded in the single-file
// form, so that a bad image is refused at once).
LoadedPair read_pair(const std::string& ir_path, const std::string& vis_path, bool resize_ir) {
  LoadedPair p{read_image(ir_path, cv::IMREAD_UNCHANGED), read_image(vis_path, cv::IMREAD_UNCHANGED)};
  if (p.vis.depth() != CV_8U) throw Error(vis_path + ": the visible image must be 8-bit");
  if (p.ir.depth() != CV_8U && !(p.ir.depth() == CV_16U && p.ir.channels() == 1))
    throw Error(ir_path + ": the IR image must be 8-bit, or 16-bit gray");
  if (p.ir.size() != p.vis.size()) {
    if (!resize_ir)
      throw Error(ir_path + " is " + std::to_string(p.ir.cols) + "x" + std::to_string(p.ir.rows) + " but " +
                  vis_path + " is " + std::to_string(p.vis.cols) + "x" + std::to_string(p.vis.rows) +
                  " (pass --resize-ir to scale IR to the visible size)");
    if (p.ir.channels() > 1) p.ir = luma_of(p.ir, ChannelOrder::BGR);
    p.ir = warp_ir(p.ir, Homography{}, p.vis.size());
  }
  return p;
}

void fuse_pair(Fuser& fuser, const LoadedPair& p, const std::string& out_path) {
  write_image(out_path, fuser.fuse(p.ir, p.vis, ChannelOrder::BGR));
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  return tool::guarded_main("timfusion-fuse", [&]() -> int {
    if (a.check_model) {
      a.fuser.device = Device::Cpu;  // validation only: no GPU needed
      Fuser fuser(a.fuser);
      std::printf("{\"path\": %s, \"arch\": %s}\n", nlohmann::json(fuser.model_path()).dump().c_str(),
                  fuser.arch().to_json().c_str());
      return 0;
    }
    const bool dir_mode = is_directory(a.ir) || is_directory(a.vis);
    std::vector<ImagePair> pairs;
    if (dir_mode) {
      if (!is_directory(a.ir) || !is_directory(a.vis))
        throw Error("--ir and --vis must both be folders or both be files");
      std::vector<std::string> unmatched;
      pairs = list_pairs(a.ir, a.vis, &unmatched);
      for (const auto& u : unmatched) std::fprintf(stderr, "timfusion-fuse: warning: no partner for %s\n", u.c_str());
      refuse_output_over_inputs(a.output, {a.ir, a.vis}, "output folder");
      std::error_code ec;
      fs::create_directories(a.output, ec);
      if (!is_directory(a.output)) throw Error(a.output + ": cannot create output folder");
    } else {
      if (!fs::exists(a.ir)) throw Error(a.ir + ": file not found");
      if (!fs::exists(a.vis)) throw Error(a.vis + ": file not found");
      refuse_output_over_inputs(a.output, {a.ir, a.vis}, "output file");
    }
    // The single pair is read before the model is loaded: a bad image is refused at once.
    LoadedPair single;
    if (!dir_mode) single = read_pair(a.ir, a.vis, a.resize_ir);
    Fuser fuser(a.fuser);
    if (!a.quiet)
      std::fprintf(stderr, "timfusion-fuse: %s (%s) on %s, %s\n", fuser.model_path().c_str(),
                   fuser.arch().name.c_str(), device_name(fuser.device()), precision_name(fuser.precision()));
    if (!dir_mode) {
      fuse_pair(fuser, single, a.output);
      return 0;
    }
    // Whole pairs side by side (as the element does with frames in a non-live
    // pipeline): small networks do not scale when one image is split over the
    // cores, and reading and writing the images runs in parallel too.
    const int max_workers = fuser.device() == Device::Cpu
                            ? std::min(FuserPool::workers_for(fuser.threads()), std::max(1, static_cast<int>(pairs.size())))
                            : 1;
    int workers = max_workers;
    if (workers > 1) {
      // The memory rule (FuserPool::frames_fit), judged on the first pair's size:
      // ivif-light at 640x480 needs ~1 GB a frame, so its pairs go one at a time over the threads.
      try {
        const LoadedPair first = read_pair(pairs[0].ir, pairs[0].vis, a.resize_ir);
        fuser.warmup(first.vis.size());
        if (!FuserPool::frames_fit(fuser)) workers = 1;
        if (workers > 1) fuser.release_memory();
      } catch (const std::exception&) {
        // That pair is reported when its turn comes; the others go side by side.
      }
    }
    std::vector<std::unique_ptr<Fuser>> own;  // one per worker (when there are several)
    if (workers > 1) {
      FuserOptions per_worker = a.fuser;
      per_worker.threads = fuser.threads() / workers;
      per_worker.device = Device::Cpu;
      for (int w = 0; w < workers; ++w) own.push_back(std::make_unique<Fuser>(per_worker));
    }
    Progress bar("fusing", static_cast<long>(pairs.size()), !a.quiet);
    std::mutex mu;  // the progress bar, stderr and the counters
    long done = 0;
    int failed = 0;
    std::atomic<size_t> next{0};
    auto work = [&](Fuser& f) {
      for (size_t i; (i = next++) < pairs.size();) {
        const ImagePair& p = pairs[i];
        std::string error;
        try {
          const std::string out = (fs::path(a.output) / (p.name + ".png")).string();
          // Per file too: a hard link or symlink in the output folder may be an input.
          refuse_output_over_inputs(out, {p.ir, p.vis}, "output file");
          fuse_pair(f, read_pair(p.ir, p.vis, a.resize_ir), out);
        } catch (const std::exception& e) {  // Error, or bad_alloc: never out of a worker thread
          error = e.what();
        }
        std::lock_guard<std::mutex> lock(mu);
        if (!error.empty()) {
          // One bad pair does not lose the others; the exit status reports it.
          std::fprintf(stderr, "%stimfusion-fuse: %s\n", a.quiet ? "" : "\n", error.c_str());
          ++failed;
        }
        bar.update(++done, p.name);
      }
    };
    if (own.empty()) {
      work(fuser);
    } else {
      std::vector<std::thread> threads;
      for (auto& f : own) threads.emplace_back(work, std::ref(*f));
      for (auto& t : threads) t.join();
    }
    bar.finish();
    if (failed) {
      std::fprintf(stderr, "timfusion-fuse: %d of %zu pairs failed\n", failed, pairs.size());
      return 1;
    }
    return 0;
  });
}
