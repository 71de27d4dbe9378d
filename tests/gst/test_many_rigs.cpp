// Issue 28: many rigs in one process. Eight timfusion elements (eight camera
// pairs) in one pipeline with the default threads=0 share the process's CPU
// scheduler (one fusion thread per core, whatever the number of elements)
// and one prepared network: the weight file is read once.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gst_test_util.h"
#include "test_support.h"
#include "timfusion/model_file.h"
#include "timfusion/shared_cpu.h"

using namespace tfgst_test;
namespace fs = std::filesystem;

namespace {

constexpr int W = 160, H = 120, FPS = 30, kRigs = 8, kFrames = 10;

std::string rig(int i, const std::string& model) {
  const std::string n = std::to_string(kFrames), id = std::to_string(i);
  return "videotestsrc num-buffers=" + n + " pattern=smpte horizontal-speed=" + std::to_string(i + 1) + " ! " +
         caps_string(GST_VIDEO_FORMAT_RGB, W, H, FPS, 1) + " ! f" + id + ".vis videotestsrc num-buffers=" + n +
         " pattern=ball ! " + caps_string(GST_VIDEO_FORMAT_GRAY8, W, H, FPS, 1) + " ! f" + id + ".ir timfusion name=f" +
         id + " model=" + model + " ! appsink name=out" + id + " sync=false ";
}

}  // namespace

TEST(ManyRigs, EightElementsShareOneNetworkAndTheCoresWithoutOversubscribing) {
  // A file of its own, so that no other test's Fuser holds it already.
  const fs::path model = fs::path(tftest::temp_dir("many-rigs")) / "rig.safetensors";
  fs::copy_file(timfusion::resolve_model_path("ivif-rt"), model, fs::copy_options::overwrite_existing);
  std::string description;
  for (int i = 0; i < kRigs; ++i) description += rig(i, model.string());

  const uint64_t reads_before = timfusion::model_file_reads();
  std::vector<std::unique_ptr<Output>> outs;
  RunResult r;
  run_pipeline(description, r, 300, [&](GstElement* p) {
    for (int i = 0; i < kRigs; ++i) {
      outs.push_back(std::make_unique<Output>());
      collect_appsink(p, *outs.back(), ("out" + std::to_string(i)).c_str());
    }
  });
  ASSERT_TRUE(r.parsed) << r.parse_error;
  EXPECT_TRUE(r.bus.eos);
  EXPECT_TRUE(r.bus.errors.empty()) << joined(r.bus.errors);
  for (int i = 0; i < kRigs; ++i) EXPECT_EQ(static_cast<size_t>(kFrames), outs[i]->buffers.size()) << "rig " << i;
  EXPECT_EQ(reads_before + 1, timfusion::model_file_reads()) << "eight elements, one read of the weight file";
  auto& cpu = timfusion::SharedCpu::process();
  EXPECT_GE(cpu.tasks_finished(), static_cast<uint64_t>(kRigs * kFrames));
  EXPECT_LE(cpu.peak_running(), cpu.workers()) << "never more fusion tasks at once than cores";
}
