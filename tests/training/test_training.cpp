// timfusion-train: configuration, data loading, runs, resume, task guidance.
// Fast settings throughout (8-channel network, 32 px crops, 1 thread).
#include <gtest/gtest.h>

#include <csignal>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <opencv2/imgproc.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "data/pair_dataset.h"
#include "commands.h"
#include "run/command_config.h"
#include "run/config.h"
#include "run/run_dir.h"
#include "timfusion/color.h"
#include "timfusion/error.h"
#include "timfusion/model_file.h"
#include "timfusion/safetensors.h"
#include "timfusion/version.h"
#include "train/trainer.h"
#include "training_test_util.h"
#include "error_of.h"

using namespace timfusion;
using namespace timfusion::train;
namespace fs = std::filesystem;

namespace trtest {

std::vector<double> log_column(const std::string& run, const std::string& col) {
  std::vector<double> v;
  if (!fs::exists(run + "/log.csv")) return v;  // the run has not started yet
  auto rows = read_csv(run + "/log.csv");
  if (rows.empty()) return v;
  size_t c = std::find(rows[0].begin(), rows[0].end(), col) - rows[0].begin();
  for (size_t i = 1; i < rows.size(); ++i) v.push_back(std::stod(rows[i].at(c)));
  return v;
}

}  // namespace trtest

using namespace trtest;

using tftest::error_of;

namespace {


Config config_with(const std::string& data_dir) {
  Config c = Config::defaults();
  c.set("data", json::array({data_dir}), "test");
  c.set("channels", 8, "test");
  c.set("crop", 32, "test");
  c.set("batch", 2, "test");
  c.set("threads", 1, "test");
  return c;
}

// Every tensor's name, dtype, shape and bytes equal (metadata ignored).
bool same_tensors_for_test(const SafetensorsFile& a, const SafetensorsFile& b, std::string* diff) {
  if (a.tensors.size() != b.tensors.size()) {
    *diff = "tensor count differs";
    return false;
  }
  for (const auto& ta : a.tensors) {
    const TensorEntry* tb = b.find(ta.name);
    if (!tb || tb->dtype != ta.dtype || tb->shape != ta.shape || tb->data != ta.data) {
      *diff = "\"" + ta.name + "\" differs";
      return false;
    }
  }
  return true;
}

double mean(const std::vector<double>& v, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += v[i];
  return s / static_cast<double>(to - from);
}

}  // namespace

// ---------------------------------------------------------------- config --

TEST(Config, DefaultsAreValidWithData) {
  Config c = Config::defaults();
  c.set("data", "some/dir", "test");  // a bare string is a one-folder list
  EXPECT_NO_THROW(c.validate());
  ASSERT_EQ(c.data_sources().size(), 1u);
  EXPECT_EQ(c.data_sources()[0].ir, "some/dir/ir");
  EXPECT_EQ(c.data_sources()[0].vis, "some/dir/vis");
  EXPECT_EQ(c.optim.steps, 2000);
  EXPECT_DOUBLE_EQ(c.loss.gradient, 10.0);
}

TEST(Config, UnknownKeyIsNamedWithSuggestion) {
  Config c = Config::defaults();
  std::string e = error_of([&] { c.set("loss.ssmi=0.5"); });
  EXPECT_NE(e.find("unknown config key \"loss.ssmi\""), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean \"loss.ssim\""), std::string::npos) << e;
  e = error_of([&] { c.merge(json::parse(R"({"loss": {"intensity": 1, "bogus": 2}})"), "cfg.json"); });
  EXPECT_NE(e.find("cfg.json: unknown config key \"loss.bogus\""), std::string::npos) << e;
}

TEST(Config, BadValuesAreNamed) {
  Config c = Config::defaults();
  std::string e = error_of([&] { c.set("steps=abc"); });
  EXPECT_NE(e.find("bad value \"abc\" for \"steps\": expected an integer"), std::string::npos) << e;
  e = error_of([&] { c.set("steps=2.5"); });
  EXPECT_NE(e.find("for \"steps\": expected an integer"), std::string::npos) << e;
  e = error_of([&] { c.set("loss.ssim=-1"); });
  EXPECT_NE(e.find("for \"loss.ssim\": must be between 0 and"), std::string::npos) << e;
  e = error_of([&] { c.set("lr_schedule=step"); });
  EXPECT_NE(e.find("expected one of cosine, constant"), std::string::npos) << e;
  e = error_of([&] { c.set("flip=1"); });
  EXPECT_NE(e.find("expected true or false"), std::string::npos) << e;
  e = error_of([&] { c.set("novalue"); });
  EXPECT_NE(e.find("key=value"), std::string::npos) << e;
  // Numbers given where strings are expected are taken as text.
  c.set("out=123");
  EXPECT_EQ(c.output.out, "123");
  c.set("steps=10");
  EXPECT_EQ(c.optim.steps, 10);
}

TEST(Config, CrossKeyChecks) {
  Config c = config_with("d");
  c.set("loss.ssim_window", 12, "t");
  EXPECT_NE(error_of([&] { c.validate(); }).find("must be odd"), std::string::npos);
  c.set("loss.ssim_window", 33, "t");
  c.set("crop", 32, "t");
  EXPECT_NE(error_of([&] { c.validate(); }).find("\"crop\" (32) must be at least \"loss.ssim_window\" (33)"),
            std::string::npos);
  Config empty = Config::defaults();
  EXPECT_NE(error_of([&] { empty.validate(); }).find("no training data"), std::string::npos);
}

TEST(Config, FileAndCommandLineLayering) {
  std::string dir = tftest::temp_dir("cfg");
  {
    std::ofstream(dir + "/c.json") << R"({"steps": 7, "loss": {"ssim": 0.25}, "task.lambda": 0.5, "data": ["x"]})";
  }
  const char* argv[] = {"timfusion-train", "train", "--config", "", "--steps", "9", "--set", "loss.gradient=2"};
  std::string path = dir + "/c.json";
  argv[3] = path.c_str();
  Config c = resolve_command_config(parse_command_args(8, const_cast<char**>(argv), 2, train_spec()), train_spec()).base;
  EXPECT_EQ(c.optim.steps, 9);  // command line wins over the file
  EXPECT_DOUBLE_EQ(c.loss.ssim, 0.25);
  EXPECT_DOUBLE_EQ(c.loss.gradient, 2.0);
  EXPECT_DOUBLE_EQ(c.task.lambda, 0.5);
  { std::ofstream(dir + "/bad.json") << "{\"steps\": 7,"; }
  EXPECT_NE(error_of([&] { Config::defaults().merge_file(dir + "/bad.json"); }).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of([&] { Config::defaults().merge_file(dir + "/missing.json"); }).find("cannot read"), std::string::npos);
}

// The typed members (run/train_settings.h) are the configuration: what
// --set, a config file or --resume's config.json sets is what the code reads,
// and values() (config.json, the provenance) writes them back unchanged.
TEST(Config, TypedMembersRoundTrip) {
  const char* argv[] = {"timfusion-train", "train", "--data", "d", "--set", "loss.intensity=8", "--set", "task.lambda=0.25",
                        "--set", "noise_model=lowlight", "--steps", "7"};
  CommandConfig cc = resolve_command_config(parse_command_args(12, const_cast<char**>(argv), 2, train_spec()), train_spec());
  const Config& c = cc.base;
  EXPECT_EQ(c.loss.intensity, 8);
  EXPECT_EQ(c.task.lambda, 0.25);
  EXPECT_EQ(c.noise.model, "lowlight");
  EXPECT_EQ(c.optim.steps, 7);
  EXPECT_EQ(c.loss.gradient, 10);  // untouched keys keep the table's default
  EXPECT_EQ(c.values()["loss"]["intensity"], 8.0);
  EXPECT_TRUE(c.values()["loss"]["intensity"].is_number_float());  // a Number key stays a number ("8.0")
  EXPECT_TRUE(c.values()["steps"].is_number_integer());
  // config.json read back (as --resume does) gives the same members and text.
  Config back = Config::defaults();
  back.merge(json::parse(c.dump()), "config.json");
  EXPECT_EQ(back.dump(), c.dump());
  EXPECT_EQ(back.loss.intensity, 8);
  EXPECT_EQ(back.data, c.data);
  // Setting a member through the table and reading it back agree for every key.
  const json v = Config::defaults().values();
  for (const auto& k : Config::schema()) {
    const json* p = find_dotted(v, k.key);
    ASSERT_NE(p, nullptr) << k.key;
    EXPECT_EQ(*p, k.def) << k.key;
  }
}

// The defaults as the table writes them (what config.json held before the
// typed members): the same text, key for key.
TEST(Config, DefaultsDumpAsTheTable) {
  json legacy = json::object();
  for (const auto& k : Config::schema()) WriteFields{legacy}(k.key.c_str(), k.def);
  EXPECT_EQ(Config::defaults().dump(), legacy.dump(2));
}

TEST(Config, UnknownKeyMessageIsUnchanged) {
  Config c = Config::defaults();
  EXPECT_EQ(error_of([&] { c.set("loss.intensitx=8"); }),
            "--set loss.intensitx: unknown config key \"loss.intensitx\" (did you mean \"loss.intensity\"?) (see --help-config)");
  EXPECT_EQ(error_of([&] { c.merge(json::parse(R"({"frobnicate": 1})"), "c.json"); }),
            "c.json: unknown config key \"frobnicate\" (see --help-config)");
  EXPECT_EQ(c.loss.intensity, 1);  // a rejected key changes nothing
}

TEST(Config, ToolReportsConfigErrorsClearly) {
  std::string out, data = make_pairs(tftest::temp_dir("cfgtool") + "/d", {"a", "b"}, 40, 36, false);
  std::string base = train_exe() + " train --data " + data + " --out " + tftest::temp_dir("cfgrun") + "/r";
  // Mistakes on the command line are usage errors (exit 2, one line), like every tool's.
  EXPECT_EQ(tftest::run(base + " --set stepz=3", &out), 2);
  EXPECT_NE(out.find("unknown config key \"stepz\" (did you mean \"steps\"?)"), std::string::npos) << out;
  EXPECT_EQ(tftest::run(base + " --batch many", &out), 2);
  EXPECT_NE(out.find("bad value \"many\" for \"batch\""), std::string::npos) << out;
  EXPECT_EQ(tftest::run(base + " --frobnicate", &out), 2);
  EXPECT_NE(out.find("unknown option \"--frobnicate\""), std::string::npos) << out;
  EXPECT_EQ(tftest::run(train_exe() + " train --data /nonexistent/dataset --steps 1 --out " + tftest::temp_dir("nod") + "/r",
                        &out),
            1);
  EXPECT_NE(out.find("/nonexistent/dataset/ir: data folder not found"), std::string::npos) << out;
  EXPECT_EQ(tftest::run(train_exe() + " train --steps 1", &out), 1);
  EXPECT_NE(out.find("no training data"), std::string::npos) << out;
}

TEST(Cli, CommandsAndHelp) {
  std::string out;
  EXPECT_EQ(tftest::run(train_exe(), &out), 2);
  EXPECT_NE(out.find("Commands:"), std::string::npos) << out;
  // search/meta/adapt exist and report missing data like train does.
  EXPECT_EQ(tftest::run(train_exe() + " search", &out), 1);
  EXPECT_NE(out.find("no training data"), std::string::npos) << out;
  EXPECT_EQ(tftest::run(train_exe() + " fly", &out), 2);
  EXPECT_NE(out.find("unknown command \"fly\""), std::string::npos) << out;
  EXPECT_EQ(tftest::run(train_exe() + " train --help", &out), 0);
  EXPECT_NE(out.find("--resume DIR"), std::string::npos) << out;
  EXPECT_EQ(tftest::run(train_exe() + " train --help-config", &out), 0);
  for (const auto& k : Config::schema()) EXPECT_NE(out.find("  " + k.key + " = "), std::string::npos) << k.key;
}

// ------------------------------------------------------------------ data --

TEST(Data, OddSizesGrayAndColourVisible) {
  std::string root = tftest::temp_dir("data");
  make_pairs(root + "/gray", {"p1", "p2"}, 37, 29, false);
  make_pairs(root + "/colour", {"q1"}, 45, 38, true);
  auto ds = PairDataset::load({{root + "/gray/ir", root + "/gray/vis", "", ""}, {root + "/colour/ir", root + "/colour/vis", "", ""}});
  ASSERT_EQ(ds.size(), 3u);
  for (size_t i = 0; i < ds.size(); ++i) {
    EXPECT_EQ(ds.at(i).vis_y.type(), CV_8UC1);
    EXPECT_EQ(ds.at(i).ir.size(), ds.at(i).vis_y.size());
  }
  // The colour visible image is fused by its BT.601 luma, read as BGR.
  cv::Mat bgr = cv::imread(root + "/colour/vis/q1.png", cv::IMREAD_UNCHANGED);
  cv::Mat expect = luma_of(bgr, ChannelOrder::BGR);
  EXPECT_EQ(cv::norm(ds.at(2).vis_y, expect, cv::NORM_INF), 0);
  // Crops larger than an image are reflect-padded; values stay in [0,1].
  Batch b = ds.sample(5, 0, 0, 6, 48, true);
  EXPECT_EQ(b.n, 6);
  EXPECT_EQ(b.ir.size(), 6u * 48 * 48);
  for (float v : b.ir) ASSERT_TRUE(v >= 0 && v <= 1);
  // Centre crops keep odd sizes.
  Batch c = ds.center(0, 0);
  EXPECT_EQ(c.w, 37);
  EXPECT_EQ(c.h, 29);
  c = ds.center(2, 31);
  EXPECT_EQ(c.w, 31);
  EXPECT_EQ(c.h, 31);
}

TEST(Data, BatchesAreAPureFunctionOfSeedAndStep) {
  std::string root = make_pairs(tftest::temp_dir("det") + "/d", {"a", "b", "c"}, 61, 47, true);
  auto ds1 = PairDataset::load({{root + "/ir", root + "/vis", "", ""}});
  auto ds2 = PairDataset::load({{root + "/ir", root + "/vis", "", ""}});
  Batch a = ds1.sample(7, 12, 0, 4, 24, true), b = ds2.sample(7, 12, 0, 4, 24, true);
  EXPECT_EQ(a.ir, b.ir);
  EXPECT_EQ(a.vis, b.vis);
  EXPECT_EQ(a.names, b.names);
  EXPECT_NE(ds1.sample(7, 13, 0, 4, 24, true).ir, a.ir);
  EXPECT_NE(ds1.sample(8, 12, 0, 4, 24, true).ir, a.ir);
  EXPECT_NE(ds1.sample(7, 12, 1, 4, 24, true).ir, a.ir);
}

TEST(Data, MissingPartnerIsNamed) {
  std::string root = make_pairs(tftest::temp_dir("partner") + "/d", {"a", "b"}, 30, 30, false);
  fs::remove(root + "/vis/b.png");
  std::string e = error_of([&] { PairDataset::load({{root + "/ir", root + "/vis", "", ""}}); });
  EXPECT_NE(e.find("1 image(s) without a partner"), std::string::npos) << e;
  EXPECT_NE(e.find(root + "/ir/b.png"), std::string::npos) << e;
  // Listing the name in an exclude file makes the rest usable.
  { std::ofstream(root + "/skip.txt") << "# test split\nb.png\n"; }
  auto ds = PairDataset::load({{root + "/ir", root + "/vis", "", root + "/skip.txt"}});
  EXPECT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds.at(0).name, "a");
}

TEST(Data, EmptyMismatchedAndMissingFolders) {
  std::string root = tftest::temp_dir("empty");
  fs::create_directories(root + "/e/ir");
  fs::create_directories(root + "/e/vis");
  std::string e = error_of([&] { PairDataset::load({{root + "/e/ir", root + "/e/vis", "", ""}}); });
  EXPECT_NE(e.find("no image pairs"), std::string::npos) << e;
  e = error_of([&] { PairDataset::load({{root + "/none/ir", root + "/none/vis", "", ""}}); });
  EXPECT_NE(e.find(root + "/none/ir: data folder not found"), std::string::npos) << e;
  // Same base name, different sizes: not registered.
  make_pairs(root + "/m", {"a"}, 30, 30, false);
  cv::imwrite(root + "/m/vis/a.png", cv::Mat(20, 30, CV_8UC1, cv::Scalar(9)));
  e = error_of([&] { PairDataset::load({{root + "/m/ir", root + "/m/vis", "", ""}}); });
  EXPECT_NE(e.find("pair \"a\": IR"), std::string::npos) << e;
  EXPECT_NE(e.find("is 30x30 but visible"), std::string::npos) << e;
  // Everything excluded.
  { std::ofstream(root + "/all.txt") << "a\n"; }
  make_pairs(root + "/x", {"a"}, 30, 30, false);
  e = error_of([&] { PairDataset::load({{root + "/x/ir", root + "/x/vis", "", root + "/all.txt"}}); });
  EXPECT_NE(e.find("no usable pairs"), std::string::npos) << e;
}

TEST(Data, LabelsFollowCropsAndFlips) {
  std::string root = make_pairs(tftest::temp_dir("labels") + "/d", {"a", "b", "c"}, 40, 34, true, "labels");
  fs::remove(root + "/labels/c.png");  // unlabelled pairs are skipped, with a note
  auto ds = PairDataset::load({{root + "/ir", root + "/vis", root + "/labels", ""}}, true, 9);
  EXPECT_EQ(ds.size(), 2u);
  ASSERT_EQ(ds.notes().size(), 1u);
  EXPECT_NE(ds.notes()[0].find("1 pairs have no label"), std::string::npos);
  Batch b = ds.sample(3, 0, 1, 8, 24, true);
  ASSERT_EQ(b.labels.size(), b.ir.size());
  // Label 1 exactly where the IR "object" (230/255) is.
  for (size_t i = 0; i < b.ir.size(); ++i) {
    bool obj = std::abs(b.ir[i] - 230.f / 255.f) < 1e-6f;
    if (b.labels[i] == 1) {
      ASSERT_TRUE(obj) << i;
    }
  }
  cv::imwrite(root + "/labels/a.png", cv::Mat(34, 40, CV_8UC1, cv::Scalar(12)));
  std::string e = error_of([&] { PairDataset::load({{root + "/ir", root + "/vis", root + "/labels", ""}}, true, 9); });
  EXPECT_NE(e.find("class id 12 but task.classes is 9"), std::string::npos) << e;
}

TEST(Data, HoldOutIsEvenlySpacedAndClassesCounted) {
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("n" + std::to_string(i));
  std::string root = make_pairs(tftest::temp_dir("split") + "/d", names, 20, 18, false, "labels");
  auto ds = PairDataset::load({{root + "/ir", root + "/vis", root + "/labels", ""}}, true, 9);
  auto [kept, held] = ds.split_holdout(3);
  ASSERT_EQ(held.size(), 3u);
  EXPECT_EQ(kept.size(), 7u);
  EXPECT_EQ(held.at(0).name, "n1");
  EXPECT_EQ(held.at(1).name, "n5");
  EXPECT_EQ(held.at(2).name, "n8");
  auto counts = ds.class_counts(9);
  // Object: w/3 x h/3 = 6 x 6 pixels per image.
  EXPECT_EQ(counts[1], 10 * 36);
  EXPECT_EQ(counts[0], 10 * (20 * 18 - 36));
  EXPECT_NE(error_of([&] { ds.split_holdout(10); }).find("cannot hold out 10 of 10"), std::string::npos);
}

TEST(Data, SharedTaskDataLoads) {
  Config c = Config::defaults();
  auto src = c.task_source();
  EXPECT_EQ(fs::path(src.ir).lexically_normal(), fs::path(tftest::data("msrs_seg/ir")).lexically_normal());
  auto ds = PairDataset::load({src}, true, 9);
  EXPECT_EQ(ds.size(), 140u);
  auto pseudo = src;
  pseudo.labels = tftest::data("msrs_seg/labels_pseudo_bdlfusion");
  EXPECT_EQ(PairDataset::load({pseudo}, true, 9).size(), 82u);
}

// -------------------------------------------------------------- training --

TEST(Train, FewStepsLowerTheLoss) {
  // One real 40x40 TNO pair, 40 px crops without flips: every batch is the
  // same, so the loss of consecutive steps is comparable.
  std::string data = tftest::temp_dir("lower-data") + "/d";
  fs::create_directories(data + "/ir");
  fs::create_directories(data + "/vis");
  for (const char* side : {"ir", "vis"}) {
    cv::Mat m = cv::imread(tftest::data(std::string("tno42/") + side + "/01.png"), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(m.empty());
    cv::imwrite(data + "/" + side + "/a.png", m(cv::Rect(300, 250, 40, 40)));
  }
  std::string run = tftest::temp_dir("lower") + "/r", out;
  ASSERT_EQ(tftest::run(train_exe() + " train --data " + data + fast_opts() + " --crop 40 --no-flip --steps 20 --out " + run,
                        &out),
            0)
      << out;
  auto loss = log_column(run, "loss");
  ASSERT_EQ(loss.size(), 20u);
  EXPECT_LT(mean(loss, 17, 20), 0.8 * loss[0]) << out;
  EXPECT_LT(loss[19], loss[0]);
  for (const char* term : {"intensity", "gradient", "ssim"}) {
    auto v = log_column(run, term);
    EXPECT_LT(v[19], v[0]) << term;
  }
  // The run folder's contents.
  for (const char* f : {"config.json", "log.csv", "checkpoint.safetensors", "model.safetensors", "loss_curve.png",
                        "previews/step-000020.png"})
    EXPECT_TRUE(fs::exists(run + "/" + f)) << f;
  EXPECT_FALSE(cv::imread(run + "/loss_curve.png").empty());
  ModelFile m = load_model_file(run + "/model.safetensors");
  EXPECT_EQ(m.arch.name, "ivif-light");
  EXPECT_EQ(m.arch.channels, 8);
  auto prov = json::parse(m.provenance);
  EXPECT_EQ(prov["steps"], 20);
  EXPECT_EQ(prov["seed"], 1);
  EXPECT_EQ(prov["data"][0]["pairs"], 1);
  EXPECT_EQ(prov["data"][0]["ir"], fs::absolute(data + "/ir").lexically_normal().string());
  EXPECT_TRUE(prov.contains("git_commit"));
  EXPECT_NE(prov["command_lines"][0].get<std::string>().find("--steps 20"), std::string::npos);
  EXPECT_TRUE(prov["final_losses"]["total"].is_number());
  // The stored config reproduces the run.
  auto cfg = json::parse(read_text(run + "/config.json"));
  EXPECT_EQ(cfg["steps"], 20);
  EXPECT_EQ(cfg["channels"], 8);
  // A second run into the same folder is refused.
  EXPECT_EQ(tftest::run(train_exe() + " train --data " + data + fast_opts() + " --steps 2 --out " + run, &out), 1);
  EXPECT_NE(out.find("already holds a run: continue it with --resume"), std::string::npos) << out;
}

namespace {
SafetensorsFile weights_of(const std::string& run) { return read_safetensors(run + "/model.safetensors"); }

void expect_same_logs(const std::string& a, const std::string& b) {
  auto ra = read_csv(a + "/log.csv"), rb = read_csv(b + "/log.csv");
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) {
    ASSERT_EQ(ra[i].size(), rb[i].size());
    for (size_t j = 0; j + 1 < ra[i].size(); ++j) EXPECT_EQ(ra[i][j], rb[i][j]) << "row " << i << " col " << j;  // not seconds
  }
}
}  // namespace

TEST(Train, ResumeAfterStopGivesIdenticalWeights) {
  std::string data = make_pairs(tftest::temp_dir("resume-data") + "/d", {"a", "b", "c"}, 53, 41, true);
  std::string tmp = tftest::temp_dir("resume"), out;
  std::string opts = " train --data " + data + fast_opts() + " --steps 8 --checkpoint-every 3 --set warmup=2";
  ASSERT_EQ(tftest::run(train_exe() + opts + " --out " + tmp + "/full", &out), 0) << out;
  // Stop after step 5: the checkpoint is at step 3, steps 4-5 are lost as in a kill.
  ASSERT_EQ(tftest::run(train_exe() + opts + " --stop-at 5 --out " + tmp + "/split", &out), 0) << out;
  EXPECT_FALSE(fs::exists(tmp + "/split/model.safetensors"));
  EXPECT_EQ(log_column(tmp + "/split", "step").size(), 5u);
  ASSERT_EQ(tftest::run(train_exe() + " train --quiet --resume " + tmp + "/split", &out), 0) << out;
  std::string diff;
  EXPECT_TRUE(same_tensors_for_test(weights_of(tmp + "/full"), weights_of(tmp + "/split"), &diff)) << diff;
  EXPECT_TRUE(same_tensors_for_test(read_safetensors(tmp + "/full/checkpoint.safetensors"),
                                    read_safetensors(tmp + "/split/checkpoint.safetensors"), &diff))
      << diff;
  expect_same_logs(tmp + "/full", tmp + "/split");
  // Both sessions are in the provenance.
  auto prov = json::parse(load_model_file(tmp + "/split/model.safetensors").provenance);
  EXPECT_EQ(prov["command_lines"].size(), 2u);
  EXPECT_EQ(prov["timfusion_version"], TIMFUSION_VERSION);  // which timfusion made the file
  // Resuming may extend a run but not change it.
  EXPECT_EQ(tftest::run(train_exe() + " train --quiet --resume " + tmp + "/split --lr 0.1", &out), 2);
  EXPECT_NE(out.find("cannot change \"lr\" when resuming"), std::string::npos) << out;
  EXPECT_EQ(tftest::run(train_exe() + " train --quiet --resume " + tmp + "/nothing", &out), 1);
  EXPECT_NE(out.find("not a run folder"), std::string::npos) << out;
}

TEST(Train, ResumeAfterKill9GivesIdenticalWeights) {
  std::string data = make_pairs(tftest::temp_dir("kill-data") + "/d", {"a", "b"}, 64, 64, false);
  std::string tmp = tftest::temp_dir("kill"), out;
  // Constant lr: the trajectory does not depend on the planned step count,
  // so a long run killed early and resumed with --steps N equals an N-step run.
  std::string opts = " train --data " + data + fast_opts() + " --crop 64 --batch 4 --checkpoint-every 2 --set lr_schedule=constant";
  std::string cmd = train_exe() + opts + " --steps 100000 --out " + tmp + "/killed";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const std::string ckpt = tmp + "/killed/checkpoint.safetensors";
  for (int i = 0; i < 6000 && !fs::exists(ckpt); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it could be killed";
  auto meta = json::parse(read_safetensors(ckpt).metadata.at("timfusion.checkpoint"));
  const int64_t at = meta["step"].get<int64_t>();
  ASSERT_GE(at, 2);
  const int64_t n = at + 5;
  ASSERT_EQ(tftest::run(train_exe() + " train --quiet --resume " + tmp + "/killed --steps " + std::to_string(n), &out), 0)
      << out;
  ASSERT_EQ(tftest::run(train_exe() + opts + " --steps " + std::to_string(n) + " --out " + tmp + "/full", &out), 0) << out;
  std::string diff;
  EXPECT_TRUE(same_tensors_for_test(weights_of(tmp + "/full"), weights_of(tmp + "/killed"), &diff)) << diff;
  expect_same_logs(tmp + "/full", tmp + "/killed");
  // No step twice in the log, none missing.
  auto steps = log_column(tmp + "/killed", "step");
  ASSERT_EQ(steps.size(), static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(steps[i], i + 1);
}

TEST(Train, SigintSavesACheckpointAndExits130) {
  std::string data = make_pairs(tftest::temp_dir("int-data") + "/d", {"a", "b"}, 64, 64, false);
  std::string run = tftest::temp_dir("int") + "/r";
  std::string cmd = train_exe() + " train --data " + data + fast_opts() + " --steps 100000 --checkpoint-every 1000 --out " + run;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 6000 && log_column(run, "step").size() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  auto meta = json::parse(read_safetensors(run + "/checkpoint.safetensors").metadata.at("timfusion.checkpoint"));
  EXPECT_EQ(meta["step"].get<int64_t>(), static_cast<int64_t>(log_column(run, "step").size()));
}

// ----------------------------------------------------------- task guidance --

TEST(Task, GuidedStepChangesBothNetworks) {
  std::string root = tftest::temp_dir("task");
  make_pairs(root + "/seg", {"s1", "s2", "s3", "s4"}, 48, 40, true, "labels");
  Config c = Config::defaults();
  c.set("channels", 8, "t");
  c.set("crop", 32, "t");
  c.set("batch", 2, "t");
  c.set("threads", 1, "t");
  c.set("task.enabled", true, "t");
  c.set("task.data", root + "/seg", "t");
  c.set("task.width", 4, "t");
  c.set("task.eval_pairs", 1, "t");
  Trainer t(c);
  auto f0 = t.fusion_state(), t0 = t.task_state();
  ASSERT_FALSE(t0.tensors.empty());
  StepStats st = t.step(0);
  EXPECT_GT(st.task, 0);
  EXPECT_GT(st.task_lower, 0);
  EXPECT_GT(st.baseline, 0);
  std::string diff;
  EXPECT_FALSE(same_tensors_for_test(f0, t.fusion_state(), &diff)) << "fusion net unchanged";
  EXPECT_FALSE(same_tensors_for_test(t0, t.task_state(), &diff)) << "task net unchanged";

  // The task loss reaches the fusion net: lambda changes its update.
  Config c0 = c;
  c0.set("task.lambda", 0.0, "t");
  Config c1 = c;
  c1.set("task.lambda", 5.0, "t");
  Trainer a(c0), b(c1);
  a.step(0);
  b.step(0);
  EXPECT_FALSE(same_tensors_for_test(a.fusion_state(), b.fusion_state(), &diff));
  // ... but not the task net's lower-level update (it sees the same detached input).
  EXPECT_TRUE(same_tensors_for_test(a.task_state(), b.task_state(), &diff)) << diff;
}

TEST(Task, GuidedRunReportsFusedVersusVisible) {
  std::string root = tftest::temp_dir("taskrun");
  make_pairs(root + "/seg", {"s1", "s2", "s3", "s4", "s5"}, 48, 40, false, "labels");
  std::string run = root + "/r", out;
  ASSERT_EQ(tftest::run(train_exe() + " train --task --set task.data=" + root + "/seg --set task.width=4" +
                            " --set task.eval_pairs=2" + fast_opts() + " --steps 4 --out " + run,
                        &out),
            0)
      << out;
  EXPECT_NE(out.find("task evaluation on 2 held-out pairs"), std::string::npos) << out;
  EXPECT_NE(out.find("visible Y, task net trained on visible only"), std::string::npos) << out;
  auto ev = json::parse(read_text(run + "/task_eval.json"));
  EXPECT_EQ(ev["held_out_pairs"], json::array({"s2", "s4"}));  // evenly spaced in name order
  EXPECT_EQ(ev["class_weights"].size(), 9u);
  for (const char* k : {"task_net_on_fused", "task_net_on_visible", "baseline_on_visible"}) {
    EXPECT_TRUE(ev[k]["miou"].is_number()) << k;
    EXPECT_TRUE(ev[k]["task_loss"].is_number()) << k;
  }
  auto task = log_column(run, "task");
  ASSERT_EQ(task.size(), 4u);
  EXPECT_GT(task[0], 0);
  auto prov = json::parse(load_model_file(run + "/model.safetensors").provenance);
  EXPECT_TRUE(prov["task"]["miou_fused"].is_number());
  // Without the baseline its net is never trained: no row for it (it used to report the untrained net).
  std::string run2 = root + "/r2", out2;
  ASSERT_EQ(tftest::run(train_exe() + " train --task --set task.data=" + root + "/seg --set task.width=4" +
                            " --set task.eval_pairs=2 --set task.baseline=false" + fast_opts() + " --steps 2 --out " + run2,
                        &out2),
            0)
      << out2;
  EXPECT_EQ(out2.find("trained on visible only"), std::string::npos) << out2;
  EXPECT_FALSE(json::parse(read_text(run2 + "/task_eval.json")).contains("baseline_on_visible"));
  EXPECT_TRUE(json::parse(load_model_file(run2 + "/model.safetensors").provenance)["task"]["miou_visible_baseline"].is_null());
}
