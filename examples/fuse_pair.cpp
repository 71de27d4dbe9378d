// Fuses one infrared + visible pair with the default model (ivif-rt) of an
// installed libtimfusion. Build:
//   c++ -std=c++17 fuse_pair.cpp $(pkg-config --cflags --libs timfusion) -o fuse_pair
// Run:
//   ./fuse_pair ir.png vis.png fused.png
#include <cstdio>

#include <timfusion/error.h>
#include <timfusion/fuser.h>
#include <timfusion/pairs.h>
#include <timfusion/version.h>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s IR VIS OUT\n", argv[0]);
    return 2;
  }
  try {
    timfusion::FuserOptions options;  // default model, CPU or CUDA, fp32
    timfusion::Fuser fuser(options);
    cv::Mat ir = timfusion::read_image(argv[1]);   // 8-bit gray (or 16-bit, or colour: luma taken)
    cv::Mat vis = timfusion::read_image(argv[2]);  // 8-bit gray or BGR, same size as ir
    timfusion::write_image(argv[3], fuser.fuse(ir, vis));  // vis's type, chroma kept
    std::printf("timfusion %s: %s fused with %s\n", TIMFUSION_VERSION, argv[3], fuser.model_path().c_str());
  } catch (const timfusion::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
