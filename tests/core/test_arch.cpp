#include <gtest/gtest.h>

#include "timfusion/arch.h"
#include "timfusion/error.h"

using namespace timfusion;

TEST(Arch, ParsesOpNames) {
  auto op = OpName::parse("DilConv_3_2");
  EXPECT_EQ(op.type, "DilConv");
  EXPECT_EQ(op.kernel, 3);
  EXPECT_EQ(op.dilation, 2);
  EXPECT_EQ(OpName::parse("ECAattention_5").kernel, 5);
  EXPECT_EQ(OpName::parse("SPAattention_3").str(), "SPAattention_3");
}

TEST(Arch, RejectsBadOpNames) {
  EXPECT_THROW(OpName::parse("Residualblocks_3"), Error);
  EXPECT_THROW(OpName::parse("Convolution_3_1"), Error);
  EXPECT_THROW(OpName::parse("DilConv_4_1"), Error);
  EXPECT_THROW(OpName::parse("ECAattention_3_1"), Error);
  EXPECT_THROW(OpName::parse("SepConv_3_2"), Error);
  EXPECT_THROW(OpName::parse("DilConv_x_1"), Error);
}

TEST(Arch, JsonRoundTripOfEveryBuiltin) {
  for (const auto& name : ArchSpec::names()) {
    ArchSpec a = ArchSpec::named(name);
    ArchSpec b = ArchSpec::from_json(a.to_json());
    EXPECT_EQ(a.to_json(), b.to_json()) << name;
    EXPECT_EQ(b.name, name);
  }
}

TEST(Arch, UnknownNameListsBuiltins) {
  try {
    ArchSpec::named("ivif-huge");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ivif-light"), std::string::npos);
  }
}

TEST(Arch, InvalidJsonIsReported) {
  EXPECT_THROW(ArchSpec::from_json("{not json"), Error);
  EXPECT_THROW(ArchSpec::from_json(R"({"cells": ["Chain3"], "normal": ["Residualblocks_3_1"]})"), Error);
  EXPECT_THROW(ArchSpec::from_json(R"({"cells": ["Chain2"]})"), Error);
  EXPECT_THROW(ArchSpec::from_json(R"({"cells": ["Chain2"], "normal": ["X_1_1"]})"), Error);
  EXPECT_THROW(ArchSpec::from_json(R"({"cells": ["Chain2"], "normal": ["DilConv_3_1"], "inputs": ["ir","ir"]})"), Error);
}

TEST(Arch, PadMultipleFollowsFusionCells) {
  EXPECT_EQ(ArchSpec::named("ivif-light").pad_multiple(), 1);
  EXPECT_EQ(ArchSpec::named("ivif-full").pad_multiple(), 4);
  EXPECT_EQ(ArchSpec::named("mmif-pet").pad_multiple(), 4);
}
