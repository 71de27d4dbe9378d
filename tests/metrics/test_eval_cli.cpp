// timfusion-eval on real TNO data: output formats, pairing, comparison, plot and errors.
#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include <stdlib.h>

#include "helpers.h"

#ifndef TIMFUSION_EVAL_EXE
#error "the build passes the path of timfusion-eval as TIMFUSION_EVAL_EXE"
#endif

namespace fs = std::filesystem;

namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string l; std::getline(ss, l);) out.push_back(l);
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string f; std::getline(ss, f, sep);) out.push_back(f);
  return out;
}

// A small TNO subset (pairs 01-03) copied into a temporary folder, so each run is
// quick and the tests can delete or replace files. Copies, not links: the folder is
// removed recursively afterwards.
class EvalCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "timfusion-eval-XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    root = templ;
    const std::vector<std::pair<std::string, std::string>> folders = {
        {"ir", "ir"}, {"vis", "vis"}, {"DenseFuse", "fused/DenseFuse"}, {"SeAFusion", "fused/SeAFusion"}};
    for (const auto& [to, from] : folders) {
      fs::create_directories(root + "/" + to);
      for (const char* n : {"01", "02", "03"})
        fs::copy_file(tftest::data("tno42/" + from + "/" + n + ".png"), root + "/" + to + "/" + n + ".png");
    }
  }
  void TearDown() override {
    std::error_code ec;
    if (!root.empty()) fs::remove_all(root, ec);
  }

  // Runs timfusion-eval; stdout only in *out, stderr in *err.
  int eval(const std::string& args, std::string* out, std::string* err = nullptr) {
    const std::string err_file = root + "/stderr.txt";
    // A subshell keeps stderr out of the captured output (tftest::run appends 2>&1).
    int rc = tftest::run("(" + std::string(TIMFUSION_EVAL_EXE) + " --no-progress " + args + " 2>" + err_file + ")", out);
    if (err) {
      std::ifstream f(err_file);
      *err = std::string(std::istreambuf_iterator<char>(f), {});
    }
    return rc;
  }

  std::string sources() const { return "--ir " + root + "/ir --vis " + root + "/vis "; }

  std::string root;
};

}  // namespace

TEST_F(EvalCli, CsvHasImageMetricValueRowsThenOneMeanRowPerMetric) {
  std::string out;
  ASSERT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --metrics en,sd,qabf", &out), 0) << out;
  auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u + 3 * 3 + 3) << out;
  EXPECT_EQ(lines[0], "image,metric,value");
  std::map<std::string, double> sum;
  for (size_t i = 1; i <= 9; ++i) {
    auto f = split(lines[i], ',');
    ASSERT_EQ(f.size(), 3u) << lines[i];
    EXPECT_EQ(f[0], (std::vector<std::string>{"01", "02", "03"})[(i - 1) / 3]);
    EXPECT_EQ(f[1], (std::vector<std::string>{"en", "sd", "qabf"})[(i - 1) % 3]);
    sum[f[1]] += std::stod(f[2]);
  }
  for (size_t i = 10; i < 13; ++i) {
    auto f = split(lines[i], ',');
    ASSERT_EQ(f.size(), 3u);
    EXPECT_EQ(f[0], "mean");
    EXPECT_NEAR(std::stod(f[2]), sum[f[1]] / 3, 1e-8 * std::abs(sum[f[1]]));
  }
}

TEST_F(EvalCli, CsvValuesAreTheLibraryValues) {
  std::string out;
  ASSERT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --metrics mi,vif", &out), 0) << out;
  auto lines = lines_of(out);
  const double mi02 = mtest::metric("mi", mtest::tno("ir", "02"), mtest::tno("vis", "02"), mtest::tno("fused/DenseFuse", "02"));
  bool seen = false;
  for (const auto& l : lines)
    if (l.rfind("02,mi,", 0) == 0) {
      EXPECT_NEAR(std::stod(split(l, ',')[2]), mi02, 1e-9 * mi02);
      seen = true;
    }
  EXPECT_TRUE(seen) << out;
}

TEST_F(EvalCli, DefaultComputesEveryMetricAndNamesTheColourMode) {
  // One pair keeps the all-metrics run short.
  fs::remove(root + "/ir/02.png");
  fs::remove(root + "/ir/03.png");
  std::string out, err;
  ASSERT_EQ(eval(sources() + "--fused " + root + "/DenseFuse", &out, &err), 0) << out << err;
  std::vector<std::string> names;
  for (const auto& l : lines_of(out))
    if (l.rfind("01,", 0) == 0) names.push_back(split(l, ',')[1]);
  EXPECT_EQ(names, timfusion::metric_names());
  EXPECT_NE(err.find("colour mode: per-channel"), std::string::npos) << err;
  EXPECT_NE(err.find("without a partner"), std::string::npos) << "vis 02, 03 have no IR: " << err;
  ASSERT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --metrics en --color luma", &out, &err), 0);
  EXPECT_NE(err.find("colour mode: luma"), std::string::npos) << err;
}

TEST_F(EvalCli, MarkdownTableHasAnImageRowPerPairAndAMeanRow) {
  std::string out;
  ASSERT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --metrics en,ssim --format md", &out), 0) << out;
  auto lines = lines_of(out);
  std::vector<std::string> table;
  for (const auto& l : lines)
    if (!l.empty() && l[0] == '|') table.push_back(l);
  ASSERT_EQ(table.size(), 2u + 3 + 1) << out;
  EXPECT_EQ(table[0], "| image | en | ssim |");
  EXPECT_EQ(table[1], "|---|---:|---:|");
  EXPECT_EQ(table[2].rfind("| 01 | ", 0), 0u);
  EXPECT_EQ(table[5].rfind("| mean | ", 0), 0u);
  EXPECT_EQ(split(table[5], '|').size(), 4u);  // "", " mean ", " en ", " ssim "
  EXPECT_NE(out.find("Colour mode: per-channel"), std::string::npos);
}

TEST_F(EvalCli, CompareShowsMethodsSideBySide) {
  std::string out;
  const std::string args = sources() + "--fused " + root + "/DenseFuse --compare SeA=" + root +
                           "/SeAFusion --metrics en,qabf ";
  ASSERT_EQ(eval(args + "--format md", &out), 0) << out;
  std::vector<std::string> table;
  for (const auto& l : lines_of(out))
    if (!l.empty() && l[0] == '|') table.push_back(l);
  ASSERT_EQ(table.size(), 4u) << out;
  EXPECT_EQ(table[0], "| method | en | qabf |");
  EXPECT_EQ(table[2].rfind("| DenseFuse | ", 0), 0u);
  EXPECT_EQ(table[3].rfind("| SeA | ", 0), 0u);

  ASSERT_EQ(eval(args, &out), 0) << out;
  auto lines = lines_of(out);
  EXPECT_EQ(lines[0], "method,image,metric,value");
  EXPECT_EQ(lines.size(), 1u + 2 * (3 * 2 + 2));
  EXPECT_EQ(lines.back().rfind("SeA,mean,qabf,", 0), 0u) << lines.back();
}

TEST_F(EvalCli, PlotWritesABarChartPng) {
  std::string out;
  const std::string png = root + "/chart.png";
  ASSERT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --compare SeAFusion=" + root +
                     "/SeAFusion --metrics en,sd,nabf --plot " + png,
                 &out),
            0)
      << out;
  cv::Mat img = cv::imread(png, cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty());
  EXPECT_GE(img.cols, 300);
  EXPECT_GE(img.rows, 300);
  // Not a blank canvas: the bars are drawn in colour.
  cv::Scalar mean = cv::mean(img);
  EXPECT_LT(mean[0] + mean[1] + mean[2], 3 * 254.0);
}

// With one method, each metric is scaled to its largest single-image value, not to
// the mean itself (which drew every bar at full height): bars of metrics whose
// images vary differently have different heights.
TEST_F(EvalCli, PlotOfOneMethodDoesNotDrawEveryBarFull) {
  std::string out;
  const std::string png = root + "/one.png";
  ASSERT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --metrics en,sd,sf,ag,qabf --plot " + png, &out), 0)
      << out;
  cv::Mat img = cv::imread(png, cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty());
  // Bar heights: per column, the pixels of the first method's colour (BGR 180,119,31).
  std::vector<int> heights;
  int last = 0;
  for (int x = 0; x < img.cols; ++x) {
    int h = 0;
    for (int y = 0; y < img.rows; ++y) h += img.at<cv::Vec3b>(y, x) == cv::Vec3b(180, 119, 31);
    if (h > 20 && h != last) heights.push_back(h);  // > 20: not the legend swatch (14 px)
    last = h;
  }
  ASSERT_GE(heights.size(), 2u) << "expected several bars";
  const auto [lo, hi] = std::minmax_element(heights.begin(), heights.end());
  EXPECT_LT(*lo, *hi) << "every bar has the same height";
  EXPECT_LT(*lo, 300) << "a bar below the full plot height (300 px)";
}

TEST_F(EvalCli, JpegFusedImagesPairWithPngSources) {
  fs::create_directories(root + "/jpg");
  for (const char* n : {"01", "02", "03"})
    ASSERT_TRUE(cv::imwrite(root + "/jpg/" + n + ".jpg", mtest::tno("fused/DenseFuse", n)));
  std::string out;
  ASSERT_EQ(eval(sources() + "--fused " + root + "/jpg --metrics en", &out), 0) << out;
  auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u + 3 + 1);
  EXPECT_EQ(lines[1].rfind("01,en,", 0), 0u);
  // JPEG changes the pixels a little, not the pairing.
  const double png_en = mtest::metric("en", mtest::tno("ir", "01"), mtest::tno("vis", "01"), mtest::tno("fused/DenseFuse", "01"));
  EXPECT_NEAR(std::stod(split(lines[1], ',')[2]), png_en, 0.3);
}

TEST_F(EvalCli, MissingFusedImageIsAnErrorNamingThePair) {
  fs::remove(root + "/DenseFuse/02.png");
  std::string out, err;
  // A data problem (not a usage error): exit 1, like every tool's runtime failure.
  EXPECT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --metrics en", &out, &err), 1);
  EXPECT_EQ(lines_of(err).size(), 1u) << err;
  EXPECT_NE(err.find("'02'"), std::string::npos) << err;
  EXPECT_TRUE(out.empty()) << "no partial table: " << out;
}

TEST_F(EvalCli, MissingFolderIsAnError) {
  std::string out, err;
  EXPECT_EQ(eval(sources() + "--fused " + root + "/nowhere --metrics en", &out, &err), 1);
  EXPECT_NE(err.find("nowhere"), std::string::npos) << err;
  EXPECT_EQ(eval("--ir " + root + "/nope --vis " + root + "/vis --fused " + root + "/DenseFuse", &out, &err), 1);
  EXPECT_NE(err.find("folder not found"), std::string::npos) << err;
}

TEST_F(EvalCli, MismatchedSizesAreAnError) {
  fs::remove(root + "/DenseFuse/03.png");
  cv::Mat f = mtest::tno("fused/DenseFuse", "03");
  ASSERT_TRUE(cv::imwrite(root + "/DenseFuse/03.png", f(cv::Rect(0, 0, f.cols - 2, f.rows))));
  std::string out, err;
  EXPECT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --metrics en", &out, &err), 1);
  EXPECT_NE(err.find("03.png"), std::string::npos) << err;
  EXPECT_NE(err.find(std::to_string(f.cols - 2) + "x" + std::to_string(f.rows)), std::string::npos) << err;
}

TEST_F(EvalCli, BadArgumentsAreErrors) {
  std::string out, err;
  EXPECT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --metrics en,bogus", &out, &err), 2);
  EXPECT_NE(err.find("bogus"), std::string::npos) << err;
  EXPECT_EQ(lines_of(err).size(), 1u) << err;
  EXPECT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --color hsv", &out, &err), 2);
  EXPECT_NE(err.find("hsv"), std::string::npos) << err;
  EXPECT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --format xml", &out, &err), 2);
  EXPECT_NE(err.find("--format"), std::string::npos) << err;
  EXPECT_EQ(eval(sources(), &out, &err), 2);
  EXPECT_NE(err.find("--fused"), std::string::npos) << err;
  EXPECT_EQ(eval(sources() + "--fused " + root + "/DenseFuse --compare nodir", &out, &err), 2);
  EXPECT_NE(err.find("NAME=DIR"), std::string::npos) << err;
}

TEST(EvalCliFullSet, PairsAll42TnoImagesOfAPublishedMethod) {
  const std::string d = tftest::data("tno42");
  std::string out;
  ASSERT_EQ(tftest::run("(" + std::string(TIMFUSION_EVAL_EXE) + " --no-progress --ir " + d + "/ir --vis " + d +
                            "/vis --fused " + d + "/fused/PIAFusion --metrics en,sd 2>/dev/null)",
                        &out),
            0);
  auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u + 42 * 2 + 2);
  EXPECT_EQ(lines[1].rfind("01,en,", 0), 0u);
  EXPECT_EQ(lines[84].rfind("42,sd,", 0), 0u);
}
