// timfusion-train train --world-size 2: data-parallel training with two
// processes on this machine (Gloo over loopback). Their result is one
// process's with the same global batch (float rounding apart), rank 0 alone
// writes, and a stopped two-process run resumes to the uninterrupted result.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "run/config.h"
#include "run/run_dir.h"
#include "timfusion/safetensors.h"
#include "training_test_util.h"

using namespace timfusion;
using namespace timfusion::train;
using namespace trtest;
namespace fs = std::filesystem;

namespace {

// A TCP port free on 127.0.0.1 right now (the kernel's pick).
int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (s >= 0) ::close(s);
    return 0;
  }
  ::close(s);
  return ntohs(a.sin_port);
}

// Runs rank 1 in the background and rank 0 in the foreground; both outputs
// in `out`; the exit status is 0 when both succeeded.
int run_two_ranks(const std::string& rank0, const std::string& rank1, const std::string& log1, std::string* out) {
  const std::string script = rank1 + " >" + log1 + " 2>&1 & p=$!; " + rank0 + "; a=$?; wait $p; b=$?; cat " + log1 +
                             "; [ $a -eq 0 ] && [ $b -eq 0 ]";
  std::string quoted = "'";
  for (char c : script) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return tftest::run("sh -c " + quoted + "'", out);
}

struct Difference {
  double max = 0, mean = 0;
};

// |a - b| over every F32 tensor of two weight files (names must match).
Difference difference(const std::string& a, const std::string& b) {
  SafetensorsFile fa = read_safetensors(a), fb = read_safetensors(b);
  EXPECT_EQ(fa.tensors.size(), fb.tensors.size());
  Difference d;
  size_t count = 0;
  for (const auto& t : fa.tensors) {
    const TensorEntry* u = fb.find(t.name);
    if (!u) {
      ADD_FAILURE() << t.name << " missing in " << b;
      return {INFINITY, INFINITY};
    }
    if (t.dtype != DType::F32) continue;
    const size_t n = t.data.size() / sizeof(float);
    std::vector<float> x(n), y(n);
    std::memcpy(x.data(), t.data.data(), t.data.size());
    std::memcpy(y.data(), u->data.data(), u->data.size());
    for (size_t i = 0; i < n; ++i) {
      const double e = std::fabs(static_cast<double>(x[i]) - y[i]);
      d.max = std::max(d.max, e), d.mean += e;
    }
    count += n;
  }
  d.mean /= static_cast<double>(std::max<size_t>(1, count));
  return d;
}

}  // namespace

TEST(Parallel, TwoProcessesTrainAsOneWithTheWholeBatch) {
  std::string data = make_pairs(tftest::temp_dir("par-data") + "/d", {"a", "b", "c"}, 48, 40, true);
  std::string tmp = tftest::temp_dir("par"), out;
  // batch 4: two ranks of 2 crops each against one process of 4.
  const std::string opts = " train --data " + data + " --arch ivif-light --channels 8 --crop 32 --batch 4 --threads 1"
                           " --quiet --preview-every 0 --set preview_size=32 --set preview_pairs=1 --checkpoint-every 2"
                           " --device cpu --set lr_schedule=constant";
  ASSERT_EQ(tftest::run(train_exe() + opts + " --steps 5 --out " + tmp + "/one", &out), 0) << out;

  int port = free_port();
  ASSERT_GT(port, 0);
  auto rank = [&](int r, const std::string& extra) {
    return train_exe() + opts + " --world-size 2 --rank " + std::to_string(r) + " --master 127.0.0.1:" +
           std::to_string(port) + extra;
  };
  // Rank 1 is given another --out: it must not write anything anywhere.
  ASSERT_EQ(run_two_ranks(rank(0, " --steps 5 --out " + tmp + "/two"), rank(1, " --steps 5 --out " + tmp + "/rank1"),
                          tmp + "/rank1.log", &out),
            0)
      << out;
  EXPECT_FALSE(fs::exists(tmp + "/rank1")) << "rank 1 wrote a run folder";
  // Float rounding (all-reduce order, global BN sums in float64) only: the
  // losses agree to ~1e-7; Adam's normalised step turns rounding in near-zero
  // gradients into up to a fraction of one lr step (1e-3) on single weights.
  const Difference d = difference(tmp + "/one/model.safetensors", tmp + "/two/model.safetensors");
  EXPECT_LT(d.mean, 2e-5) << "two ranks differ from one process by " << d.mean << " on average";
  EXPECT_LT(d.max, 2e-3) << "two ranks differ from one process by up to " << d.max;
  // The log is the global batch's, each step once.
  auto l1 = log_column(tmp + "/one", "loss"), l2 = log_column(tmp + "/two", "loss");
  ASSERT_EQ(l1.size(), 5u);
  ASSERT_EQ(l2.size(), 5u);
  for (size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(l1[i], l2[i], 1e-5 * std::max(1.0, std::fabs(l1[i]))) << "step " << i + 1;
  auto prov = json::parse(read_text(tmp + "/two/config.json"));
  EXPECT_EQ(prov["batch"], 4);

  // Stopped after step 3 (checkpoint at 2) and resumed by two ranks: the
  // uninterrupted two-rank result.
  port = free_port();
  ASSERT_EQ(run_two_ranks(rank(0, " --steps 5 --stop-at 3 --out " + tmp + "/split"),
                          rank(1, " --steps 5 --stop-at 3 --out " + tmp + "/split"), tmp + "/rank1b.log", &out),
            0)
      << out;
  EXPECT_FALSE(fs::exists(tmp + "/split/model.safetensors"));
  port = free_port();
  auto resume = [&](int r) {
    return train_exe() + " train --quiet --resume " + tmp + "/split --world-size 2 --rank " + std::to_string(r) +
           " --master 127.0.0.1:" + std::to_string(port);
  };
  ASSERT_EQ(run_two_ranks(resume(0), resume(1), tmp + "/rank1c.log", &out), 0) << out;
  EXPECT_EQ(difference(tmp + "/two/model.safetensors", tmp + "/split/model.safetensors").max, 0.0);
  EXPECT_EQ(log_column(tmp + "/split", "step").size(), 5u);
}

TEST(Parallel, OptionsAreChecked) {
  std::string data = make_pairs(tftest::temp_dir("paropt-data") + "/d", {"a", "b"}, 40, 40, false);
  std::string tmp = tftest::temp_dir("paropt"), out;
  const std::string base = train_exe() + " train --data " + data + " --quiet --steps 1 --out " + tmp + "/r";
  EXPECT_EQ(tftest::run(base + " --batch 3 --world-size 2 --rank 0 --master 127.0.0.1:1", &out), 1);
  EXPECT_NE(out.find("must be multiples of the world size (2)"), std::string::npos) << out;
  // Launch mistakes are usage errors (exit 2, like every tool's); the batch check above is the configuration's (1).
  EXPECT_EQ(tftest::run(base + " --world-size 2 --rank 2 --master 127.0.0.1:1", &out), 2);
  EXPECT_NE(out.find("rank 2 is not below the world size 2"), std::string::npos) << out;
  EXPECT_EQ(tftest::run(base + " --world-size 2 --rank 1", &out), 2);
  EXPECT_NE(out.find("needs --master ADDR:PORT"), std::string::npos) << out;
  EXPECT_EQ(tftest::run(base + " --world-size 2 --master nowhere", &out), 2);
  EXPECT_NE(out.find("--master expects ADDR:PORT"), std::string::npos) << out;
  EXPECT_EQ(tftest::run(train_exe() + " search --world-size 2 --master 127.0.0.1:1", &out), 2);
  EXPECT_NE(out.find("only `timfusion-train train` trains data-parallel"), std::string::npos) << out;
}
