// timfusion-train meta / adapt: Reptile's update, one meta step, one adapt
// step, split files, held-out evaluation and the comparison plot. Fast:
// ivif-light at 4 channels, 32 px crops, 1 thread.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "meta/commands.h"
#include "meta/meta.h"
#include "timfusion/torch/state_dict.h"
#include "run/checkpoint.h"
#include "timfusion/error.h"
#include "timfusion/model_file.h"
#include "training_test_util.h"

using namespace timfusion;
using namespace timfusion::train;
namespace fs = std::filesystem;

namespace {

CommandConfig make_config(const CommandSpec& spec, std::vector<std::string> args) {
  std::vector<std::string> all = {"timfusion-train", spec.name, "--threads", "1", "--quiet", "--crop", "32", "--batch", "2",
                                  "--set", "loss.ssim_window=7"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : all) argv.push_back(s.data());
  CommandArgs a = parse_command_args(static_cast<int>(argv.size()), argv.data(), 2, spec);
  CommandConfig c = resolve_command_config(a, spec);
  prepare_run_dir(c, a);
  return c;
}

torch::Tensor tensor_of(const SafetensorsFile& f, const std::string& name) {
  const TensorEntry* e = f.find(name);
  EXPECT_NE(e, nullptr) << name;
  return nn::from_entry(*e).to(torch::kFloat64);
}

std::string tasks_json(const std::string& a, const std::string& b) {
  return "meta.tasks=[{\"name\":\"one\",\"data\":[\"" + a + "\"]},{\"name\":\"two\",\"data\":[\"" + b + "\"]}]";
}

}  // namespace

TEST(Reptile, UpdateInterpolatesParametersAndStatistics) {
  torch::manual_seed(1);
  ArchSpec s = ArchSpec::named("ivif-light");
  s.channels = 4;
  nn::TimNet theta(s), phi(s);
  {
    torch::NoGradGuard ng;
    for (auto& p : phi->parameters()) p.add_(torch::randn_like(p));
    for (auto& b : phi->buffers())
      if (b.is_floating_point()) b.add_(1.0);
      else b.fill_(7);
  }
  SafetensorsFile before = nn::to_safetensors(*theta), target = nn::to_safetensors(*phi);
  reptile_update(*theta, *phi, 0.25);
  SafetensorsFile after = nn::to_safetensors(*theta);
  for (const auto& e : before.tensors) {
    auto t0 = tensor_of(before, e.name), t1 = tensor_of(after, e.name), p = tensor_of(target, e.name);
    if (e.dtype == DType::I64)
      EXPECT_TRUE(torch::equal(t1, p)) << e.name;  // counters: taken from phi
    else
      EXPECT_TRUE(torch::allclose(t1, t0 + 0.25 * (p - t0), 1e-6, 1e-6)) << e.name;
  }
  copy_state(*theta, *phi);
  std::string why;
  EXPECT_TRUE(same_tensors(nn::to_safetensors(*theta), target, &why)) << why;
}

// One meta step: phi = theta adapted on one task; theta moves to theta + eps (phi - theta).
TEST(MetaLearner, OneStepMovesTheInitTowardsTheAdaptedWeights) {
  torch::set_num_threads(1);
  const std::string root = tftest::temp_dir("meta-step");
  trtest::make_pairs(root + "/t1", {"a", "b", "c"}, 40, 36, false);
  trtest::make_pairs(root + "/t2", {"x", "y"}, 36, 40, true);
  CommandConfig c = make_config(meta_spec(), {"--channels", "4", "--steps", "3", "--out", root + "/run", "--set",
                                              tasks_json(root + "/t1", root + "/t2"), "--inner-steps", "2",
                                              "--set", "meta.epsilon=0.5", "--set", "meta.epsilon_min=0.1"});
  MetaLearner m(c, root + "/run");
  ASSERT_EQ(m.tasks().size(), 2u);
  EXPECT_EQ(m.spec().channels, 4);
  EXPECT_DOUBLE_EQ(m.epsilon_at(0), 0.5);
  EXPECT_DOUBLE_EQ(m.epsilon_at(2), 0.1);
  for (int64_t k = 0; k < 2; ++k) {
    SafetensorsFile before = m.theta_state();
    MetaStats st = m.step(k);
    EXPECT_EQ(st.task, static_cast<int>(k % 2));  // round robin
    EXPECT_TRUE(std::isfinite(st.inner_first) && std::isfinite(st.inner_last));
    SafetensorsFile after = m.theta_state(), phi = m.adapted_state();
    double moved = 0;
    for (const auto& e : before.tensors) {
      if (e.dtype != DType::F32) continue;
      auto t0 = tensor_of(before, e.name), t1 = tensor_of(after, e.name), p = tensor_of(phi, e.name);
      EXPECT_TRUE(torch::allclose(t1, t0 + st.epsilon * (p - t0), 1e-5, 1e-6)) << e.name;
      moved += (t1 - t0).abs().sum().item<double>();
    }
    EXPECT_GT(moved, 0.0);
  }
}

TEST(MetaCommand, RunWritesAMetaInitThatAdaptLoads) {
  torch::set_num_threads(1);
  const std::string root = tftest::temp_dir("meta-run");
  trtest::make_pairs(root + "/t1", {"a", "b"}, 40, 36, false);
  trtest::make_pairs(root + "/t2", {"x", "y"}, 36, 40, true);
  {
    std::vector<std::string> args = {"timfusion-train", "meta", "--channels", "4", "--steps", "2", "--crop", "32",
                                     "--batch", "2", "--threads", "1", "--quiet", "--out", root + "/meta",
                                     "--set", "loss.ssim_window=7", "--set", tasks_json(root + "/t1", root + "/t2"),
                                     "--inner-steps", "1"};
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    ASSERT_EQ(cmd_meta(static_cast<int>(argv.size()), argv.data(), 2), 0);
  }
  ModelFile f = load_model_file(root + "/meta/model.safetensors");
  EXPECT_EQ(f.arch.channels, 4);
  EXPECT_NE(f.provenance.find("Reptile"), std::string::npos);

  // A new task with a split file: adapt trains on "train", evaluates "test".
  trtest::make_pairs(root + "/new", {"p1", "p2", "p3", "p4"}, 40, 40, false);
  {
    std::ofstream s(root + "/new/split.txt");
    s << "p1.png train\np2.png test\np3.png train\np4.png test\n";
  }
  std::vector<std::string> args = {"timfusion-train", "adapt", "--init", root + "/meta/model.safetensors",
                                   "--split-dir", root + "/new", "--steps", "3", "--crop", "32", "--batch", "2",
                                   "--threads", "1", "--quiet", "--out", root + "/adapt", "--set", "loss.ssim_window=7",
                                   "--set", "adapt.eval_at=[0,2]", "--metrics", "qabf,mi"};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  ASSERT_EQ(cmd_adapt(static_cast<int>(argv.size()), argv.data(), 2), 0);
  std::ifstream in(root + "/adapt/eval.csv");
  std::string header, line;
  std::getline(in, header);
  EXPECT_EQ(header, "step,loss,intensity,gradient,ssim_loss,qabf,mi");
  std::vector<int> steps;
  while (std::getline(in, line)) steps.push_back(std::stoi(line.substr(0, line.find(','))));
  EXPECT_EQ(steps, (std::vector<int>{0, 2, 3}));
  ModelFile a = load_model_file(root + "/adapt/model.safetensors");
  EXPECT_NE(a.provenance.find("held_out_final"), std::string::npos);
  // The held-out evaluation saw the two "test" pairs only.
  auto prov = nlohmann::json::parse(a.provenance);
  EXPECT_EQ(prov["held_out_final"]["pairs"].get<int>(), 2);
  EXPECT_EQ(prov["data"][0]["pairs"].get<int>(), 2);

  // Comparison of runs: a PNG and a Markdown table.
  std::vector<std::string> cargs = {"timfusion-train", "adapt", "--compare", root + "/adapt=meta",
                                    "--compare", root + "/adapt=again", "--plot", root + "/cmp.png",
                                    "--table", root + "/cmp.md"};
  std::vector<char*> cargv;
  for (auto& s : cargs) cargv.push_back(s.data());
  ASSERT_EQ(cmd_adapt(static_cast<int>(cargv.size()), cargv.data(), 2), 0);
  EXPECT_TRUE(fs::exists(root + "/cmp.png"));
  EXPECT_TRUE(fs::exists(root + "/cmp.md"));
}

// One adapt step from a given init is exactly one Adam step of the fusion
// loss: the first Adam step moves each weight by lr * g / (|g| + eps).
TEST(Adapter, OneStepIsOneAdamStepOfTheFusionLoss) {
  torch::set_num_threads(1);
  const std::string root = tftest::temp_dir("adapt-step");
  trtest::make_pairs(root + "/d", {"a", "b", "c"}, 40, 36, false);
  CommandConfig c = make_config(adapt_spec(), {"--channels", "4", "--steps", "1", "--data", root + "/d", "--out",
                                               root + "/run", "--lr", "0.01", "--no-flip"});
  Adapter ad(c, root + "/run");
  SafetensorsFile before = ad.state();
  // The gradient by hand, on the batch the adapter draws for step 0.
  PairDataset data = PairDataset::load(c.base.data_sources());
  Batch b = data.sample(static_cast<uint64_t>(c.base.optim.seed), 0, 0, 2, 32, false);
  nn::TimNet ref(ad.spec());
  nn::load_state(*ref, before, "before");
  ref->train();
  auto ir = torch::from_blob(b.ir.data(), {b.n, 1, b.h, b.w}).clone(), vis = torch::from_blob(b.vis.data(), {b.n, 1, b.h, b.w}).clone();
  FusionLossWeights w;
  w.ssim_window = 7;
  auto loss = fusion_losses(ref->forward(ir, vis), ir, vis, w).total;
  loss.backward();
  AdaptStats st = ad.step(0);
  EXPECT_NEAR(st.loss, loss.item<double>(), 1e-6);
  SafetensorsFile after = ad.state();
  size_t checked = 0;
  for (const auto& kv : ref->named_parameters()) {
    auto g = kv.value().grad().to(torch::kFloat64);
    auto d = tensor_of(after, kv.key()) - tensor_of(before, kv.key());
    auto expect = -0.01 * g / (g.abs() + 1e-8);
    EXPECT_TRUE(torch::allclose(d, expect, 1e-3, 1e-7)) << kv.key();
    ++checked;
  }
  EXPECT_GT(checked, 10u);
}

// Precise BN: recalibrated on one batch, eval mode normalises that batch with
// its own statistics, so eval-mode and train-mode outputs agree; the result
// does not depend on the running statistics it started from.
TEST(RecalibrateBn, RunningStatisticsBecomeThoseOfTheBatches) {
  torch::set_num_threads(1);
  const std::string root = tftest::temp_dir("precise-bn");
  trtest::make_pairs(root + "/d", {"a", "b"}, 40, 36, false);
  PairDataset data = PairDataset::load(resolve_sources(nlohmann::json::array({root + "/d"}), root, "test"));
  ArchSpec s = ArchSpec::named("ivif-light");
  s.channels = 4;
  torch::manual_seed(3);
  nn::TimNet net(s);
  Batch b = data.sample(11, 0, 7, 2, 32, false);  // the batch recalibrate_bn draws first
  auto ir = torch::from_blob(b.ir.data(), {2, 1, 32, 32}).clone(), vis = torch::from_blob(b.vis.data(), {2, 1, 32, 32}).clone();
  torch::NoGradGuard ng;
  net->train();
  auto train_out = net->forward(ir, vis);
  net->eval();
  const double before = (net->forward(ir, vis) - train_out).abs().max().item<double>();
  EXPECT_GT(before, 1e-3);  // fresh statistics (mean 0, var 1) are not this batch's
  recalibrate_bn(*net, data, 1, 2, 32, 11);
  EXPECT_FALSE(net->is_training());
  // Not exact: running_var holds the unbiased variance, train mode divides by the biased one.
  EXPECT_LT((net->forward(ir, vis) - train_out).abs().max().item<double>(), before * 0.01);
  recalibrate_bn(*net, data, 8, 2, 32, 11);
  SafetensorsFile first = nn::to_safetensors(*net);
  for (auto& buf : net->buffers())
    if (buf.is_floating_point()) buf.fill_(5.0);
  recalibrate_bn(*net, data, 8, 2, 32, 11);
  SafetensorsFile second = nn::to_safetensors(*net);
  size_t stats = 0;
  for (const auto& kv : net->named_buffers())
    if (kv.value().is_floating_point()) {
      EXPECT_TRUE(torch::allclose(tensor_of(first, kv.key()), tensor_of(second, kv.key()))) << kv.key();
      ++stats;
    }
  EXPECT_GE(stats, 4u);  // running_mean and running_var of the cells' BatchNorms
}

TEST(CommandConfig, SplitFilesBecomeExcludeLists) {
  const std::string root = tftest::temp_dir("split");
  trtest::make_pairs(root + "/d", {"n1", "n2", "n3"}, 20, 20, false);
  {
    std::ofstream s(root + "/d/split.txt");
    s << "n1.png train\nn2.png test\nn3.png train\n";
  }
  nlohmann::json e = nlohmann::json::array({{{"dir", root + "/d"}, {"split", "split.txt"}, {"use", "train"}}});
  auto src = resolve_sources(e, root + "/work", "test");
  PairDataset d = PairDataset::load(src);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d.at(0).name, "n1");
  EXPECT_EQ(d.at(1).name, "n3");
  e[0]["use"] = "test";
  PairDataset t = PairDataset::load(resolve_sources(e, root + "/work", "test"));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t.at(0).name, "n2");
  e[0]["use"] = "val";
  EXPECT_THROW(resolve_sources(e, root + "/work", "test"), Error);
  // harvard_medical layout: mri/ + another folder.
  auto [tr, te] = split_dir_entries(tftest::data("harvard_medical/mri_pet"));
  EXPECT_NE(tr["ir"].get<std::string>().find("/mri"), std::string::npos);
  EXPECT_NE(tr["vis"].get<std::string>().find("/pet"), std::string::npos);
  EXPECT_EQ(te["use"], "test");
}

TEST(CommandConfig, SectionKeysAreCheckedAndResumeLocksThem) {
  const std::string root = tftest::temp_dir("cfg");
  trtest::make_pairs(root + "/d", {"a", "b"}, 20, 20, false);
  EXPECT_THROW(make_config(meta_spec(), {"--set", "meta.inner_stepz=3"}), Error);
  EXPECT_THROW(make_config(meta_spec(), {"--set", "meta.epsilon=2"}), Error);
  EXPECT_THROW(make_config(adapt_spec(), {"--set", "adapt.eval_at=5", "--data", root + "/d"}), Error);
  CommandConfig c = make_config(adapt_spec(), {"--data", root + "/d", "--out", root + "/r", "--set", "adapt.eval_every=7"});
  EXPECT_EQ(c.typed_section<AdaptConfig>().eval_every, 7);
  write_run_config(c, root + "/r");
  auto j = nlohmann::json::parse(std::ifstream(root + "/r/config.json"));
  EXPECT_EQ(j["adapt"]["eval_every"], 7);
  EXPECT_EQ(j["crop"], 32);
  // Resume: the section comes back; changing it is refused.
  std::vector<std::string> args = {"x", "adapt", "--resume", root + "/r", "--set", "adapt.eval_every=3"};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  CommandArgs a = parse_command_args(static_cast<int>(argv.size()), argv.data(), 2, adapt_spec());
  EXPECT_THROW(resolve_command_config(a, adapt_spec()), Error);
  args.resize(4);
  args.push_back("--steps");
  args.push_back("9");
  argv.clear();
  for (auto& s : args) argv.push_back(s.data());
  CommandConfig r = resolve_command_config(parse_command_args(static_cast<int>(argv.size()), argv.data(), 2, adapt_spec()),
                                           adapt_spec());
  EXPECT_EQ(r.typed_section<AdaptConfig>().eval_every, 7);
  EXPECT_EQ(r.base.optim.steps, 9);
}
