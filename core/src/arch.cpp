#include "timfusion/arch.h"

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "timfusion/error.h"

using nlohmann::json;

namespace timfusion {

namespace {

const std::set<std::string> kOpTypes = {"Residualblocks", "Denseblocks", "DilConv", "SepConv",
                                        "ECAattention",   "SPAattention", "Identity"};

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
    throw Error("unknown operation \"" + name +
                "\" (known: Residualblocks_k_d, Denseblocks_k_d, DilConv_k_d, SepConv_k_d, ECAattention_k, "
                "SPAattention_k, Identity)");
  op.type = parts[0];
  auto num = [&](size_t i) {
    try {
      size_t used = 0;
      int v = std::stoi(parts[i], &used);
      if (used != parts[i].size() || v < 1) throw std::invalid_argument("");
      return v;
    } catch (const std::exception&) {
      throw Error("bad number \"" + parts[i] + "\" in operation \"" + name + "\"");
    }
  };
  if (op.type == "Identity") {
    if (parts.size() != 1) throw Error("operation \"" + name + "\" takes no parameters");
    return op;
  }
  if (is_attention(op.type)) {
    // Attention ops take only a kernel size; the reference ignores dilation.
    if (parts.size() != 2) throw Error("operation \"" + name + "\" must be " + op.type + "_k");
    op.kernel = num(1);
  } else {
    if (parts.size() != 3) throw Error("operation \"" + name + "\" must be " + op.type + "_k_d");
    op.kernel = num(1);
    op.dilation = num(2);
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
  const std::string who = "architecture \"" + name + "\"";
  if (channels < 2 || channels > 1024) throw Error(who + ": channels must be in 2..1024");
  if (cells.empty()) throw Error(who + " has no cells");
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
  if (two_stage()) {
    if (stage2_cells < 1) throw Error(who + ": stage2 needs at least one cell");
    validate_ops(stage2_g1, who + " stage2 \"g1\"");
    validate_ops(stage2_g2, who + " stage2 \"g2\"");
  }
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
  if (two_stage())
    j["stage2"] = {{"cells", stage2_cells}, {"g1", stage2_g1}, {"g2", stage2_g2}, {"batch_stats", stage2_batch_stats}};
  return j.dump();
}

ArchSpec ArchSpec::from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(std::string("architecture description is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw Error("architecture description must be a JSON object");
  ArchSpec a;
  try {
    a.name = j.value("name", std::string("custom"));
    a.kind = parse_kind(j.value("kind", std::string("single")));
    a.channels = j.value("channels", 48);
    if (j.contains("inputs")) {
      auto in = string_list(j, "inputs");
      if (in.size() != 2) throw Error("\"inputs\" must list two names");
      a.inputs = {parse_input(in[0]), parse_input(in[1])};
    }
    a.cells = string_list(j, "cells");
    a.normal = string_list(j, "normal");
    a.chain_fusion = string_list(j, "chain_fusion");
    a.downscale = j.value("downscale", 1);
    a.head = parse_head(j.value("head", std::string("image")));
    if (j.contains("stage2")) {
      const json& s = j["stage2"];
      if (!s.is_object()) throw Error("\"stage2\" must be an object");
      a.stage2_cells = s.value("cells", 2);
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
  std::ifstream f(name_or_path);
  if (!f) return named(name_or_path);  // reports the known names
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return from_json(ss.str());
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
