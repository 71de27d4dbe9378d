// min_weight_count (arch_limits.h): how many weights a genotype asks for, without
// building anything. It mirrors the convolutions of nn/ops.cpp, nn/cells.cpp
// and nn/networks.cpp (biases, BN, PReLU and the Fusion cell's scalers are
// left out: it is a lower bound, so that it stays valid when the networks
// gain layers). tests/core/test_hostile_inputs.cpp checks it against the
// built networks.
#include <cstdint>
#include <limits>

#include "timfusion/arch_limits.h"

namespace timfusion {

namespace {

// Saturating arithmetic: a hostile genotype must give a huge count, never a wrapped one.
int64_t add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
}
int64_t mul(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
}
int64_t mul(int64_t a, int64_t b, int64_t c) { return mul(mul(a, b), c); }

// Convolution weights of one searchable op at C channels.
int64_t op_weights(const std::string& name, int64_t C) {
  const OpName op = OpName::parse(name);
  const int64_t kk = mul(op.kernel, op.kernel);
  if (op.type == "Residualblocks") return add(add(mul(C, kk), mul(C, 9)), mul(C, C));  // dw k, dw 3, pw
  if (op.type == "Denseblocks") return mul(6, C, kk);                                  // grouped: C,2C,3C in
  if (op.type == "ECAattention") return add(mul(C, C, 9), op.kernel);                   // conv3x3 + conv1d
  if (op.type == "SPAattention") return mul(2, kk);                                    // 2 -> 1 channel
  if (op.type == "DilConv") return add(mul(C, kk), mul(C, C));                         // dw + pw
  if (op.type == "SepConv") return mul(2, add(mul(C, kk), mul(C, C)));                 // 2 x (dw + pw)
  return 0;                                                                            // Identity
}

int64_t chain_weights(const std::vector<std::string>& ops, int64_t C) {
  int64_t n = 0;
  for (const auto& o : ops) n = add(n, op_weights(o, C));
  return n;
}

int64_t cell_weights(const std::string& type, const ArchSpec& a, int64_t C) {
  const int64_t preprocess = mul(C, C);  // ReLUConvBN 1x1
  if (type == "Fusion")  // the op chain at C, 2C and 4C channels
    return add(preprocess,
               add(chain_weights(a.chain_fusion, C), add(chain_weights(a.chain_fusion, mul(2, C)),
                                                        chain_weights(a.chain_fusion, mul(4, C)))));
  return add(preprocess, chain_weights(a.normal, C));
}

// make_stem: ConvLayer(in, 2C, 3), ConvLayer(2C, C, 3).
int64_t stem_weights(int64_t in, int64_t C) { return add(mul(in, mul(2, C), 9), mul(mul(2, C), C, 9)); }
// make_stem_out: ConvLayer(c_in, C, 3), ConvLayer(C, C/2, 3), ConvLayer(C/2, out >= 1, 1).
int64_t stem_out_weights(int64_t c_in, int64_t C) { return add(add(mul(c_in, C, 9), mul(C, C / 2, 9)), C / 2); }

}  // namespace

int64_t min_weight_count(const ArchSpec& a) {
  const int64_t C = a.channels, s2 = mul(a.downscale, a.downscale);
  int64_t n = add(stem_weights(mul(2, s2), C), stem_out_weights(C, C));
  for (const auto& c : a.cells) n = add(n, cell_weights(c, a, C));
  if (a.two_stage()) {
    n = add(n, mul(2, add(stem_weights(2, C), stem_out_weights(C, C))));  // stem2/3, stem_out2/3
    n = add(n, stem_out_weights(a.kind == NetKind::IvifTwoStage ? C : mul(2, C), C));  // stem_out4
    n = add(n, mul(a.stage2_cells, add(add(mul(C, C), chain_weights(a.stage2_g1, C)),
                                       add(mul(C, C), chain_weights(a.stage2_g2, C)))));
  }
  return n;
}

}  // namespace timfusion
