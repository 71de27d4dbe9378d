// timfusion-train --device / precision / loader_thread: the device plumbing
// as far as a machine without a GPU can check it (Debian's LibTorch is
// CPU-only): explicit cpu, auto, the clear error for cuda, resuming a
// checkpoint on another device, and the loader thread changing nothing.
#include <gtest/gtest.h>

#include <filesystem>

#include "run/config.h"
#include "run/run_dir.h"
#include "timfusion/safetensors.h"
#include "training_test_util.h"

using namespace timfusion;
using namespace timfusion::train;
using namespace trtest;
namespace fs = std::filesystem;

namespace {

// "device: cpu, fp32" line of a run's output ("" when missing).
std::string device_line(const std::string& out) {
  auto at = out.find("  device: ");
  if (at == std::string::npos) return "";
  return out.substr(at + 10, out.find('\n', at) - at - 10);
}

bool same_weights(const std::string& a, const std::string& b, std::string* diff) {
  SafetensorsFile fa = read_safetensors(a), fb = read_safetensors(b);
  if (fa.tensors.size() != fb.tensors.size()) return *diff = "tensor count", false;
  for (const auto& t : fa.tensors) {
    const TensorEntry* u = fb.find(t.name);
    if (!u || u->data != t.data) return *diff = t.name, false;
  }
  return true;
}

std::string small_run_opts(const std::string& data) {
  return " train --data " + data + " --arch ivif-light --channels 8 --crop 32 --batch 2 --threads 1 --preview-every 0"
         " --set preview_size=32 --set preview_pairs=1 --steps 4 --checkpoint-every 2";
}

}  // namespace

TEST(Device, CpuAutoAndTheCudaError) {
  std::string data = make_pairs(tftest::temp_dir("dev-data") + "/d", {"a", "b"}, 48, 40, false);
  std::string tmp = tftest::temp_dir("dev"), out;
  const std::string opts = small_run_opts(data);
  ASSERT_EQ(tftest::run(train_exe() + opts + " --device cpu --out " + tmp + "/cpu", &out), 0) << out;
  EXPECT_EQ(device_line(out), "cpu, fp32") << out;
  ASSERT_EQ(tftest::run(train_exe() + opts + " --out " + tmp + "/auto", &out), 0) << out;  // device auto
  const std::string automatic = device_line(out);
  std::string diff;
  if (automatic.rfind("cpu", 0) == 0) {
    // No CUDA here (Debian's LibTorch, CI): auto is the CPU, same weights bit for bit.
    EXPECT_EQ(automatic, "cpu, fp32");
    EXPECT_TRUE(same_weights(tmp + "/cpu/model.safetensors", tmp + "/auto/model.safetensors", &diff)) << diff;
    EXPECT_EQ(tftest::run(train_exe() + opts + " --device cuda --out " + tmp + "/cuda", &out), 1);
    EXPECT_NE(out.find("device \"cuda\": CUDA is not available"), std::string::npos) << out;
    EXPECT_NE(out.find("--device cpu"), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(tmp + "/cuda/log.csv"));
  } else {
    // A CUDA build on a GPU machine (scripts/gpu_check.sh): auto is the GPU, in bf16.
    EXPECT_EQ(automatic, "cuda:0, bf16 autocast, loader thread (pinned memory)");
  }
  // Values that cannot work are named.
  EXPECT_EQ(tftest::run(train_exe() + opts + " --device gpu --out " + tmp + "/gpu", &out), 2);  // a usage error
  EXPECT_NE(out.find("bad value \"gpu\" for \"device\": expected auto, cpu, cuda or cuda:N"), std::string::npos) << out;
  EXPECT_EQ(tftest::run(train_exe() + opts + " --device cpu --precision bf16 --out " + tmp + "/bf16", &out), 1);
  EXPECT_NE(out.find("mixed precision runs on CUDA only"), std::string::npos) << out;
  EXPECT_EQ(tftest::run(train_exe() + " meta --precision fp16 --device cpu --steps 1 --out " + tmp + "/meta", &out), 1);
  EXPECT_NE(out.find("precision \"fp16\": this command trains in fp32 only"), std::string::npos) << out;
}

TEST(Device, CheckpointResumesOnTheCpuAndTheLoaderThreadChangesNothing) {
  std::string data = make_pairs(tftest::temp_dir("devres-data") + "/d", {"a", "b", "c"}, 40, 44, true);
  std::string tmp = tftest::temp_dir("devres"), out;
  const std::string opts = small_run_opts(data) + " --quiet";
  ASSERT_EQ(tftest::run(train_exe() + opts + " --device cpu --out " + tmp + "/full", &out), 0) << out;
  // Started on the default device (the GPU where there is one), resumed on the CPU.
  ASSERT_EQ(tftest::run(train_exe() + opts + " --stop-at 3 --out " + tmp + "/moved", &out), 0) << out;
  const SafetensorsFile ck = read_safetensors(tmp + "/moved/checkpoint.safetensors");
  for (const auto& t : ck.tensors)  // plain host tensors: loadable anywhere
    ASSERT_TRUE(t.dtype == DType::F32 || t.dtype == DType::I64) << t.name << " " << dtype_name(t.dtype);
  ASSERT_EQ(tftest::run(train_exe() + " train --quiet --resume " + tmp + "/moved --device cpu", &out), 0) << out;
  EXPECT_EQ(log_column(tmp + "/moved", "step").size(), 4u);
  auto cfg = json::parse(read_text(tmp + "/moved/config.json"));
  EXPECT_EQ(cfg["device"], "cpu");  // where it continued
  std::string diff;
  // Bit-identical when both sessions ran on the CPU (this machine has no GPU or auto chose the CPU).
  std::string first_out;
  tftest::run(train_exe() + small_run_opts(data) + " --steps 1 --out " + tmp + "/probe", &first_out);
  if (first_out.find("device: cpu") != std::string::npos) {
    EXPECT_TRUE(same_weights(tmp + "/full/model.safetensors", tmp + "/moved/model.safetensors", &diff)) << diff;
  }
  // The loader thread prepares batches ahead; the batches and so the weights are the same.
  ASSERT_EQ(tftest::run(train_exe() + opts + " --device cpu --set loader_thread=on --out " + tmp + "/thread", &out), 0)
      << out;
  EXPECT_TRUE(same_weights(tmp + "/full/model.safetensors", tmp + "/thread/model.safetensors", &diff)) << diff;
  EXPECT_TRUE(same_weights(tmp + "/full/checkpoint.safetensors", tmp + "/thread/checkpoint.safetensors", &diff)) << diff;
}
