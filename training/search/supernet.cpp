#include "search/supernet.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "timfusion/torch/networks.h"
#include "run/run_dir.h"
#include "timfusion/error.h"

namespace timfusion::train {

namespace {

// Best and median of `reps` timed calls after two warm-ups (oneDNN primitive creation).
template <typename Fn>
std::pair<double, double> time_calls(Fn&& fn, int reps) {
  fn();
  fn();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms.front(), ms[ms.size() / 2]};
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

class ThreadScope {
 public:
  explicit ThreadScope(int n) : old_(torch::get_num_threads()) { torch::set_num_threads(n); }
  ~ThreadScope() { torch::set_num_threads(old_); }

 private:
  int old_;
};

}  // namespace

std::vector<std::string> SuperNetOptions::default_candidates() {
  return {"Residualblocks_3_1", "Residualblocks_5_1", "Denseblocks_3_1", "DilConv_3_2",
          "SepConv_3_1",        "ECAattention_3",     "SPAattention_3",  "Identity"};
}

void SuperNetOptions::validate() const {
  if (channels < 4 || channels % 2) throw Error("search: channels must be even and at least 4");
  if (downscale != 1 && downscale != 2 && downscale != 4) throw Error("search: downscale must be 1, 2 or 4");
  if (cells < 1 || cells > 8) throw Error("search: cells must be in 1..8");
  if (edges < 1 || edges > 8) throw Error("search: edges must be in 1..8");
  if (candidates.size() < 2) throw Error("search: at least two candidate operations are needed");
  std::set<std::string> seen;
  for (const auto& c : candidates) {
    if (OpName::parse(c).str() != c) throw Error("search: write the candidate \"" + c + "\" as " + OpName::parse(c).str());
    if (!seen.insert(c).second) throw Error("search: candidate \"" + c + "\" is listed twice");
  }
}

MixedEdgeImpl::MixedEdgeImpl(int64_t C, const std::vector<std::string>& candidates) {
  auto list = register_module("ops", torch::nn::ModuleList());
  for (const auto& name : candidates) {
    ops.push_back(nn::make_op(name, C));
    list->push_back(ops.back());
  }
}

torch::Tensor MixedEdgeImpl::forward(const torch::Tensor& x, const torch::Tensor& weights) {
  torch::Tensor out;
  for (size_t k = 0; k < ops.size(); ++k) {
    auto y = weights[static_cast<int64_t>(k)] * ops[k]->forward(x);
    out = out.defined() ? out + y : y;
  }
  return out;
}

SuperCellImpl::SuperCellImpl(int64_t C, int n_edges, const std::vector<std::string>& candidates) {
  preprocess1 = register_module("preprocess1", nn::ReLUConvBN(C, C, 1));
  auto list = register_module("_ops", torch::nn::ModuleList());
  for (int e = 0; e < n_edges; ++e) {
    edges.push_back(MixedEdge(C, candidates));
    list->push_back(edges.back());
  }
}

torch::Tensor SuperCellImpl::forward(torch::Tensor x, const torch::Tensor& weights) {
  x = preprocess1->forward(x);
  for (size_t e = 0; e < edges.size(); ++e) x = edges[e]->forward(x, weights[static_cast<int64_t>(e)]);
  return x;
}

SuperNetImpl::SuperNetImpl(const SuperNetOptions& o) : o_(o) {
  o_.validate();
  const int64_t C = o_.channels, s2 = static_cast<int64_t>(o_.downscale) * o_.downscale;
  stem = register_module("stem", nn::make_stem(C, /*with_bn=*/false, 2 * s2));
  cells = register_module("cells", torch::nn::ModuleList());
  for (int i = 0; i < o_.cells; ++i) cells->push_back(SuperCell(C, o_.edges, o_.candidates));
  stem_out = register_module("stem_out", nn::make_stem_out(C, C, /*prelu=*/true, nn::head_channels(o_.head, o_.downscale)));
  // alpha = 0: every candidate starts with weight 1/K (DARTS uses 1e-3 * randn).
  alpha_ = torch::zeros({o_.edges, static_cast<int64_t>(o_.candidates.size())}).set_requires_grad(true);
}

torch::Tensor SuperNetImpl::forward(const torch::Tensor& ir, const torch::Tensor& vis) {
  // The derived genotype's "inputs" are ["vis", "ir"] (as ivif-light): cat(vis, ir).
  auto x = torch::cat({vis, ir}, 1);
  if (o_.downscale > 1) x = torch::pixel_unshuffle(x, o_.downscale);
  x = stem->forward(x);
  auto w = torch::softmax(alpha_, 1);
  for (auto& c : *cells) x = c->as<SuperCellImpl>()->forward(x, w);
  x = stem_out->forward(x);
  if (o_.downscale > 1) x = torch::pixel_shuffle(x, o_.downscale);
  return nn::apply_head(o_.head, x, vis, ir);
}

ArchSpec SuperNetImpl::derive(const std::string& name) const {
  ArchSpec a;
  a.name = name;
  a.kind = NetKind::Single;
  a.channels = o_.channels;
  a.inputs = {Input::Vis, Input::Ir};
  a.cells.assign(static_cast<size_t>(o_.cells), "Chain2");
  auto best = alpha_.detach().argmax(1);
  for (int e = 0; e < o_.edges; ++e) a.normal.push_back(o_.candidates[static_cast<size_t>(best[e].item<int64_t>())]);
  a.downscale = o_.downscale;
  a.head = o_.head;
  a.validate();
  return a;
}

std::string genotype_json(const ArchSpec& spec) { return nlohmann::json::parse(spec.to_json()).dump(2) + "\n"; }

// ---------------------------------------------------------------- latency

nlohmann::json LatencyTable::to_json() const {
  nlohmann::json ops_j = nlohmann::json::array();
  for (const auto& n : ops) ops_j.push_back({{"op", n}, {"ms", op_ms.at(n)}, {"ms_median", op_ms_median.at(n)}});
  return {{"what", "per-op forward latency, one op on [1, channels, height/downscale, width/downscale], BN folded, NHWC, "
                   "InferenceMode; fixed = stem + preprocess + stem_out (+ pixel shuffles) of the whole network"},
          {"width", width},
          {"height", height},
          {"threads", threads},
          {"channels", channels},
          {"downscale", downscale},
          {"cells", cells},
          {"edges", edges},
          {"reps", reps},
          {"ops", ops_j},
          {"fixed_ms", fixed_ms},
          {"fixed_ms_median", fixed_ms_median},
          {"cpu", cpu},
          {"load_average_at_measurement", load_average},
          {"measured", measured}};
}

LatencyTable LatencyTable::from_json(const nlohmann::json& j) {
  LatencyTable t;
  try {
    t.width = j.at("width").get<int>();
    t.height = j.at("height").get<int>();
    t.threads = j.at("threads").get<int>();
    t.channels = j.at("channels").get<int>();
    t.downscale = j.at("downscale").get<int>();
    t.cells = j.at("cells").get<int>();
    t.edges = j.at("edges").get<int>();
    t.reps = j.at("reps").get<int>();
    for (const auto& e : j.at("ops")) {
      const auto n = e.at("op").get<std::string>();
      t.ops.push_back(n);
      t.op_ms[n] = e.at("ms").get<double>();
      t.op_ms_median[n] = e.at("ms_median").get<double>();
    }
    t.fixed_ms = j.at("fixed_ms").get<double>();
    t.fixed_ms_median = j.at("fixed_ms_median").get<double>();
    t.cpu = j.value("cpu", "");
    t.load_average = j.value("load_average_at_measurement", "");
    t.measured = j.value("measured", "");
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("latency table: ") + e.what());
  }
  return t;
}

bool LatencyTable::matches(const SuperNetOptions& o, int w, int h, int th) const {
  return width == w && height == h && threads == th && channels == o.channels && downscale == o.downscale &&
         cells == o.cells && edges == o.edges && ops == o.candidates;
}

double LatencyTable::predict(const std::vector<std::string>& normal) const {
  double s = 0;
  for (const auto& n : normal) s += op_ms.at(n);
  return fixed_ms + cells * s;
}

torch::Tensor LatencyTable::expected(const torch::Tensor& p) const {
  std::vector<float> v;
  for (const auto& n : ops) v.push_back(static_cast<float>(op_ms.at(n)));
  auto lat = torch::tensor(v, p.options());
  return fixed_ms + cells * (p * lat).sum();
}

std::string LatencyTable::markdown() const {
  std::ostringstream os;
  char buf[160];
  os << "Latency table: " << width << "x" << height << ", downscale " << downscale << " (grid " << width / downscale << "x"
     << height / downscale << "), " << channels << " channels, " << threads << " thread(s), best/median of " << reps
     << " runs; CPU " << cpu << "; load average " << load_average << "\n\n";
  os << "| op | ms (best) | ms (median) |\n|---|---|---|\n";
  for (const auto& n : ops) {
    std::snprintf(buf, sizeof buf, "| %s | %.3f | %.3f |\n", n.c_str(), op_ms.at(n), op_ms_median.at(n));
    os << buf;
  }
  std::snprintf(buf, sizeof buf, "| fixed (stem, %d x preprocess, stem_out) | %.3f | %.3f |\n", cells, fixed_ms,
                fixed_ms_median);
  os << buf;
  return os.str();
}

std::pair<double, double> time_network(const ArchSpec& spec, int width, int height, int threads, int reps) {
  ThreadScope ts(threads);
  nn::TimNet net(spec);
  net->eval();
  net->to_channels_last();
  net->fold_bn();
  c10::InferenceMode guard;
  auto ir = torch::rand({1, 1, height, width}).contiguous(at::MemoryFormat::ChannelsLast);
  auto vis = torch::rand({1, 1, height, width}).contiguous(at::MemoryFormat::ChannelsLast);
  return time_calls([&] { net->forward(ir, vis).clamp(0, 1); }, reps);
}

LatencyTable measure_latency(const SuperNetOptions& o, int width, int height, int threads, int reps) {
  o.validate();
  if (width % o.downscale || height % o.downscale) throw Error("search: latency size must be divisible by downscale");
  LatencyTable t;
  t.width = width, t.height = height, t.threads = threads, t.channels = o.channels, t.downscale = o.downscale;
  t.cells = o.cells, t.edges = o.edges, t.reps = reps, t.ops = o.candidates;
  t.cpu = cpu_model();
  t.load_average = load_average();
  t.measured = utc_now();
  {
    ThreadScope ts(threads);
    torch::manual_seed(0);
    const int64_t h = height / o.downscale, w = width / o.downscale;
    for (const auto& name : o.candidates) {
      auto op = nn::make_op(name, o.channels);
      op->eval();
      nn::to_channels_last(*op);
      op->fold_bn();
      c10::InferenceMode guard;
      auto x = torch::rand({1, o.channels, h, w}).contiguous(at::MemoryFormat::ChannelsLast);
      auto [best, med] = time_calls([&] { op->forward(x); }, reps);
      t.op_ms[name] = best;
      t.op_ms_median[name] = med;
    }
  }
  // The rest of the network: the same net with Identity ops.
  ArchSpec fixed;
  fixed.name = "fixed-part";
  fixed.channels = o.channels;
  fixed.cells.assign(static_cast<size_t>(o.cells), "Chain2");
  fixed.normal.assign(static_cast<size_t>(o.edges), "Identity");
  fixed.downscale = o.downscale;
  std::tie(t.fixed_ms, t.fixed_ms_median) = time_network(fixed, width, height, threads, reps);
  return t;
}

}  // namespace timfusion::train
