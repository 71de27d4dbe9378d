// timfusion-fuse: fuse IR + visible images (single pair or two folders).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <opencv2/imgcodecs.hpp>

#include "timfusion/error.h"
#include "timfusion/fuser.h"
#include "timfusion/model_file.h"
#include "timfusion/pairs.h"
#include "timfusion/progress.h"
#include "timfusion/registration.h"

namespace fs = std::filesystem;
using namespace timfusion;

namespace {

const char* kUsage =
    "Usage: timfusion-fuse [--model W.safetensors] [--arch NAME|GENOTYPE.json]\n"
    "                      --ir IR --vis VIS --output OUT [options]\n"
    "\n"
    "Fuses an infrared and a visible image with a TIM network. IR, VIS and OUT\n"
    "are image files, or folders (pairs matched by base name, any format OpenCV\n"
    "reads; OUT/<name>.png is written for each pair).\n"
    "\n"
    "  --model FILE|NAME weights (.safetensors) or a shipped model name (ivif-light, ivif-rt);\n"
    "                    default: the installed ivif-rt model\n"
    "  --arch NAME|FILE  architecture for files without metadata:\n"
    "                    ivif-light, ivif-full, mmif-ct, mmif-pet, mmif-spect, or a JSON genotype\n"
    "  --resize-ir       scale IR to the visible size when they differ (default: error)\n"
    "  --threads N       CPU threads for inference (default: LibTorch's choice)\n"
    "  --device D        auto | cpu | cuda (default auto)\n"
    "  --precision P     fp32 | bf16 | fp16 (fp16 on CUDA only; default fp32)\n"
    "  --quiet           no progress bar\n"
    "  --help            this text\n"
    "\n"
    "Colour: the visible luma (BT.601) is fused and the visible chroma kept, so a\n"
    "colour visible image gives a colour result. 16-bit IR is scaled from 0..65535.\n"
    "Output pixels are round(clamp(y, 0, 1) * 255).\n";

struct Args {
  FuserOptions fuser;
  std::string ir, vis, output;
  bool resize_ir = false, quiet = false;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "timfusion-fuse: %s\n(see timfusion-fuse --help)\n", msg.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(k + " needs a value");
      return argv[++i];
    };
    if (k == "--help" || k == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (k == "--model") a.fuser.model = value();
    else if (k == "--arch") a.fuser.arch = value();
    else if (k == "--ir") a.ir = value();
    else if (k == "--vis") a.vis = value();
    else if (k == "--output" || k == "-o") a.output = value();
    else if (k == "--resize-ir") a.resize_ir = true;
    else if (k == "--quiet" || k == "-q") a.quiet = true;
    else if (k == "--threads") {
      std::string v = value();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (*end || n < 1 || n > 256) usage_error("--threads needs a number from 1 to 256, got \"" + v + "\"");
      a.fuser.threads = static_cast<int>(n);
    } else if (k == "--device") a.fuser.device = parse_device(value());
    else if (k == "--precision") a.fuser.precision = parse_precision(value());
    else usage_error("unknown option \"" + k + "\"");
  }
  if (a.ir.empty() || a.vis.empty() || a.output.empty()) usage_error("--ir, --vis and --output are required");
  return a;
}

void fuse_pair(Fuser& fuser, const std::string& ir_path, const std::string& vis_path, const std::string& out_path,
               bool resize_ir) {
  cv::Mat ir = read_image(ir_path, cv::IMREAD_UNCHANGED);
  cv::Mat vis = read_image(vis_path, cv::IMREAD_UNCHANGED);
  if (vis.depth() != CV_8U) throw Error(vis_path + ": the visible image must be 8-bit");
  if (ir.depth() != CV_8U && !(ir.depth() == CV_16U && ir.channels() == 1))
    throw Error(ir_path + ": the IR image must be 8-bit, or 16-bit gray");
  if (ir.size() != vis.size()) {
    if (!resize_ir)
      throw Error(ir_path + " is " + std::to_string(ir.cols) + "x" + std::to_string(ir.rows) + " but " + vis_path +
                  " is " + std::to_string(vis.cols) + "x" + std::to_string(vis.rows) +
                  " (pass --resize-ir to scale IR to the visible size)");
    if (ir.channels() > 1) ir = luma_of(ir, ChannelOrder::BGR);
    ir = warp_ir(ir, Homography{}, vis.size());
  }
  write_image(out_path, fuser.fuse(ir, vis, ChannelOrder::BGR));
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  try {
    a = parse(argc, argv);
  } catch (const Error& e) {
    usage_error(e.what());
  }
  try {
    const bool dir_mode = is_directory(a.ir) || is_directory(a.vis);
    std::vector<ImagePair> pairs;
    if (dir_mode) {
      if (!is_directory(a.ir) || !is_directory(a.vis))
        throw Error("--ir and --vis must both be folders or both be files");
      std::vector<std::string> unmatched;
      pairs = list_pairs(a.ir, a.vis, &unmatched);
      for (const auto& u : unmatched) std::fprintf(stderr, "timfusion-fuse: warning: no partner for %s\n", u.c_str());
      std::error_code ec;
      fs::create_directories(a.output, ec);
      if (!is_directory(a.output)) throw Error(a.output + ": cannot create output folder");
    } else {
      if (!fs::exists(a.ir)) throw Error(a.ir + ": file not found");
      if (!fs::exists(a.vis)) throw Error(a.vis + ": file not found");
    }
    Fuser fuser(a.fuser);
    if (!a.quiet)
      std::fprintf(stderr, "timfusion-fuse: %s (%s) on %s, %s\n", fuser.model_path().c_str(),
                   fuser.arch().name.c_str(), device_name(fuser.device()), precision_name(fuser.precision()));
    if (!dir_mode) {
      fuse_pair(fuser, a.ir, a.vis, a.output, a.resize_ir);
      return 0;
    }
    Progress bar("fusing", static_cast<long>(pairs.size()), !a.quiet);
    long done = 0;
    int failed = 0;
    for (const auto& p : pairs) {
      try {
        fuse_pair(fuser, p.ir, p.vis, (fs::path(a.output) / (p.name + ".png")).string(), a.resize_ir);
      } catch (const Error& e) {
        // One bad pair does not lose the others; the exit status reports it.
        std::fprintf(stderr, "%stimfusion-fuse: %s\n", a.quiet ? "" : "\n", e.what());
        ++failed;
      }
      bar.update(++done, p.name);
    }
    bar.finish();
    if (failed) {
      std::fprintf(stderr, "timfusion-fuse: %d of %zu pairs failed\n", failed, pairs.size());
      return 1;
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "timfusion-fuse: %s\n", e.what());
    return 1;
  }
  return 0;
}
