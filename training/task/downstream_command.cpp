// `timfusion-train downstream`: the downstream segmentation protocol
// (downstream.h) over several input types, as one command with a run folder:
// config.json, results.json, report.md, report.png.
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "commands.h"
#include "data/pair_dataset.h"
#include "run/command_config.h"
#include "run/run_dir.h"
#include "task/downstream.h"
#include "task/downstream_config.h"
#include "task/downstream_inputs.h"
#include "task/downstream_report.h"
#include "timfusion/error.h"
#include "timfusion/progress.h"

namespace timfusion::train {

namespace {

const char* kDownstreamUsage =
    "Usage: timfusion-train downstream [--input NAME=SPEC ...] [--seeds N] [--scale S]\n"
    "                                  [--task-data DIR] [--task-labels LABELS] [--out DIR] [options]\n"
    "\n"
    "The downstream protocol: for each input (a row), trains the same small\n"
    "segmentation network from the same seeds on the same crops of the training\n"
    "pairs and scores mIoU and per-class IoU on the test pairs (mean ± std over\n"
    "the seeds). SPEC: ir, vis (visible luma), mean ((ir+vis)/2) or a folder of\n"
    "fused images named as the pairs (e.g. timfusion-fuse --output). Default\n"
    "inputs: ir, vis, mean. Data: task.data (default <data>/msrs_seg) with its\n"
    "label folder task.labels; the test pairs are the task.eval_pairs (16) that\n"
    "`train --task` holds out (evenly spaced in name order), so a task-guided\n"
    "model never saw their labels. Writes results.json, report.md, report.png.\n"
    "scripts/task_table.sh runs it for the shipped models.\n"
    "\n"
    "  --input NAME=SPEC   a row (repeatable; = --set downstream.inputs=[...])\n"
    "  --seeds N           seeds seed, seed+1, ... (downstream.seeds)\n"
    "  --scale S           image scale for the network (downstream.scale)\n"
    "  --task-data DIR     labelled pairs: DIR/ir, DIR/vis, DIR/<task.labels>\n"
    "\n";

const CommandSpec& downstream_spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "downstream";
    using T = KeyType;
    s.keys = {
        {"inputs", T::Json, nlohmann::json::array({"ir", "vis", "mean"}), 0, 0, {},
         "rows: NAME=SPEC or SPEC, SPEC = ir | vis | mean | a folder of fused images named as the pairs"},
        {"seeds", T::Int, 3, 1, 100, {}, "seeds per input: seed, seed+1, ... (initialisation and crops)"},
        {"scale", T::Number, 0.5, 0.05, 1, {}, "images (and training labels) resized by this for the network; scored at full size"},
        {"reference", T::String, "vis", 0, 0, {}, "the row the paired mIoU difference is taken to (none when absent)"},
    };
    // Sized for one CPU thread: 3 seeds x 5 inputs in about a quarter of an hour.
    s.base_defaults = {{"steps", 300}, {"batch", 8}, {"crop", 96}, {"lr", 3e-3}, {"lr_min", 1e-4},
                       {"lr_schedule", "cosine"}, {"threads", 1}, {"preview_every", 0}, {"task", {{"width", 8}}}};
    s.flags = {{"--seeds", "downstream.seeds"}, {"--scale", "downstream.scale"}, {"--task-data", "task.data"}};
    s.data_required = false;
    return s;
  }();
  return spec;
}

}  // namespace

namespace {

// start_command() with the repeatable --input gathered into one
// downstream.inputs list; nothing when --help / --help-config answered.
std::optional<CommandRun> start_downstream(int argc, char** argv, int first) {
  std::vector<std::string> args(argv, argv + argc);
  std::vector<std::string> kept(args.begin(), args.begin() + first);
  json inputs = json::array();
  for (int i = first; i < argc; ++i) {
    if (args[i] == "--input") {
      if (i + 1 >= argc) throw UsageError("--input needs a value (NAME=SPEC)");
      inputs.push_back(args[++i]);
    } else if (args[i].rfind("--input=", 0) == 0) {
      inputs.push_back(args[i].substr(8));
    } else {
      kept.push_back(args[i]);
    }
  }
  if (!inputs.empty()) kept.push_back("--set"), kept.push_back("downstream.inputs=" + inputs.dump());
  std::vector<char*> ptrs;
  for (auto& a : kept) ptrs.push_back(a.data());

  std::optional<CommandRun> r =
      start_command(static_cast<int>(ptrs.size()), ptrs.data(), first, downstream_spec(), kDownstreamUsage);
  if (!r) return r;
  r->command_line = command_line(argc, argv);  // as typed (--input, not the --set it became)
  if (r->resume) throw UsageError("downstream runs cannot be resumed: run it again with another --out");
  return r;
}

// The rows: downstream.inputs parsed, folders made absolute, names unique.
std::vector<DownstreamInput> downstream_rows(const DownstreamConfig& dc) {
  std::vector<DownstreamInput> rows;
  std::set<std::string> names;
  for (const auto& e : dc.inputs) {
    if (!e.is_string()) throw Error("downstream.inputs: each entry is a string NAME=SPEC, got " + e.dump());
    DownstreamInput in = parse_downstream_input(e.get<std::string>());
    if (in.is_folder()) in.spec = absolute_path(in.spec);
    if (!names.insert(in.name).second) throw Error("downstream.inputs: two rows are named \"" + in.name + "\"");
    rows.push_back(in);
  }
  if (rows.empty()) throw Error("downstream.inputs is empty: give at least one --input");
  return rows;
}

// results.json before any row: provenance, the split, the settings and the
// classes the test labels hold.
json downstream_results_head(const CommandRun& r, const DownstreamConfig& dc, const DataSource& src,
                             const PairDataset& train_pairs, const PairDataset& test_pairs) {
  const Config& cfg = r.cfg.base;
  const int classes = static_cast<int>(cfg.task.classes);
  json res;
  res["tool"] = "timfusion-train downstream";
  res["git_commit"] = git_commit();
  res["command_line"] = r.command_line;
  res["data"] = src.str();
  res["labels"] = cfg.task.labels;
  res["classes"] = classes;
  res["reference"] = dc.reference;
  json tr = json::array(), te = json::array();
  for (size_t i = 0; i < train_pairs.size(); ++i) tr.push_back(train_pairs.at(i).name);
  for (size_t i = 0; i < test_pairs.size(); ++i) te.push_back(test_pairs.at(i).name);
  res["split"] = {{"rule", "task.eval_pairs = " + std::to_string(test_pairs.size()) +
                           " evenly spaced in name order, the i-th of n at floor((2i+1)N/(2n)): the pairs train --task holds out"},
                  {"train", tr},
                  {"test", te}};
  json seeds = json::array();
  for (int64_t s = 0; s < dc.seeds; ++s) seeds.push_back(cfg.optim.seed + s);
  res["settings"] = {{"steps", cfg.optim.steps}, {"batch", cfg.optim.batch}, {"crop", cfg.optim.crop}, {"flip", cfg.optim.flip},
                     {"lr", cfg.optim.lr}, {"lr_min", cfg.optim.lr_min}, {"lr_schedule", cfg.optim.lr_schedule},
                     {"warmup", cfg.optim.warmup}, {"scale", dc.scale}, {"width", cfg.task.width},
                     {"parameters", seg_net_parameters(cfg.task.width, classes)}, {"balance", cfg.task.balance},
                     {"seeds", seeds}, {"threads", cfg.runtime.threads}};
  std::set<int> present;
  for (size_t i = 0; i < test_pairs.size(); ++i) {
    const cv::Mat& l = test_pairs.at(i).label;
    for (int y = 0; y < l.rows; ++y)
      for (int x = 0; x < l.cols; ++x) present.insert(l.at<uint8_t>(y, x));
  }
  res["present_classes"] = json(std::vector<int>(present.begin(), present.end()));
  res["rows"] = json::array();
  return res;
}

// One row of results.json: the input's train/test images scored for every
// seed; `done` counts the steps for the progress bar.
json score_downstream_row(const DownstreamInput& in, const std::pair<std::vector<SegImage>, std::vector<SegImage>>& images,
                          const Config& cfg, int64_t n_seeds, Progress& bar, long& done) {
  const int64_t seed0 = cfg.optim.seed;
  json row = {{"name", in.name}, {"spec", in.spec}, {"seeds", json::array()}};
  for (int64_t s = 0; s < n_seeds; ++s) {
    const std::string what = in.name + " seed " + std::to_string(seed0 + s);
    SeedScore sc = train_and_score(images.first, images.second, cfg, seed0 + s, [&](int64_t step, double loss) {
      bar.update(done + static_cast<long>(step), what + " loss " + fmt("%.3f", loss));
    });
    done += static_cast<long>(cfg.optim.steps);
    json iou = json::array();
    for (double v : sc.iou) iou.push_back(std::isfinite(v) ? json(v) : json());
    row["seeds"].push_back({{"seed", sc.seed}, {"miou", sc.miou}, {"pixel_accuracy", sc.pixel_accuracy}, {"iou", iou},
                            {"final_loss", sc.final_loss}, {"seconds", sc.seconds}});
  }
  return row;
}

}  // namespace

int cmd_downstream(int argc, char** argv, int first) {
  std::optional<CommandRun> r = start_downstream(argc, argv, first);
  if (!r) return 0;
  const CommandConfig& cc = r->cfg;
  const Config& cfg = cc.base;
  const DownstreamConfig dc = cc.typed_section<DownstreamConfig>();
  const std::string dir = r->dir;
  if (cfg.runtime.threads > 0) use_threads(static_cast<int>(cfg.runtime.threads));
  const std::vector<DownstreamInput> rows = downstream_rows(dc);

  const DataSource src = cfg.task_source();
  PairDataset all = PairDataset::load({src}, true, static_cast<int>(cfg.task.classes));
  auto [train_pairs, test_pairs] = all.split_holdout(static_cast<size_t>(cfg.task.eval_pairs));
  const int64_t n_seeds = dc.seeds, steps = cfg.optim.steps;
  json res = downstream_results_head(*r, dc, src, train_pairs, test_pairs);
  write_run_config(cc, dir);

  if (!r->quiet) {
    std::fprintf(stderr, "timfusion-train downstream: %zu inputs x %lld seeds x %lld steps; %zu training pairs, %zu test pairs (%s); run folder %s\n",
                 rows.size(), static_cast<long long>(n_seeds), static_cast<long long>(steps), train_pairs.size(),
                 test_pairs.size(), cfg.task.labels.c_str(), dir.c_str());
    for (const auto& n : all.notes()) std::fprintf(stderr, "  note: %s\n", n.c_str());
  }
  // Read every input first: a missing fused image fails before any training.
  std::vector<std::pair<std::vector<SegImage>, std::vector<SegImage>>> images;
  for (const auto& in : rows) images.emplace_back(input_images(train_pairs, in, dc.scale), input_images(test_pairs, in, dc.scale));

  const long total = static_cast<long>(rows.size() * n_seeds * steps);
  Progress bar("downstream", total, !r->quiet && total > 0);
  long done = 0;
  for (size_t k = 0; k < rows.size(); ++k) {
    res["rows"].push_back(score_downstream_row(rows[k], images[k], cfg, n_seeds, bar, done));
    // Partial results after each row: a long run can be watched (and is not lost).
    summarise_downstream(res);
    res["finished"] = utc_now();
    write_text_atomic(dir + "/results.json", res.dump(2) + "\n");
    const auto& last = res["rows"].back();
    if (!r->quiet)
      std::fprintf(stderr, "\n  %-16s mIoU %.3f +- %.3f\n", rows[k].name.c_str(), last["miou_mean"].get<double>(),
                   last["miou_std"].get<double>());
  }
  if (total > 0) bar.finish();
  const std::string md = downstream_markdown(res);
  write_text_atomic(dir + "/report.md", md);
  write_downstream_png(dir + "/report.png", res);
  std::fputs(md.c_str(), stdout);
  if (!r->quiet) std::fprintf(stderr, "timfusion-train downstream: wrote %s/{results.json,report.md,report.png}\n", dir.c_str());
  return 0;
}

}  // namespace timfusion::train
