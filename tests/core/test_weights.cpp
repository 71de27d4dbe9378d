// Weight files: safetensors structure, model metadata, and every way a file can be wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "timfusion/torch/networks.h"
#include "timfusion/torch/state_dict.h"
#include "test_support.h"
#include "timfusion/error.h"
#include "timfusion/fuser.h"
#include "timfusion/model_file.h"

using namespace timfusion;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spit(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<long>(b.size()));
}

// A raw safetensors file from a header string and a data section.
std::vector<uint8_t> raw_file(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(n >> (8 * i));
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + data_bytes, 0);
  return b;
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    parse_safetensors(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

ArchSpec tiny_light() {
  ArchSpec s = ArchSpec::named("ivif-light");
  s.channels = 8;
  return s;
}

std::string save_tiny(const std::string& dir, const ArchSpec& spec, bool meta = true) {
  nn::TimNet net(spec);
  auto f = nn::to_safetensors(*net);
  if (meta) f.metadata["timfusion.arch"] = spec.to_json();
  std::string p = dir + "/" + spec.name + (meta ? "" : "-nometa") + ".safetensors";
  write_safetensors(p, f);
  return p;
}

std::string load_error(const std::string& path, const std::string& arch = "") {
  try {
    FuserOptions o;
    o.model = path;
    o.arch = arch;
    o.device = Device::Cpu;
    Fuser f(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Safetensors, RoundTripKeepsTensorsAndMetadata) {
  SafetensorsFile f;
  f.metadata["timfusion.provenance"] = R"({"how":"test"})";
  TensorEntry a{"b.weight", DType::F32, {2, 3}, std::vector<uint8_t>(24, 7)};
  TensorEntry b{"a.counter", DType::I64, {}, std::vector<uint8_t>(8, 1)};
  f.tensors = {a, b};
  std::string p = tftest::temp_dir("st") + "/x.safetensors";
  write_safetensors(p, f);
  auto g = read_safetensors(p);
  EXPECT_EQ(g.metadata.at("timfusion.provenance"), R"({"how":"test"})");
  ASSERT_EQ(g.tensors.size(), 2u);
  EXPECT_EQ(g.tensors[0].name, "a.counter");  // sorted
  EXPECT_EQ(g.find("b.weight")->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(g.find("b.weight")->data, a.data);
  // Header length is a multiple of 8 so tensor data is aligned.
  auto bytes = slurp(p);
  EXPECT_EQ(bytes[0] % 8, 0);
}

TEST(Safetensors, WriteIsAtomicAndLeavesNoTemporaryFiles) {
  std::string dir = tftest::temp_dir("atomic");
  SafetensorsFile f;
  f.tensors = {{"w", DType::F32, {1}, std::vector<uint8_t>(4, 0)}};
  write_safetensors(dir + "/m.safetensors", f);
  write_safetensors(dir + "/m.safetensors", f);  // overwrite in place
  int n = 0;
  for (auto& e : fs::directory_iterator(dir)) n += e.path().filename() == "m.safetensors" ? 0 : 1;
  EXPECT_EQ(n, 0);
  EXPECT_THROW(write_safetensors(dir + "/no/such/dir/m.safetensors", f), Error);
}

TEST(Safetensors, RejectsStructuralDamage) {
  EXPECT_NE(error_of({1, 2, 3}).find("too short"), std::string::npos);
  // Header length larger than the file.
  auto b = raw_file("{}", 0);
  b[0] = 0xff;
  EXPECT_NE(error_of(b).find("does not fit"), std::string::npos);
  EXPECT_NE(error_of(raw_file("{nope", 0)).find("not valid JSON"), std::string::npos);
  // Offsets past the end of the data are refused while the header is read.
  EXPECT_NE(error_of(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)).find("data_offsets"),
            std::string::npos);
  EXPECT_NE(error_of(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)).find("need"),
            std::string::npos);
  EXPECT_NE(error_of(raw_file(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8)).find("dtype"),
            std::string::npos);
  EXPECT_NE(error_of(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                              12))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(error_of(raw_file(R"({"__metadata__":{"k":5}})", 0)).find("not a string"), std::string::npos);
  EXPECT_NE(error_of(raw_file(R"({"w":{"dtype":"F32"}})", 0)).find("needs dtype"), std::string::npos);
}

TEST(ModelFile, MissingAndCorruptFilesNameTheFileAndTheProblem) {
  std::string dir = tftest::temp_dir("bad");
  std::string missing = dir + "/nope.safetensors";
  std::string e = load_error(missing);
  EXPECT_NE(e.find(missing), std::string::npos);
  EXPECT_NE(e.find("not found"), std::string::npos);

  std::string good = save_tiny(dir, tiny_light());
  auto bytes = slurp(good);
  bytes.resize(bytes.size() / 2);  // truncated download
  std::string cut = dir + "/cut.safetensors";
  spit(cut, bytes);
  e = load_error(cut);
  EXPECT_NE(e.find(cut), std::string::npos);
  EXPECT_TRUE(e.find("truncated") != std::string::npos || e.find("data_offsets") != std::string::npos) << e;

  std::string junk = dir + "/junk.safetensors";
  spit(junk, std::vector<uint8_t>(4096, 0x41));
  EXPECT_NE(load_error(junk).find("not a safetensors file"), std::string::npos);
}

TEST(ModelFile, FileWithoutMetadataNeedsTheArchitectureNamed) {
  std::string dir = tftest::temp_dir("nometa");
  auto spec = ArchSpec::named("ivif-light");
  std::string p = save_tiny(dir, spec, false);
  EXPECT_NE(load_error(p).find("name one"), std::string::npos);
  EXPECT_EQ(load_error(p, "ivif-light"), "");
}

TEST(ModelFile, WeightsForAnotherArchitectureAreRefused) {
  std::string dir = tftest::temp_dir("otherarch");
  std::string light = save_tiny(dir, ArchSpec::named("ivif-light"), false);
  std::string e = load_error(light, "ivif-full");
  // The weight count the genotype needs is checked before any network is built.
  EXPECT_NE(e.find("needs at least"), std::string::npos) << e;
  EXPECT_NE(e.find(light), std::string::npos);
  // Same architecture, other width: shapes differ.
  std::string tiny = save_tiny(dir, tiny_light());
  e = load_error(tiny, "ivif-light");
  EXPECT_TRUE(e.find("has shape") != std::string::npos || e.find("needs at least") != std::string::npos) << e;
  // A file with an extra tensor (e.g. a 'module.' prefix) is not silently accepted.
  auto f = read_safetensors(tiny);
  f.tensors.push_back({"module.extra", DType::F32, {1}, std::vector<uint8_t>(4, 0)});
  write_safetensors(tiny, f);
  EXPECT_NE(load_error(tiny).find("unexpected weight \"module.extra\""), std::string::npos);
}

TEST(ModelFile, NonFiniteWeightsAreRefused) {
  std::string dir = tftest::temp_dir("nan");
  std::string p = save_tiny(dir, tiny_light());
  auto f = read_safetensors(p);
  auto& t = f.tensors.front();
  float nan = std::numeric_limits<float>::quiet_NaN();
  for (auto& e : f.tensors)
    if (e.dtype == DType::F32) {
      std::memcpy(e.data.data(), &nan, 4);
      break;
    }
  (void)t;
  write_safetensors(p, f);
  EXPECT_NE(load_error(p).find("NaN"), std::string::npos);
}

TEST(ModelFile, MetadataDescribesTheArchitectureAndProvenance) {
  std::string dir = tftest::temp_dir("meta");
  auto spec = tiny_light();
  spec.normal = {"DilConv_3_2", "SPAattention_3"};  // a custom genotype travels with the file
  nn::TimNet net(spec);
  auto f = nn::to_safetensors(*net);
  f.metadata["timfusion.arch"] = spec.to_json();
  f.metadata["timfusion.provenance"] = R"({"trained_by":"test"})";
  write_safetensors(dir + "/c.safetensors", f);
  ModelFile m = load_model_file(dir + "/c.safetensors");
  EXPECT_EQ(m.arch.normal, spec.normal);
  EXPECT_EQ(m.arch.channels, 8);
  EXPECT_EQ(m.provenance, R"({"trained_by":"test"})");
  // The network it describes loads the weights.
  nn::TimNet again(m.arch);
  EXPECT_NO_THROW(nn::load_state(*again, m.weights, "c"));
}

TEST(ModelFile, ReducedPrecisionWeightsLoadIntoFp32) {
  std::string dir = tftest::temp_dir("bf16");
  auto spec = tiny_light();
  nn::TimNet net(spec);
  SafetensorsFile f;
  for (auto& kv : net->named_parameters()) f.tensors.push_back(nn::to_entry(kv.key(), kv.value().to(torch::kBFloat16)));
  for (auto& kv : net->named_buffers()) f.tensors.push_back(nn::to_entry(kv.key(), kv.value()));
  f.metadata["timfusion.arch"] = spec.to_json();
  write_safetensors(dir + "/h.safetensors", f);
  EXPECT_EQ(load_error(dir + "/h.safetensors"), "");
}

TEST(ModelFile, ShippedModelsAreSelectableByName) {
  std::string p = resolve_model_path("ivif-light");
  EXPECT_NE(p.find("ivif-light.safetensors"), std::string::npos) << p;
  EXPECT_EQ(load_model_file(p).arch.name, "ivif-light");
  EXPECT_EQ(resolve_model_path("/abs/x.safetensors"), "/abs/x.safetensors");
  std::string e = load_error("no-such-model");
  EXPECT_NE(e.find("shipped models: "), std::string::npos) << e;
  EXPECT_NE(e.find("ivif-light"), std::string::npos) << e;
}
