#include "run/config.h"

#include "run/typed_fields.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "timfusion/device_name.h"
#include "timfusion/error.h"
#include "timfusion/paths.h"

namespace fs = std::filesystem;

namespace timfusion::train {

namespace {

std::string default_task_data() { return fs::path(data_root() + "/msrs_seg").lexically_normal().string(); }

std::vector<KeySpec> make_schema() {
  using T = KeyType;
  std::vector<KeySpec> s = {
      {"arch", T::String, "ivif-light", 0, 0, {}, "architecture: a built-in name (ivif-light, ivif-full, ...) or a genotype JSON file"},
      {"channels", T::Int, 0, 0, 1024, {}, "feature channels (0 = the architecture's own, 48 for ivif-light)"},
      {"init", T::String, "", 0, 0, {}, "start from these weights (.safetensors) instead of a random init"},
      {"data", T::Data, json::array(), 0, 0, {},
       "training pairs: a list of dataset folders (with ir/ and vis/) or objects "
       "{\"dir\"|\"ir\"+\"vis\", \"exclude\": names file, \"labels\": folder}"},
      {"seed", T::Int, 1, 0, 9.0e15, {}, "seed of the initialisation and of every batch (batch k uses (seed, k))"},
      {"steps", T::Int, 2000, 1, 1e9, {}, "optimisation steps"},
      {"batch", T::Int, 4, 1, 1024, {}, "crops per step"},
      {"crop", T::Int, 128, 16, 4096, {}, "crop side in pixels (smaller images are reflect-padded)"},
      {"flip", T::Bool, true, 0, 0, {}, "random horizontal and vertical flips"},
      {"lr", T::Number, 1e-3, 1e-9, 10, {}, "Adam learning rate (peak)"},
      {"lr_min", T::Number, 1e-5, 0, 10, {}, "learning rate at the last step (cosine schedule)"},
      {"lr_schedule", T::String, "cosine", 0, 0, {"cosine", "constant"}, "learning-rate schedule after warm-up"},
      {"warmup", T::Int, 0, 0, 1e9, {}, "linear warm-up steps"},
      {"grad_clip", T::Number, 0.0, 0, 1e9, {}, "clip the gradient's global L2 norm (0 = off)"},
      {"noise", T::Number, 0.0, 0, 50, {},
       "sensor-noise augmentation: Gaussian noise of sigma uniform in [0, noise] grey levels on each input crop; "
       "the losses compare with the clean crops (0 = off); with noise_model = lowlight: the visible crop's "
       "largest noise sigma at mid-grey"},
      {"noise_model", T::String, "gaussian", 0, 0, {"gaussian", "lowlight"},
       "gaussian: the same Gaussian model on both inputs; lowlight: a low-light colour camera (signal-dependent "
       "shot noise + read noise, quantised to 8 bit) on the visible crop, Gaussian noise plus column/row "
       "fixed-pattern noise up to noise_ir grey levels on the IR crop (data/sensor_noise.h)"},
      {"noise_ir", T::Number, 3.0, 0, 50, {}, "noise_model = lowlight: the IR crop's largest noise sigma (grey levels)"},
      {"threads", T::Int, 0, 0, 256, {}, "CPU threads (0 = LibTorch's choice); results are bit-exact for a fixed count"},
      {"device", T::String, "auto", 0, 0, {},
       "where to train: auto (CUDA when available, else CPU), cpu, cuda or cuda:N (may change on --resume)"},
      {"precision", T::String, "auto", 0, 0, {"auto", "fp32", "bf16", "fp16"},
       "forward passes under CUDA autocast (weights, Adam and losses stay fp32); auto = bf16 on CUDA, fp32 on CPU"},
      {"loader_thread", T::String, "auto", 0, 0, {"auto", "on", "off"},
       "crop the next batch on a second thread during a step (auto: on with CUDA, pinned memory)"},
      {"loss.intensity", T::Number, 1.0, 0, 1e6, {}, "weight of L_int = mean|F - max(I, V)|"},
      {"loss.intensity_target", T::String, "max", 0, 0, {"max", "salient"},
       "target of L_int: max = max(I, V) per pixel; salient = w I + (1 - w) V with a smooth weight w that favours, "
       "per region, the source deviating more from its image's mean (keeps dark visible and bright IR regions: "
       "contrast, SD and EN)"},
      {"loss.salient_window", T::Int, 15, 3, 63, {}, "salient target: box window (px) of the region means and of the weight's smoothing"},
      {"loss.salient_softness", T::Number, 8.0, 0.1, 255, {},
       "salient target: grey levels of deviation difference over which the weight goes from 27 % to 73 % (sigmoid scale)"},
      {"loss.gradient", T::Number, 10.0, 0, 1e6, {}, "weight of L_grad = mean| |grad F| - max(|grad I|, |grad V|) | (Sobel)"},
      {"loss.gradient_gain", T::Number, 1.0, 0.5, 4, {},
       "texture target gain k in L_grad = mean| |grad F| - k max(|grad I|, |grad V|) |: 1 = keep the stronger source "
       "edge; > 1 asks for crisper edges than either source (SF/AG/EI reward it, Qabf and SSIM punish overshoot)"},
      {"loss.contrast", T::Number, 0.0, 0, 1e6, {},
       "weight of L_con = mean max(0, sd(T) - sd(F)): a floor on the fused image's contrast at the intensity target's "
       "(sd over the crop, or over loss.contrast_window boxes); 0 = off"},
      {"loss.contrast_window", T::Int, 0, 0, 255, {}, "L_con: box window (px) of the standard deviation; 0 = the whole crop"},
      {"loss.contrast_target", T::String, "intensity", 0, 0, {"intensity", "salient"},
       "L_con's reference: intensity = L_int's target; salient = the salient target whatever L_int's is (so a max(I, V) "
       "intensity target, which copies a source as MI rewards, keeps the salient target's contrast)"},
      {"loss.edge", T::Number, 0.0, 0, 1e6, {},
       "weight of L_edge = mean |Sobel(F) - k Sobel(W)| over x and y, W the source with the stronger edge per pixel: "
       "keeps each edge's polarity and orientation (what Qabf scores), not only its strength; 0 = off"},
      {"loss.ssim", T::Number, 1.0, 0, 1e6, {}, "weight of L_ssim = 1 - (SSIM(F, I) + SSIM(F, V)) / 2"},
      {"loss.ssim_window", T::Int, 11, 3, 63, {}, "SSIM Gaussian window size (sigma 1.5), odd"},
      {"task.enabled", T::Bool, false, 0, 0, {}, "task guidance: train a segmentation net on the fused image (bilevel)"},
      {"task.data", T::String, default_task_data(), 0, 0, {}, "task dataset folder with ir/, vis/ and label folders"},
      {"task.labels", T::String, "labels", 0, 0, {"labels", "labels_pseudo_bdlfusion"},
       "label folder in task.data: box-filled masks (140 pairs) or predicted 9-class masks (82)"},
      {"task.classes", T::Int, 9, 2, 256, {}, "segmentation classes (MFNet numbering: 9)"},
      {"task.lambda", T::Number, 0.1, 0, 1e6, {}, "weight of the task loss in the fusion net's (upper-level) objective"},
      {"task.lr", T::Number, 1e-3, 1e-9, 10, {}, "Adam learning rate of the task net (lower level)"},
      {"task.inner_steps", T::Int, 1, 1, 100, {}, "lower-level (task net) updates per fusion-net update"},
      {"task.width", T::Int, 16, 4, 256, {}, "segmentation net base width"},
      {"task.batch", T::Int, 0, 0, 1024, {}, "task crops per step (0 = batch)"},
      {"task.crop", T::Int, 0, 0, 4096, {}, "task crop side (0 = crop)"},
      {"task.eval_pairs", T::Int, 16, 1, 100000, {}, "labelled pairs held out to measure the effect (never trained on)"},
      {"task.balance", T::Bool, true, 0, 0, {},
       "weight the task loss's classes by 1/sqrt(pixel frequency) in the training labels (mean weight 1)"},
      {"task.baseline", T::Bool, true, 0, 0, {}, "also train a same-size task net on the visible image only, for comparison"},
      {"checkpoint_every", T::Int, 100, 1, 1e9, {}, "steps between checkpoints (also written on Ctrl-C and at the end)"},
      {"preview_every", T::Int, 250, 0, 1e9, {}, "steps between preview images (0 = only at the end)"},
      {"preview_pairs", T::Int, 3, 1, 64, {}, "pairs shown in previews"},
      {"preview_size", T::Int, 192, 32, 4096, {}, "side of the centre crop shown per preview pair"},
      {"out", T::String, "", 0, 0, {}, "run folder (default runs/train-YYYYmmdd-HHMMSS)"},
  };
  return s;
}

const KeySpec* find_key(const std::string& key) {
  for (const auto& k : Config::schema())
    if (k.key == key) return &k;
  return nullptr;
}

// Closest schema key by edit distance, for "did you mean" hints.
std::string suggestion(const std::string& key) {
  auto dist = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string best;
  size_t bd = 4;
  for (const auto& k : Config::schema()) {
    size_t d = dist(key, k.key);
    if (d < bd) bd = d, best = k.key;
  }
  return best.empty() ? "" : " (did you mean \"" + best + "\"?)";
}

std::string type_name(KeyType t) {
  switch (t) {
    case KeyType::Int: return "an integer";
    case KeyType::Number: return "a number";
    case KeyType::Bool: return "true or false";
    case KeyType::String: return "a string";
    case KeyType::Data: return "a list of data folders";
    case KeyType::Json: return "JSON";
  }
  return "?";
}

void check_data(const json& v, const std::string& where) {
  if (!v.is_array()) throw Error(where + ": \"data\" must be " + type_name(KeyType::Data));
  for (const auto& e : v) {
    if (e.is_string()) continue;
    if (!e.is_object()) throw Error(where + ": each \"data\" entry must be a folder name or an object");
    for (auto it = e.begin(); it != e.end(); ++it) {
      static const char* known[] = {"dir", "ir", "vis", "labels", "exclude"};
      if (std::find(std::begin(known), std::end(known), it.key()) == std::end(known))
        throw Error(where + ": unknown field \"" + it.key() + "\" in a \"data\" entry (known: dir, ir, vis, labels, exclude)");
      if (!it.value().is_string()) throw Error(where + ": \"data\" field \"" + it.key() + "\" must be a string");
    }
    if (!e.contains("dir") && !(e.contains("ir") && e.contains("vis")))
      throw Error(where + ": a \"data\" entry needs \"dir\" or both \"ir\" and \"vis\"");
  }
}

}  // namespace

json coerce_value(const KeySpec& k, json v, const std::string& name, const std::string& where) {
  auto bad = [&](const std::string& why) -> Error {
    return Error(where + ": bad value " + v.dump() + " for \"" + name + "\": " + why);
  };
  switch (k.type) {
    case KeyType::Int: {
      if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) v = static_cast<int64_t>(v.get<double>());
      if (!v.is_number_integer()) throw bad("expected " + type_name(k.type));
      break;
    }
    case KeyType::Number:
      if (!v.is_number()) throw bad("expected " + type_name(k.type));
      v = v.get<double>();
      if (!std::isfinite(v.get<double>())) throw bad("not a finite number");
      break;
    case KeyType::Bool:
      if (!v.is_boolean()) throw bad("expected " + type_name(k.type));
      break;
    case KeyType::String:
      if (v.is_number()) v = v.dump();
      if (!v.is_string()) throw bad("expected " + type_name(k.type));
      if (!k.choices.empty() && std::find(k.choices.begin(), k.choices.end(), v.get<std::string>()) == k.choices.end()) {
        std::string c;
        for (const auto& s : k.choices) c += (c.empty() ? "" : ", ") + s;
        throw bad("expected one of " + c);
      }
      break;
    case KeyType::Data:
      if (v.is_string()) v = json::array({v});
      check_data(v, where);
      break;
    case KeyType::Json:
      if (v.is_string()) {  // --set key='[...]' arrives parsed; a bare string may be JSON text
        try {
          v = json::parse(v.get<std::string>());
        } catch (const json::exception&) {
        }
      }
      if (!k.def.is_null() && v.type() != k.def.type()) throw bad("expected " + std::string(k.def.type_name()));
      break;
  }
  if ((k.type == KeyType::Int || k.type == KeyType::Number) && k.min < k.max) {
    double x = v.get<double>();
    if (x < k.min || x > k.max) {
      std::ostringstream os;
      os << "must be between " << k.min << " and " << k.max;
      throw bad(os.str());
    }
  }
  return v;
}

namespace {

void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, json>>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    // An object is a group of keys unless the schema knows it as a leaf.
    if (it.value().is_object() && !find_key(key))
      flatten(it.value(), key, out);
    else
      out.emplace_back(key, it.value());
  }
}

DataSource source_of(const json& e) {
  DataSource s;
  if (e.is_string()) {
    s.ir = (fs::path(e.get<std::string>()) / "ir").string();
    s.vis = (fs::path(e.get<std::string>()) / "vis").string();
    return s;
  }
  std::string dir = e.value("dir", "");
  s.ir = e.contains("ir") ? e["ir"].get<std::string>() : (fs::path(dir) / "ir").string();
  s.vis = e.contains("vis") ? e["vis"].get<std::string>() : (fs::path(dir) / "vis").string();
  if (e.contains("labels")) {
    std::string l = e["labels"].get<std::string>();
    s.labels = (!dir.empty() && fs::path(l).is_relative() && !fs::exists(l)) ? (fs::path(dir) / l).string() : l;
  }
  if (e.contains("exclude")) {
    std::string x = e["exclude"].get<std::string>();
    // Relative exclude lists are looked up in the dataset folder first.
    s.exclude = (!dir.empty() && fs::path(x).is_relative() && fs::exists(fs::path(dir) / x)) ? (fs::path(dir) / x).string() : x;
  }
  return s;
}

}  // namespace

std::string DataSource::str() const {
  std::string r = "ir=" + ir + " vis=" + vis;
  if (!labels.empty()) r += " labels=" + labels;
  if (!exclude.empty()) r += " exclude=" + exclude;
  return r;
}

namespace {
// The table and TrainSettings::fields() must name the same keys: a key
// without a member could be set but never read, a member without a key
// would keep its C++ initialiser instead of the table's default.
void check_bindings(const std::vector<KeySpec>& schema) {
  CollectKeys bound;
  TrainSettings::fields(static_cast<const TrainSettings&>(TrainSettings()), bound);
  for (const auto& k : schema)
    if (!bound.keys.erase(k.key)) throw Error("internal: config key \"" + k.key + "\" has no typed field");
  if (!bound.keys.empty()) throw Error("internal: typed field \"" + *bound.keys.begin() + "\" is not a config key");
}
}  // namespace

const std::vector<KeySpec>& Config::schema() {
  static const std::vector<KeySpec> s = [] {
    std::vector<KeySpec> keys = make_schema();
    check_bindings(keys);
    return keys;
  }();
  return s;
}

Config::Config() {
  for (const auto& k : schema()) {
    AssignField a{k.key, k.def};
    TrainSettings::fields(static_cast<TrainSettings&>(*this), a);
  }
}

json Config::values() const {
  json j = json::object();
  TrainSettings::fields(static_cast<const TrainSettings&>(*this), WriteFields{j});
  return j;
}

namespace {
// "device" is a string with a shape (cuda:N), not one of fixed choices:
// core's parser (device_name.h) decides, the message names the config key.
void check_device_value(const std::string& dev) {
  try {
    parse_device_name(dev);
  } catch (const Error&) {
    throw Error("bad value \"" + dev + "\" for \"device\": expected auto, cpu, cuda or cuda:N");
  }
}
}  // namespace

void Config::set(const std::string& key, const json& value, const std::string& origin) {
  const KeySpec* k = find_key(key);
  if (!k) throw Error(origin + ": unknown config key \"" + key + "\"" + suggestion(key) + " (see --help-config)");
  json v = coerce_value(*k, value, key, origin);
  if (key == "device") check_device_value(v.get<std::string>());  // at once: a command-line mistake is a usage error
  AssignField a{key, v};
  TrainSettings::fields(static_cast<TrainSettings&>(*this), a);
}

void Config::merge(const json& j, const std::string& origin) {
  if (!j.is_object()) throw Error(origin + ": the configuration must be a JSON object");
  std::vector<std::pair<std::string, json>> flat;
  flatten(j, "", flat);
  for (auto& [k, v] : flat) set(k, v, origin);
}

void Config::merge_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read the configuration file");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
  merge(j, path);
}

void Config::set(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("--set expects key=value, got \"" + assignment + "\"");
  std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  json v;
  try {
    v = json::parse(text);
  } catch (const json::exception&) {
    v = text;  // a bare word: a string
  }
  set(key, v, "--set " + key);
}

void Config::validate() const {
  if (loss.ssim_window % 2 == 0) throw Error("\"loss.ssim_window\" must be odd, got " + std::to_string(loss.ssim_window));
  if (loss.ssim > 0 && optim.crop < loss.ssim_window)
    throw Error("\"crop\" (" + std::to_string(optim.crop) + ") must be at least \"loss.ssim_window\" (" +
                std::to_string(loss.ssim_window) + ")");
  if (loss.intensity + loss.gradient + loss.ssim <= 0 && !(task.enabled && task.lambda > 0))
    throw Error("all loss weights are 0: nothing to train");
  if (optim.lr_min > optim.lr) throw Error("\"lr_min\" must not exceed \"lr\"");
  check_device_value(runtime.device);
  if (data.empty() && !task.enabled)
    throw Error("no training data: give --data DIR (a folder with ir/ and vis/) or \"data\" in the config");
}

std::vector<DataSource> Config::data_sources() const {
  std::vector<DataSource> r;
  for (const auto& e : data) r.push_back(source_of(e));
  return r;
}

DataSource Config::task_source() const {
  json e = {{"dir", task.data}, {"labels", task.labels}};
  return source_of(e);
}

std::string Config::describe() { return describe_keys(schema(), ""); }

std::string describe_keys(const std::vector<KeySpec>& keys, const std::string& prefix) {
  std::ostringstream os;
  for (const auto& k : keys) {
    os << "  " << prefix << k.key << " = " << k.def.dump() << "\n      " << k.help;
    if (!k.choices.empty()) {
      os << " [";
      for (size_t i = 0; i < k.choices.size(); ++i) os << (i ? "|" : "") << k.choices[i];
      os << "]";
    }
    os << "\n";
  }
  return os.str();
}

json data_entry(const std::string& dir, const std::string& exclude) {
  json e = {{"dir", dir}};
  if (!exclude.empty()) e["exclude"] = exclude;
  return e;
}

double scheduled_lr(const Config& cfg, int64_t k) {
  const double lr = cfg.optim.lr, lo = cfg.optim.lr_min;
  const int64_t steps = cfg.optim.steps, warm = cfg.optim.warmup;
  if (k < warm) return lr * static_cast<double>(k + 1) / static_cast<double>(warm);
  if (cfg.optim.lr_schedule == "constant") return lr;
  double p = steps > warm ? static_cast<double>(k - warm) / static_cast<double>(steps - warm) : 1.0;
  return lo + (lr - lo) * 0.5 * (1 + std::cos(M_PI * std::min(1.0, p)));
}

std::string data_root() {
  const char* env = std::getenv("TIMFUSION_DATA_DIR");
  if (env && *env) return env;
  // An installed timfusion-train knows no data folder of the build machine.
  std::string built = uninstalled_data_dir();
  return built.empty() ? "../shared/data" : built;
}

}  // namespace timfusion::train
