#include "timfusion/arch.h"

#include <cstdio>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "strict_json.h"
#include "timfusion/arch_limits.h"
#include "timfusion/error.h"
#include "timfusion/input_file.h"

using nlohmann::json;

namespace timfusion {

namespace {

const std::set<std::string> kOpTypes = {"Residualblocks", "Denseblocks", "DilConv", "SepConv",
                                        "ECAattention",   "SPAattention", "Identity"};

// Bounds of every numeric genotype field. Every real network (the reference
// genotypes and searched ones: kernels 3-7, dilation 1-2, 2 cells, 8-64
// channels, downscale up to 4) fits with wide margin; the bounds exist so that
// a genotype from an untrusted weight file cannot ask for an absurd network.
// A new numeric field gets its row here and a check_bound() in validate().
struct FieldBound {
  const char* field;
  int64_t min, max;
};
constexpr FieldBound kFieldBounds[] = {
    {"channels", 2, 1024},
    {"downscale", 1, 4},      // and a power of two: 1, 2 or 4
    {"kernel size", 1, 15},   // op names' _k (odd)
    {"dilation", 1, 8},       // op names' _d
    {"cells", 1, 16},         // entries of "cells"
    {"operations", 1, 16},    // entries of "normal", "chain_fusion", stage2 "g1", "g2"
    {"stage2.cells", 1, 16},  // Chain2 cells per stage-2 stream
    {"name length", 0, 200},
    {"detail_coring", 0, 32},  // grey levels of 255
    {"salient_prior", 0, 64},  // grey levels of softness
};

// noise_coring: k of k * (noise estimate); 8 already cores away nearly all
// detail of a noisy frame.
constexpr double kMaxNoiseCoring = 8.0;

const FieldBound& bound(const std::string& field) {
  for (const auto& b : kFieldBounds)
    if (field == b.field) return b;
  throw std::logic_error("no bound for " + field);
}

void check_bound(int64_t v, const std::string& field, const std::string& who) {
  const FieldBound& b = bound(field);
  if (v < b.min || v > b.max)
    throw Error(who + ": " + field + " " + std::to_string(v) + " is outside " + std::to_string(b.min) + ".." +
                std::to_string(b.max));
}

// A JSON integer within the field's bounds; floats (48.0, 1e30) and numbers
// out of range are refused before any conversion (no wrap-around).
int int_field(const json& j, const char* key, int def, const std::string& field) {
  if (!j.contains(key)) return def;
  const json& v = j[key];
  const FieldBound& b = bound(field);
  const std::string range = std::to_string(b.min) + ".." + std::to_string(b.max);
  if (!v.is_number_integer()) {
    std::string text = v.dump();
    if (text.size() > 40) text = text.substr(0, 40) + "...";
    throw Error(std::string("\"") + key + "\" must be a whole number in " + range + ", not " + text);
  }
  // Unsigned first: 2^64-1 must not become -1 on the way.
  const bool in_range = v.is_number_unsigned()
                            ? v.get<uint64_t>() <= static_cast<uint64_t>(b.max) && static_cast<int64_t>(v.get<uint64_t>()) >= b.min
                            : v.get<int64_t>() >= b.min && v.get<int64_t>() <= b.max;
  if (!in_range) throw Error(std::string("\"") + key + "\" is " + v.dump() + ", outside " + range);
  return static_cast<int>(v.get<int64_t>());
}

bool is_attention(const std::string& t) { return t == "ECAattention" || t == "SPAattention"; }

const char* kind_name(NetKind k) {
  switch (k) {
    case NetKind::Single: return "single";
    case NetKind::IvifTwoStage: return "ivif-two-stage";
    case NetKind::MmifTwoStage: return "mmif-two-stage";
  }
  return "?";
}

NetKind parse_kind(const std::string& s) {
  if (s == "single") return NetKind::Single;
  if (s == "ivif-two-stage") return NetKind::IvifTwoStage;
  if (s == "mmif-two-stage") return NetKind::MmifTwoStage;
  throw Error("unknown network kind \"" + s + "\" (expected single, ivif-two-stage or mmif-two-stage)");
}

Input parse_input(const std::string& s) {
  if (s == "ir") return Input::Ir;
  if (s == "vis") return Input::Vis;
  throw Error("unknown input \"" + s + "\" (expected \"ir\" or \"vis\")");
}

// Stage 1 of every two-stage reference model (genotype fusion_M).
ArchSpec two_stage_base(const std::string& name, NetKind kind) {
  ArchSpec a;
  a.name = name;
  a.kind = kind;
  a.cells = {"Fusion", "Chain2"};
  a.chain_fusion = {"Residualblocks_3_1", "DilConv_3_2"};
  a.normal = {"Denseblocks_3_1", "DilConv_3_2"};
  a.stage2_cells = 2;
  return a;
}

std::map<std::string, ArchSpec> builtins() {
  std::map<std::string, ArchSpec> m;
  ArchSpec light;
  light.name = "ivif-light";
  light.cells = {"Chain2", "Chain2"};
  light.normal = {"Residualblocks_3_1", "ECAattention_3"};
  m[light.name] = light;

  // IVIF/testFusion.py: model_1(ir, vis), model_2(vis, ir, f1) in train mode.
  ArchSpec full = two_stage_base("ivif-full", NetKind::IvifTwoStage);
  full.inputs = {Input::Ir, Input::Vis};
  full.stage2_g1 = {"SPAattention_3", "DilConv_3_2"};   // fusion_ir_proposed
  full.stage2_g2 = {"ECAattention_3", "SPAattention_3"};  // fusion_vis_proposed
  full.stage2_batch_stats = true;
  m[full.name] = full;

  // MmIF scripts; the "ir" slot holds the MRI, "vis" the other modality.
  ArchSpec ct = two_stage_base("mmif-ct", NetKind::MmifTwoStage);
  ct.inputs = {Input::Ir, Input::Vis};  // model_1(MRI, CT)
  ct.stage2_g1 = {"Residualblocks_5_1", "Residualblocks_5_1"};
  ct.stage2_g2 = {"Residualblocks_5_1", "SPAattention_3"};
  m[ct.name] = ct;

  ArchSpec pet = two_stage_base("mmif-pet", NetKind::MmifTwoStage);
  pet.inputs = {Input::Vis, Input::Ir};  // model_1(PET_Y, MRI)
  pet.stage2_g1 = {"SepConv_3_1", "Residualblocks_5_1"};
  pet.stage2_g2 = {"Residualblocks_3_1", "Residualblocks_5_1"};
  m[pet.name] = pet;

  ArchSpec spect = two_stage_base("mmif-spect", NetKind::MmifTwoStage);
  spect.inputs = {Input::Ir, Input::Vis};  // model_1(MRI, SPECT_Y)
  spect.stage2_g1 = {"Residualblocks_5_1", "Denseblocks_3_1"};
  spect.stage2_g2 = {"Residualblocks_3_1", "SPAattention_3"};
  m[spect.name] = spect;
  return m;
}

void validate_ops(const std::vector<std::string>& ops, const std::string& where) {
  if (ops.empty()) throw Error(where + " lists no operations");
  check_bound(static_cast<int64_t>(ops.size()), "operations", where);
  for (const auto& op : ops) {
    try {
      OpName::parse(op);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  }
}

std::vector<std::string> string_list(const json& j, const char* key) {
  std::vector<std::string> v;
  if (!j.contains(key)) return v;
  if (!j[key].is_array()) throw Error(std::string("\"") + key + "\" must be a list of strings");
  for (const auto& e : j[key]) {
    if (!e.is_string()) throw Error(std::string("\"") + key + "\" must be a list of strings");
    v.push_back(e.get<std::string>());
  }
  return v;
}

}  // namespace

OpName OpName::parse(const std::string& name) {
  std::vector<std::string> parts;
  std::stringstream ss(name);
  std::string p;
  while (std::getline(ss, p, '_')) parts.push_back(p);
  OpName op;
  if (parts.empty() || !kOpTypes.count(parts[0]))
    throw Error("unknown operation \"" + (name.size() > 60 ? name.substr(0, 60) + "..." : name) +
                "\" (known: Residualblocks_k_d, Denseblocks_k_d, DilConv_k_d, SepConv_k_d, ECAattention_k, "
                "SPAattention_k, Identity)");
  op.type = parts[0];
  // Digits only, bounded before conversion (no "+3", " 3" or wrap-around).
  auto num = [&](size_t i, const char* field) {
    const std::string& d = parts[i];
    const FieldBound& b = bound(field);
    if (d.empty() || d.size() > 4 || d.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(d) < b.min || std::stoi(d) > b.max)
      throw Error("bad " + std::string(field) + " \"" + (d.size() > 20 ? d.substr(0, 20) + "..." : d) +
                  "\" in operation \"" + (name.size() > 60 ? name.substr(0, 60) + "..." : name) + "\" (" +
                  std::to_string(b.min) + ".." + std::to_string(b.max) + ")");
    return std::stoi(d);
  };
  if (op.type == "Identity") {
    if (parts.size() != 1) throw Error("operation \"" + name + "\" takes no parameters");
    return op;
  }
  if (is_attention(op.type)) {
    // Attention ops take only a kernel size; the reference ignores dilation.
    if (parts.size() != 2) throw Error("operation \"" + name + "\" must be " + op.type + "_k");
    op.kernel = num(1, "kernel size");
  } else {
    if (parts.size() != 3) throw Error("operation \"" + name + "\" must be " + op.type + "_k_d");
    op.kernel = num(1, "kernel size");
    op.dilation = num(2, "dilation");
  }
  if (op.kernel % 2 == 0) throw Error("operation \"" + name + "\": kernel size must be odd");
  // The reference reads SepConv's "dilation" field as a stride; only 1 keeps the size.
  if (op.type == "SepConv" && op.dilation != 1) throw Error("operation \"" + name + "\": SepConv needs _1 (stride)");
  return op;
}

std::string OpName::str() const {
  if (type == "Identity") return type;
  if (is_attention(type)) return type + "_" + std::to_string(kernel);
  return type + "_" + std::to_string(kernel) + "_" + std::to_string(dilation);
}

int ArchSpec::pad_multiple() const {
  int m = downscale;
  for (const auto& c : cells)
    if (c == "Fusion") return 4 * m;  // two halvings inside the cell, on the (down)scaled grid
  return m;
}

const char* head_name(Head head) {
  switch (head) {
    case Head::Image: return "image";
    case Head::Blend: return "blend";
    case Head::Detail: return "detail";
  }
  return "?";
}

Head parse_head(const std::string& name) {
  for (Head h : {Head::Image, Head::Blend, Head::Detail})
    if (name == head_name(h)) return h;
  throw Error("\"head\" must be \"image\", \"blend\" or \"detail\", not \"" + name + "\"");
}

void ArchSpec::validate() const {
  check_bound(static_cast<int64_t>(name.size()), "name length", "architecture name");
  const std::string who = "architecture \"" + name + "\"";
  check_bound(channels, "channels", who);
  if (cells.empty()) throw Error(who + " has no cells");
  check_bound(static_cast<int64_t>(cells.size()), "cells", who);
  bool chain = false, fusion = false;
  for (const auto& c : cells) {
    if (c == "Chain2") chain = true;
    else if (c == "Fusion") fusion = true;
    else throw Error(who + ": unknown cell type \"" + c + "\" (expected Chain2 or Fusion)");
  }
  if (chain) validate_ops(normal, who + " \"normal\"");
  if (fusion) validate_ops(chain_fusion, who + " \"chain_fusion\"");
  if (inputs[0] == inputs[1]) throw Error(who + ": \"inputs\" must name ir and vis once each");
  if (downscale != 1 && downscale != 2 && downscale != 4) throw Error(who + ": downscale must be 1, 2 or 4");
  if (downscale != 1 && two_stage()) throw Error(who + ": downscale applies to single-stage networks only");
  if (head != Head::Image && two_stage())
    throw Error(who + ": head \"" + head_name(head) + "\" applies to single-stage networks only");
  check_bound(detail_coring, "detail_coring", who);
  if (detail_coring != 0 && head != Head::Detail) throw Error(who + ": detail_coring applies to the detail head only");
  if (!(noise_coring >= 0 && noise_coring <= kMaxNoiseCoring))
  {
    char text[96];
    std::snprintf(text, sizeof text, ": noise_coring %g is outside 0..%g", noise_coring, kMaxNoiseCoring);
    throw Error(who + text);
  }
  if (noise_coring != 0 && head != Head::Detail) throw Error(who + ": noise_coring applies to the detail head only");
  if (image_means && two_stage()) throw Error(who + ": image_means applies to single-stage networks only");
  if (detail_select && head != Head::Detail) throw Error(who + ": detail_select applies to the detail head only");
  if (!residual && head != Head::Detail) throw Error(who + ": residual applies to the detail head only");
  check_bound(salient_prior, "salient_prior", who);
  if (salient_prior != 0 && head != Head::Detail) throw Error(who + ": salient_prior applies to the detail head only");
  if (salient_prior != 0 && !image_means)
    throw Error(who + ": salient_prior needs image_means (the prior is measured against the whole image's means)");
  if (two_stage()) {
    check_bound(stage2_cells, "stage2.cells", who);
    validate_ops(stage2_g1, who + " stage2 \"g1\"");
    validate_ops(stage2_g2, who + " stage2 \"g2\"");
  }
  // Last: the fields above bound each factor, this bounds their product.
  const int64_t weights = min_weight_count(*this);
  if (weights > kMaxNetworkWeights)
    throw Error(who + " describes a network of at least " + std::to_string(weights) + " weights, more than the limit of " +
                std::to_string(kMaxNetworkWeights));
}

std::string ArchSpec::to_json() const {
  json j;
  j["name"] = name;
  j["kind"] = kind_name(kind);
  j["channels"] = channels;
  j["inputs"] = {inputs[0] == Input::Ir ? "ir" : "vis", inputs[1] == Input::Ir ? "ir" : "vis"};
  j["cells"] = cells;
  if (!normal.empty()) j["normal"] = normal;
  if (!chain_fusion.empty()) j["chain_fusion"] = chain_fusion;
  if (downscale != 1) j["downscale"] = downscale;
  if (head != Head::Image) j["head"] = head_name(head);
  if (detail_coring != 0) j["detail_coring"] = detail_coring;
  if (noise_coring != 0) j["noise_coring"] = noise_coring;
  if (image_means) j["image_means"] = true;
  if (detail_select) j["detail_select"] = true;
  if (!residual) j["residual"] = false;
  if (salient_prior != 0) j["salient_prior"] = salient_prior;
  if (two_stage())
    j["stage2"] = {{"cells", stage2_cells}, {"g1", stage2_g1}, {"g2", stage2_g2}, {"batch_stats", stage2_batch_stats}};
  return j.dump();
}

ArchSpec ArchSpec::from_json(const std::string& text) {
  json j;
  try {
    JsonLimits limits;
    limits.max_depth = 3;  // {"stage2": {"g1": [...]}}
    limits.max_items = 4096;
    j = parse_strict_json(text, limits);
  } catch (const Error& e) {
    throw Error(std::string("architecture description: ") + e.what());
  }
  if (!j.is_object()) throw Error("architecture description must be a JSON object");
  ArchSpec a;
  try {
    a.name = j.value("name", std::string("custom"));
    a.kind = parse_kind(j.value("kind", std::string("single")));
    a.channels = int_field(j, "channels", 48, "channels");
    if (j.contains("inputs")) {
      auto in = string_list(j, "inputs");
      if (in.size() != 2) throw Error("\"inputs\" must list two names");
      a.inputs = {parse_input(in[0]), parse_input(in[1])};
    }
    a.cells = string_list(j, "cells");
    a.normal = string_list(j, "normal");
    a.chain_fusion = string_list(j, "chain_fusion");
    a.downscale = int_field(j, "downscale", 1, "downscale");
    a.head = parse_head(j.value("head", std::string("image")));
    a.detail_coring = int_field(j, "detail_coring", 0, "detail_coring");
    if (j.contains("noise_coring")) {
      if (!j["noise_coring"].is_number()) throw Error("\"noise_coring\" must be a number");
      a.noise_coring = j["noise_coring"].get<double>();  // range checked by validate()
    }
    if (j.contains("image_means")) {
      if (!j["image_means"].is_boolean()) throw Error("\"image_means\" must be true or false");
      a.image_means = j["image_means"].get<bool>();
    }
    for (auto [key, field] : {std::pair<const char*, bool*>{"detail_select", &a.detail_select}, {"residual", &a.residual}}) {
      if (!j.contains(key)) continue;
      if (!j[key].is_boolean()) throw Error(std::string("\"") + key + "\" must be true or false");
      *field = j[key].get<bool>();
    }
    a.salient_prior = int_field(j, "salient_prior", 0, "salient_prior");
    if (j.contains("stage2")) {
      const json& s = j["stage2"];
      if (!s.is_object()) throw Error("\"stage2\" must be an object");
      a.stage2_cells = int_field(s, "cells", 2, "stage2.cells");
      a.stage2_g1 = string_list(s, "g1");
      a.stage2_g2 = string_list(s, "g2");
      a.stage2_batch_stats = s.value("batch_stats", false);
    }
  } catch (const json::exception& e) {
    throw Error(std::string("architecture description: wrong value type: ") + e.what());
  }
  a.validate();
  return a;
}

ArchSpec ArchSpec::named(const std::string& name) {
  auto all = builtins();
  auto it = all.find(name);
  if (it == all.end()) {
    std::string known;
    for (auto& kv : all) known += (known.empty() ? "" : ", ") + kv.first;
    throw Error("unknown architecture \"" + name + "\" (built-in: " + known + "; or a JSON genotype file)");
  }
  return it->second;
}

ArchSpec ArchSpec::resolve(const std::string& name_or_path) {
  auto all = builtins();
  if (all.count(name_or_path)) return all[name_or_path];
  std::error_code ec;
  if (!std::filesystem::exists(name_or_path, ec)) return named(name_or_path);  // reports the known names
  const std::string text = read_small_file(name_or_path, 1 << 20, "genotype file");
  try {
    return from_json(text);
  } catch (const Error& e) {
    throw Error(name_or_path + ": " + e.what());
  }
}

std::vector<std::string> ArchSpec::names() {
  std::vector<std::string> v;
  for (auto& kv : builtins()) v.push_back(kv.first);
  return v;
}

}  // namespace timfusion
