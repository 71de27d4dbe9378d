// timfusion-train under hostile use (issue 27): a diverging run, a corrupted
// checkpoint, --resume of a folder whose checkpoint is gone. Fast settings
// (8-channel network, 32 px crops, 1 thread).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "run/checkpoint_integrity.h"
#include "run/divergence.h"
#include "timfusion/error.h"
#include "timfusion/safetensors.h"
#include "training_test_util.h"
#include "error_of.h"

using namespace timfusion;
using namespace timfusion::train;
using namespace trtest;
namespace fs = std::filesystem;

using tftest::error_of;
using tftest::contains;

namespace {



std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

bool all_finite(const SafetensorsFile& f) {
  for (const auto& e : f.tensors) {
    if (e.dtype != DType::F32) continue;
    for (size_t i = 0; i + 4 <= e.data.size(); i += 4) {
      float v;
      std::memcpy(&v, e.data.data() + i, 4);
      if (!std::isfinite(v)) return false;
    }
  }
  return true;
}

TensorEntry f32(const std::string& name, std::vector<float> v) {
  TensorEntry e;
  e.name = name;
  e.dtype = DType::F32;
  e.shape = {static_cast<int64_t>(v.size())};
  e.data.resize(v.size() * 4);
  std::memcpy(e.data.data(), v.data(), e.data.size());
  return e;
}

}  // namespace

TEST(Divergence, GuardStopsOnExplosionNotOnNoise) {
  DivergenceGuard g;
  // A healthy run: falls, with noise of a few times between crops.
  for (int k = 0; k < 200; ++k) g.check(0.5 / (1 + 0.01 * k) * (k % 7 == 0 ? 4.0 : 1.0), k);
  EXPECT_GT(g.reference(), 0);
  const std::string e = error_of([&] { g.check(1.7e14, 200); });
  EXPECT_TRUE(contains(e, "exploded to 1.7e+14 at step 200")) << e;
  EXPECT_TRUE(contains(e, "lower lr")) << e;
  DivergenceGuard n;
  n.check(0.3, 1);
  EXPECT_TRUE(contains(error_of([&] { n.check(NAN, 2); }), "became nan at step 2"));
  DivergenceGuard slow;  // a climb by 2x per step is caught once it is 1000x the best
  double l = 0.2;
  std::string climb = "(no error)";
  for (int k = 0; k < 40 && climb == "(no error)"; ++k, l *= 2) climb = error_of([&] { slow.check(l, k); });
  EXPECT_TRUE(contains(climb, "exploded")) << climb;
}

TEST(Divergence, NonFiniteTensorsAreNeverWritten) {
  const std::string dir = tftest::temp_dir("nonfinite");
  SafetensorsFile f;
  f.tensors.push_back(f32("fusion/conv.weight", {1.0f, INFINITY, 2.0f}));
  const std::string e = error_of([&] { write_checkpoint(dir + "/c.safetensors", f); });
  EXPECT_TRUE(contains(e, "fusion/conv.weight")) << e;
  EXPECT_TRUE(contains(e, "inf")) << e;
  EXPECT_FALSE(fs::exists(dir + "/c.safetensors"));
  TensorEntry h;  // fp16 NaN, by its bits
  h.name = "h";
  h.dtype = DType::F16;
  h.shape = {1};
  h.data = {0x01, 0x7E};
  SafetensorsFile g;
  g.tensors.push_back(h);
  EXPECT_TRUE(contains(error_of([&] { require_finite(g, "x"); }), "\"h\" holds nan"));
}

// Issue 27: `--lr 10` reached a loss of 1.7e14 at step 2 and 2.7e17 at the
// end, reported "done", exit 0, and wrote a model holding inf.
TEST(Divergence, DivergingRunExitsNonZeroWithoutAModel) {
  const std::string data = make_pairs(tftest::temp_dir("diverge-data") + "/d", {"a", "b", "c"}, 53, 41, true);
  const std::string run = tftest::temp_dir("diverge") + "/r";
  std::string out;
  const int rc = tftest::run(train_exe() + " train --data " + data + fast_opts() +
                                 " --lr 10 --steps 40 --checkpoint-every 5 --out " + run,
                             &out);
  EXPECT_EQ(1, rc) << out;
  EXPECT_TRUE(contains(out, "exploded") || contains(out, "became")) << out;
  EXPECT_TRUE(contains(out, "lower lr")) << out;
  EXPECT_FALSE(fs::exists(run + "/model.safetensors")) << out;
  if (fs::exists(run + "/checkpoint.safetensors")) {
    EXPECT_TRUE(all_finite(read_safetensors(run + "/checkpoint.safetensors")));
  }
}

// The same for the other training loops: before, adapt, search and meta
// stopped on NaN only, and downstream's segmentation loss too.
TEST(Divergence, AdaptAndSearchStopOnAnExplodingLoss) {
  const std::string data = make_pairs(tftest::temp_dir("diverge-loops-data") + "/d", {"a", "b", "c", "d"}, 53, 41, true);
  const std::string root = tftest::temp_dir("diverge-loops");
  const std::vector<std::pair<std::string, std::string>> runs = {
      {"adapt", " adapt --data " + data + " --channels 4 --crop 32 --batch 2 --threads 1 --quiet --lr 10 --steps 60"
                " --checkpoint-every 5 --set loss.ssim_window=7 --out " + root + "/adapt"},
      {"search", " search --data " + data + " --channels 4 --crop 32 --batch 2 --threads 1 --quiet --lr 10"
                 " --steps 60 --checkpoint-every 5 --set loss.ssim_window=7 --out " + root + "/search"},
  };
  for (const auto& [name, args] : runs) {
    std::string out;
    const int rc = tftest::run(train_exe() + args, &out);
    EXPECT_EQ(1, rc) << name << ": " << out;
    EXPECT_TRUE(contains(out, "exploded") || contains(out, "became")) << name << ": " << out;
    EXPECT_TRUE(contains(out, "lower lr")) << name << ": " << out;
    EXPECT_FALSE(fs::exists(root + "/" + name + "/model.safetensors")) << name;
    if (fs::exists(root + "/" + name + "/checkpoint.safetensors"))
      EXPECT_TRUE(all_finite(read_safetensors(root + "/" + name + "/checkpoint.safetensors"))) << name;
  }
}

TEST(Checkpoint, CorruptionIsNamedOnResume) {
  const std::string data = make_pairs(tftest::temp_dir("corrupt-data") + "/d", {"a", "b"}, 53, 41, true);
  const std::string run = tftest::temp_dir("corrupt") + "/r";
  std::string out;
  ASSERT_EQ(0, tftest::run(train_exe() + " train --data " + data + fast_opts() + " --steps 4 --checkpoint-every 2 "
                                                                                 "--stop-at 2 --out " + run,
                           &out))
      << out;
  const std::string ckpt = run + "/checkpoint.safetensors";
  ASSERT_TRUE(fs::exists(ckpt)) << out;
  EXPECT_TRUE(read_safetensors(ckpt).metadata.count(kTensorsChecksumKey));
  // Flip bits in the last tensor byte (the data section ends the file).
  std::string bytes = file_bytes(ckpt);
  bytes[bytes.size() - 3] ^= 0x55;
  std::ofstream(ckpt, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<long>(bytes.size()));
  EXPECT_EQ(1, tftest::run(train_exe() + " train --quiet --resume " + run, &out)) << out;
  EXPECT_TRUE(contains(out, ckpt)) << out;
  EXPECT_TRUE(contains(out, "checkpoint is corrupt")) << out;
  EXPECT_FALSE(contains(out, "nan")) << out;
}

TEST(Checkpoint, ResumeWithoutCheckpointChangesNothing) {
  const std::string data = make_pairs(tftest::temp_dir("nockpt-data") + "/d", {"a", "b"}, 53, 41, true);
  const std::string run = tftest::temp_dir("nockpt") + "/r";
  std::string out;
  ASSERT_EQ(0, tftest::run(train_exe() + " train --data " + data + fast_opts() + " --steps 3 --out " + run, &out))
      << out;
  fs::remove(run + "/checkpoint.safetensors");
  const std::string model = file_bytes(run + "/model.safetensors"), log = file_bytes(run + "/log.csv");
  EXPECT_EQ(1, tftest::run(train_exe() + " train --quiet --resume " + run, &out)) << out;
  EXPECT_TRUE(contains(out, "checkpoint.safetensors: not found")) << out;
  EXPECT_EQ(model, file_bytes(run + "/model.safetensors"));
  EXPECT_EQ(log, file_bytes(run + "/log.csv"));
}

// Issue 27: "internal error: filesystem error ..." for a symlink loop in the
// run folder's path.
TEST(Messages, RunFolderInASymlinkLoopIsNamed) {
  const std::string data = make_pairs(tftest::temp_dir("loop-data") + "/d", {"a", "b"}, 53, 41, true);
  const std::string dir = tftest::temp_dir("loop");
  fs::create_symlink(dir + "/loop", dir + "/loop");
  std::string out;
  EXPECT_EQ(1, tftest::run(train_exe() + " train --data " + data + fast_opts() + " --steps 2 --out " + dir +
                               "/loop/run",
                           &out));
  EXPECT_FALSE(contains(out, "internal error")) << out;
  EXPECT_TRUE(contains(out, dir + "/loop")) << out;
  EXPECT_TRUE(contains(out, "symlink loop")) << out;
}

// Issue 27: 1x1 training images gave a raw LibTorch padding message naming no
// file, and left a partial run folder.
TEST(Messages, TinyTrainingImagesAreNamedAndLeaveNoRunFolder) {
  const std::string data = make_pairs(tftest::temp_dir("tiny-data") + "/d", {"a", "b"}, 53, 41, true);
  cv::imwrite(data + "/ir/b.png", cv::Mat(1, 1, CV_8UC1, cv::Scalar(7)));
  cv::imwrite(data + "/vis/b.png", cv::Mat(1, 1, CV_8UC3, cv::Scalar(7, 7, 7)));
  const std::string run = tftest::temp_dir("tiny") + "/r";
  std::string out;
  EXPECT_EQ(1, tftest::run(train_exe() + " train --data " + data + fast_opts() + " --steps 2 --out " + run, &out));
  EXPECT_TRUE(contains(out, data + "/ir/b.png: the image is 1x1; training images must be at least 8x8")) << out;
  EXPECT_FALSE(contains(out, "LibTorch")) << out;
  EXPECT_FALSE(fs::exists(run)) << "no run folder is left behind";
}
