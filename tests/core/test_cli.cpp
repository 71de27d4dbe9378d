// timfusion-fuse as a user runs it, on real shared pairs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "test_support.h"
#include "timfusion/pairs.h"

namespace fs = std::filesystem;
using namespace timfusion;

namespace {

std::string fuse_cmd() { return tftest::build_dir() + "/core/timfusion-fuse --quiet "; }
std::string q(const std::string& s) { return "'" + s + "'"; }

}  // namespace

TEST(Cli, ReproducesTheReferenceOnGrayTnoPairsWithinOneLevel) {
  // Random weights under the reference's key names, no metadata: --arch names it.
  std::string out_dir = tftest::temp_dir("cli-tno");
  for (const char* pair : {"06", "12", "37"}) {  // 575x475, 595x328, 359x247: odd sizes
    std::string out = out_dir + "/" + pair + ".png", log;
    int rc = tftest::run(fuse_cmd() + "--model " + q(tftest::fixtures("ivif-light-c48-nometa.safetensors")) +
                             " --arch ivif-light --ir " + q(tftest::data(std::string("tno42/ir/") + pair + ".png")) +
                             " --vis " + q(tftest::data(std::string("tno42/vis/") + pair + ".png")) + " --output " +
                             q(out),
                         &log);
    ASSERT_EQ(rc, 0) << log;
    cv::Mat got = cv::imread(out, cv::IMREAD_UNCHANGED);
    cv::Mat want = cv::imread(tftest::fixtures(std::string("ivif-light-c48.expected.tno") + pair + ".png"),
                              cv::IMREAD_GRAYSCALE);
    ASSERT_EQ(got.type(), CV_8UC1);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_LE(cv::norm(got, want, cv::NORM_INF), 1) << pair;
  }
}

TEST(Cli, DirectoryModeFusesEveryPairWithColourKept) {
  // Roadscene: colour visible, odd sizes; three pairs via a folder of links.
  std::string root = tftest::temp_dir("cli-dir");
  fs::create_directories(root + "/ir");
  fs::create_directories(root + "/vis");
  std::vector<std::string> names = {"FLIR_00006", "FLIR_00018", "FLIR_00060"};
  for (auto& n : names) {
    fs::create_symlink(tftest::data("roadscene/ir/" + n + ".png"), root + "/ir/" + n + ".png");
    fs::create_symlink(tftest::data("roadscene/vis/" + n + ".png"), root + "/vis/" + n + ".png");
  }
  std::string log;
  int rc = tftest::run(fuse_cmd() + "--model " + q(tftest::fixtures("ivif-light-c48.safetensors")) + " --ir " +
                           q(root + "/ir") + " --vis " + q(root + "/vis") + " --output " + q(root + "/out") +
                           " --threads 2",
                       &log);
  ASSERT_EQ(rc, 0) << log;
  for (auto& n : names) {
    cv::Mat out = cv::imread(root + "/out/" + n + ".png", cv::IMREAD_UNCHANGED);
    cv::Mat vis = cv::imread(tftest::data("roadscene/vis/" + n + ".png"), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(out.empty()) << n;
    EXPECT_EQ(out.size(), vis.size());
    EXPECT_EQ(out.channels(), vis.channels());
  }
}

// Folders: pairs are fused side by side, one single-threaded worker each, so
// the files do not depend on the thread count; a bad pair among them is
// reported and the others are still written.
TEST(Cli, FolderPairsSideBySideEqualOneAtATime) {
  std::string root = tftest::temp_dir("cli-parallel");
  fs::create_directories(root + "/ir");
  fs::create_directories(root + "/vis");
  const std::vector<std::string> names = {"06", "12", "20", "37", "41"};  // different sizes
  for (const auto& n : names) {
    fs::create_symlink(tftest::data("tno42/ir/" + n + ".png"), root + "/ir/" + n + ".png");
    fs::create_symlink(tftest::data("tno42/vis/" + n + ".png"), root + "/vis/" + n + ".png");
  }
  cv::imwrite(root + "/ir/zz_bad.png", cv::Mat(20, 30, CV_8UC1, cv::Scalar(9)));  // not the visible size
  cv::imwrite(root + "/vis/zz_bad.png", cv::Mat(40, 50, CV_8UC1, cv::Scalar(9)));
  std::string log1, log3;
  const std::string common = fuse_cmd() + "--model ivif-rt --ir " + q(root + "/ir") + " --vis " + q(root + "/vis");
  EXPECT_EQ(1, tftest::run(common + " --threads 1 --output " + q(root + "/one"), &log1)) << log1;
  EXPECT_EQ(1, tftest::run(common + " --threads 3 --output " + q(root + "/three"), &log3)) << log3;
  EXPECT_NE(std::string::npos, log3.find("zz_bad.png")) << log3;
  EXPECT_NE(std::string::npos, log3.find("1 of 6 pairs failed")) << log3;
  for (const auto& n : names) {
    cv::Mat a = cv::imread(root + "/one/" + n + ".png", cv::IMREAD_UNCHANGED);
    cv::Mat b = cv::imread(root + "/three/" + n + ".png", cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(a.empty()) << n;
    ASSERT_EQ(a.size(), b.size()) << n;
    EXPECT_EQ(0, cv::norm(a, b, cv::NORM_INF)) << n;
  }
}

TEST(Cli, MissingFilesAndBadOptionsAreClearErrors) {
  std::string log;
  std::string out = tftest::temp_dir("cli-err") + "/o.png";
  EXPECT_EQ(tftest::run(fuse_cmd() + "--ir /nonexistent/ir.png --vis /nonexistent/vis.png --output " + out, &log), 1);
  EXPECT_NE(log.find("/nonexistent/ir.png: file not found"), std::string::npos) << log;
  EXPECT_EQ(tftest::run(fuse_cmd() + "--frobnicate", &log), 2);
  EXPECT_NE(log.find("unknown option"), std::string::npos);
  EXPECT_EQ(tftest::run(fuse_cmd() + "--threads zero --ir a --vis b --output c", &log), 2);
  EXPECT_EQ(tftest::run(fuse_cmd() + "--ir " + q(tftest::data("tno42/ir/06.png")) + " --vis " +
                            q(tftest::data("tno42/vis/06.png")) + " --output " + out + " --model /nope.safetensors",
                        &log),
            1);
  EXPECT_NE(log.find("/nope.safetensors: model file not found"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(out));  // nothing half-written
}

// --check-model: the weight file through the loader the element uses, for
// tools outside the C++ code (timfusion-export trusts nothing else).
TEST(Cli, CheckModelValidatesAndDescribesTheFile) {
  std::string log;
  EXPECT_EQ(tftest::run(fuse_cmd() + "--check-model --model ivif-rt", &log), 0) << log;
  EXPECT_NE(log.find("\"path\": \""), std::string::npos) << log;
  EXPECT_NE(log.find("ivif-rt.safetensors\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"name\":\"ivif-rt\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"downscale\":4"), std::string::npos) << log;
  // A file that is not a weight file, and weights that do not fit the architecture.
  std::string bad = tftest::temp_dir("cli-check") + "/bad.safetensors";
  std::ofstream(bad) << "not a weight file at all";
  EXPECT_EQ(tftest::run(fuse_cmd() + "--check-model --model " + q(bad), &log), 1);
  EXPECT_NE(log.find(bad), std::string::npos) << log;
  EXPECT_EQ(tftest::run(fuse_cmd() + "--check-model --model ivif-rt --arch ivif-light", &log), 1) << log;
  // Without --check-model the images stay required.
  EXPECT_EQ(tftest::run(fuse_cmd() + "--vis a.png --output o.png", &log), 2);
  EXPECT_NE(log.find("--ir is required"), std::string::npos) << log;
}

TEST(Cli, MismatchedSizesNeedResizeIr) {
  std::string dir = tftest::temp_dir("cli-size");
  cv::Mat ir = cv::imread(tftest::data("tno42/ir/37.png"), cv::IMREAD_GRAYSCALE), half;
  cv::resize(ir, half, cv::Size(ir.cols / 2, ir.rows / 2));
  cv::imwrite(dir + "/ir.png", half);
  std::string log, base = fuse_cmd() + "--model " + q(tftest::fixtures("ivif-light-c48.safetensors")) + " --ir " +
                          q(dir + "/ir.png") + " --vis " + q(tftest::data("tno42/vis/37.png")) + " --output " +
                          q(dir + "/out.png");
  EXPECT_EQ(tftest::run(base, &log), 1);
  EXPECT_NE(log.find("--resize-ir"), std::string::npos) << log;
  EXPECT_EQ(tftest::run(base + " --resize-ir", &log), 0) << log;
  cv::Mat out = cv::imread(dir + "/out.png", cv::IMREAD_UNCHANGED);
  EXPECT_EQ(out.size(), ir.size());
}

TEST(Cli, SixteenBitIrIsAccepted) {
  std::string dir = tftest::temp_dir("cli-16");
  cv::Mat ir = cv::imread(tftest::data("tno42/ir/37.png"), cv::IMREAD_GRAYSCALE), ir16;
  ir.convertTo(ir16, CV_16U, 257.0);
  cv::imwrite(dir + "/ir16.png", ir16);
  std::string log;
  ASSERT_EQ(tftest::run(fuse_cmd() + "--model " + q(tftest::fixtures("ivif-light-c48.safetensors")) + " --ir " +
                            q(dir + "/ir16.png") + " --vis " + q(tftest::data("tno42/vis/37.png")) + " --output " +
                            q(dir + "/out.png"),
                        &log),
            0)
      << log;
  cv::Mat got = cv::imread(dir + "/out.png", cv::IMREAD_UNCHANGED);
  cv::Mat want = cv::imread(tftest::fixtures("ivif-light-c48.expected.tno37.png"), cv::IMREAD_GRAYSCALE);
  EXPECT_LE(cv::norm(got, want, cv::NORM_INF), 1);
}
