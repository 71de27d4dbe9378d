// Hostile use (issue 27), the core and tool side: decompression bombs (a
// small image file that declares gigapixels) and tools asked to write over
// their own inputs. Inputs are generated here; each case is bounded in time
// and memory.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "test_support.h"
#include "timfusion/error.h"
#include "timfusion/image_header.h"
#include "timfusion/output_guard.h"
#include "timfusion/pairs.h"
#include "error_of.h"

using namespace timfusion;
namespace fs = std::filesystem;

using tftest::error_of;
using tftest::contains;

namespace {



void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s += static_cast<char>(v >> (8 * i));
}

void put_chunk(std::string& png, const char* type, const std::string& data) {
  put_be32(png, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  png += body;
  put_be32(png, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
}

// A valid RGB PNG of width x height black pixels: the rows (filter byte +
// zeros) are deflated one at a time, so neither this test nor the file holds
// the image (12000x12000: 432 MB of pixels in a ~0.4 MB file).
std::string bomb_png(uint32_t width, uint32_t height, bool with_pixels = true) {
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit, RGB, deflate, no filter, no interlace
  put_chunk(png, "IHDR", ihdr);
  if (!with_pixels) return png;
  z_stream z{};
  deflateInit(&z, 1);
  const std::string row(size_t{width} * 3 + 1, '\0');
  std::string idat;
  char buf[1 << 16];
  for (uint32_t y = 0; y <= height; ++y) {
    const bool last = y == height;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(row.data()));
    z.avail_in = last ? 0 : static_cast<uInt>(row.size());
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof buf;
      deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
      idat.append(buf, sizeof buf - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  put_chunk(png, "IDAT", idat);
  put_chunk(png, "IEND", "");
  return png;
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<long>(bytes.size()));
}

std::string tool(const std::string& name) { return "timeout 60 " + tftest::build_dir() + "/core/" + name; }

// A folder with ir/ and vis/ holding one small real pair "a".
std::string pair_folder(const std::string& tag) {
  const std::string d = tftest::temp_dir(tag);
  fs::create_directories(d + "/ir");
  fs::create_directories(d + "/vis");
  cv::Mat ir = cv::imread(tftest::data("tno42/ir/06.png"), cv::IMREAD_GRAYSCALE);
  cv::Mat vis = cv::imread(tftest::data("tno42/vis/06.png"), cv::IMREAD_GRAYSCALE);
  cv::imwrite(d + "/ir/a.png", ir);
  cv::imwrite(d + "/vis/a.png", vis);
  return d;
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

// ---------------------------------------------------------------- decompression bombs

TEST(ImageBombs, HeaderSizeIsReadForEachFormat) {
  const std::string d = tftest::temp_dir("bomb-formats");
  cv::Mat img(37, 53, CV_8UC3, cv::Scalar(10, 20, 30));
  for (const char* ext : {".png", ".jpg", ".bmp", ".tif", ".webp", ".ppm", ".pgm", ".hdr"}) {
    const std::string path = d + "/x" + ext;
    cv::Mat m = img;
    if (std::string(ext) == ".pgm") cv::cvtColor(img, m, cv::COLOR_BGR2GRAY);
    if (std::string(ext) == ".hdr") img.convertTo(m, CV_32FC3, 1.0 / 255);
    ASSERT_TRUE(cv::imwrite(path, m)) << ext;
    const ImageHeader h = parse_image_header(file_bytes(path), path);
    EXPECT_EQ(53, h.width) << ext;
    EXPECT_EQ(37, h.height) << ext;
    EXPECT_EQ(read_image(path).size(), cv::Size(53, 37)) << ext;
  }
}

TEST(ImageBombs, ReadImageRefusesADeclaredGigapixelBeforeDecoding) {
  const std::string path = tftest::temp_dir("bomb-read") + "/bomb.png";
  spit(path, bomb_png(9000, 9000));  // 81 MP, 243 MB of pixels
  ASSERT_LT(fs::file_size(path), size_t{4} << 20);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string e = error_of([&] { read_image(path); });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(contains(e, path)) << e;
  EXPECT_TRUE(contains(e, "9000x9000")) << e;
  EXPECT_TRUE(contains(e, "before decoding")) << e;
  EXPECT_LT(s, 1.0) << "the bomb was decoded: " << s << " s";
  // A declared size in a cut-off file is named too, not decoded.
  spit(path, bomb_png(30000, 30000, false));
  EXPECT_TRUE(contains(error_of([&] { read_image(path); }), "30000x30000"));
}

// Every tool reads its images through read_image: each refuses the bomb
// within a second of its own start-up (a tool that only prints --version
// takes ~0.3 s idle, 1.8 s on a loaded 2-core machine: LibTorch's loading)
// and under 300 MB (before: timfusion-calibrate 12 GB, timfusion-fuse up to
// 3.6 GB, timfusion-eval 1 GB).
TEST(ImageBombs, EveryToolRefusesQuicklyWithBoundedMemory) {
  const std::string d = pair_folder("bomb-tools");
  const std::string bomb_dir = d + "/bomb";
  fs::create_directories(bomb_dir + "/ir");
  fs::create_directories(bomb_dir + "/vis");
  spit(bomb_dir + "/vis/a.png", bomb_png(12000, 12000));
  fs::copy_file(d + "/ir/a.png", bomb_dir + "/ir/a.png");
  const std::string ir = bomb_dir + "/ir/a.png", vis = bomb_dir + "/vis/a.png";
  const std::vector<std::pair<std::string, std::string>> cmds = {
      {"fuse", tool("timfusion-fuse") + " --quiet --device cpu --ir " + ir + " --vis " + vis + " --output " + d +
                   "/o.png"},
      {"fuse folders", tool("timfusion-fuse") + " --quiet --device cpu --ir " + bomb_dir + "/ir --vis " + bomb_dir +
                           "/vis --output " + d + "/out"},
      {"calibrate", tool("timfusion-calibrate") + " --quiet --ir " + ir + " --vis " + vis + " --output " + d +
                        "/c.json"},
      {"eval", tool("timfusion-eval") + " --no-progress --ir " + bomb_dir + "/ir --vis " + bomb_dir + "/vis --fused " +
                   d + "/vis"},
  };
  const double startup = tftest::run_measured(tool("timfusion-fuse") + " --version").seconds;
  for (const auto& [name, cmd] : cmds) {
    const tftest::Measured m = tftest::run_measured(cmd);
    std::printf("%s: refused in %.2f s (start-up alone %.2f s), peak RSS %ld MB\n", name.c_str(), m.seconds, startup,
                m.max_rss_mb);
    EXPECT_NE(0, m.rc) << name << ": " << m.out;
    EXPECT_TRUE(contains(m.out, vis)) << name << " names the visible file: " << m.out;
    EXPECT_TRUE(contains(m.out, "12000x12000")) << name << ": " << m.out;
    EXPECT_FALSE(contains(m.out, "--resize-ir")) << name << ": no misleading hint: " << m.out;
    EXPECT_LT(m.max_rss_mb, 300) << name;
    EXPECT_LT(m.seconds, startup + (name == "fuse folders" ? 3.0 : 1.0)) << name << ": " << m.out;
  }
}

// ---------------------------------------------------------------- output over input

TEST(OutputOverInput, GuardComparesFileIdentityNotStrings) {
  const std::string d = pair_folder("guard");
  fs::create_directory_symlink(d + "/vis", d + "/link");
  for (const std::string& out : {d + "/vis", d + "/./vis/", d + "/link", d + "/ir/../vis"}) {
    const std::string e = error_of([&] { refuse_output_over_inputs(out, {d + "/ir", d + "/vis"}, "output folder"); });
    EXPECT_TRUE(contains(e, "would be overwritten")) << out << ": " << e;
  }
  EXPECT_EQ("(no error)", error_of([&] { refuse_output_over_inputs(d + "/new", {d + "/vis"}, "output folder"); }));
  EXPECT_EQ("(no error)", error_of([&] { refuse_output_over_inputs(d + "/ir", {d + "/vis"}, "output folder"); }));
}

// Issue 27: `timfusion-fuse --ir D/ir --vis D/vis --output D/vis` replaced
// the visible images with fused ones, exit 0.
TEST(OutputOverInput, ToolsRefuseToWriteOverTheirInputs) {
  const std::string d = pair_folder("fuse-over");
  const std::string before_ir = file_bytes(d + "/ir/a.png"), before_vis = file_bytes(d + "/vis/a.png");
  fs::create_hard_link(d + "/vis/a.png", d + "/hard.png");
  const std::string fuse = tool("timfusion-fuse") + " --quiet --device cpu ";
  const std::vector<std::string> cmds = {
      fuse + "--ir " + d + "/ir --vis " + d + "/vis --output " + d + "/vis",
      fuse + "--ir " + d + "/ir --vis " + d + "/vis --output " + d + "/./ir/",
      fuse + "--ir " + d + "/ir/a.png --vis " + d + "/vis/a.png --output " + d + "/vis/a.png",
      fuse + "--ir " + d + "/ir/a.png --vis " + d + "/vis/a.png --output " + d + "/ir/../ir/a.png",
      fuse + "--ir " + d + "/ir/a.png --vis " + d + "/vis/a.png --output " + d + "/hard.png",
  };
  const std::string calibrate = tool("timfusion-calibrate") + " --quiet --ir " + d + "/ir/a.png --vis " + d + "/vis/a.png ";
  for (const auto& cmd : {cmds[0], cmds[1], cmds[2], cmds[3], cmds[4], calibrate + "--output " + d + "/vis/a.png",
                          calibrate + "--output " + d + "/c.json --overlay " + d + "/./ir/a.png"}) {
    const tftest::Measured m = tftest::run_measured(cmd);
    EXPECT_EQ(1, m.rc) << cmd << "\n" << m.out;
    EXPECT_TRUE(contains(m.out, "would be overwritten")) << cmd << "\n" << m.out;
  }
  EXPECT_EQ(before_ir, file_bytes(d + "/ir/a.png"));
  EXPECT_EQ(before_vis, file_bytes(d + "/vis/a.png"));
  // A separate output still works.
  const tftest::Measured ok = tftest::run_measured(fuse + "--ir " + d + "/ir --vis " + d + "/vis --output " + d + "/out");
  EXPECT_EQ(0, ok.rc) << ok.out;
  EXPECT_TRUE(fs::exists(d + "/out/a.png"));
}

// ---------------------------------------------------------------- messages name the cause and the file

// Issue 27: an IR FIFO or symlink loop in folder mode was reported as "no
// partner" for its visible image.
TEST(Messages, UnreadableFilesInFoldersAreNamedNotUnpartnered) {
  const std::string d = pair_folder("msg-fifo");
  fs::copy_file(d + "/vis/a.png", d + "/vis/f.png");
  fs::copy_file(d + "/vis/a.png", d + "/vis/l.png");
  ASSERT_EQ(0, mkfifo((d + "/ir/f.png").c_str(), 0600));
  fs::create_symlink(d + "/ir/l.png", d + "/ir/l.png.tmp");
  fs::rename(d + "/ir/l.png.tmp", d + "/ir/l.png");  // l.png -> itself: a symlink loop
  const tftest::Measured m = tftest::run_measured(tool("timfusion-fuse") + " --quiet --device cpu --ir " + d +
                                                  "/ir --vis " + d + "/vis --output " + d + "/out");
  EXPECT_EQ(1, m.rc) << m.out;
  EXPECT_FALSE(contains(m.out, "no partner")) << m.out;
  EXPECT_TRUE(contains(m.out, d + "/ir/f.png: the image is not a regular file")) << m.out;
  EXPECT_TRUE(contains(m.out, d + "/ir/l.png: cannot read the image (Too many levels of symbolic links)")) << m.out;
  EXPECT_TRUE(fs::exists(d + "/out/a.png")) << "the good pair is still fused";
}

// Issue 27: timfusion-eval on 16-bit fused images named neither the file nor
// the bit depth.
TEST(Messages, EvalNamesA16BitFusedFile) {
  const std::string d = pair_folder("msg-eval16");
  fs::create_directories(d + "/fused");
  cv::Mat f16;
  cv::imread(d + "/vis/a.png", cv::IMREAD_GRAYSCALE).convertTo(f16, CV_16U, 257);
  cv::imwrite(d + "/fused/a.png", f16);
  const tftest::Measured m = tftest::run_measured(tool("timfusion-eval") + " --no-progress --ir " + d + "/ir --vis " +
                                                  d + "/vis --fused " + d + "/fused");
  EXPECT_EQ(1, m.rc) << m.out;
  EXPECT_TRUE(contains(m.out, d + "/fused/a.png: the fused image is 16-bit")) << m.out;
}

// Issue 27: timfusion-calibrate named the IR file for a problem with the
// visible frame.
TEST(Messages, CalibrateNamesTheFrameWithTheProblem) {
  const std::string d = pair_folder("msg-calib");
  cv::imwrite(d + "/vis/a.png", cv::Mat(cv::imread(d + "/vis/a.png").size(), CV_8UC1, cv::Scalar(128)));
  const tftest::Measured m = tftest::run_measured(tool("timfusion-calibrate") + " --quiet --ir " + d +
                                                  "/ir/a.png --vis " + d + "/vis/a.png --output " + d + "/c.json");
  EXPECT_EQ(1, m.rc) << m.out;
  EXPECT_TRUE(contains(m.out, "the visible frame " + d + "/vis/a.png is nearly uniform")) << m.out;
}
