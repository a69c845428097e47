//===- CudaRuntimeTest.cpp - JSON parser, plan validation, launch sizes ---===//

#include "nora/Runtime/CudaArtifact.h"
#include "nora/Runtime/CudaExecutable.h"
#include "nora/Runtime/Json.h"

#include <gtest/gtest.h>

#include <random>

using namespace mlir::nora;
using namespace mlir::nora::runtime;
using json::Value;

extern "C" int noraCudaAbiChecked();

namespace {

std::string parseError(std::string_view text) {
  Value value;
  return json::parse(text, value);
}

TEST(JsonTest, ParsesValues) {
  Value v;
  ASSERT_EQ(json::parse(R"( {"a": [1, -2.5e1, true, false, null],
                             "b": {"c": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"},
                             "big": 123456789012345678901234, "i": -0} )",
                        v),
            "");
  ASSERT_EQ(v.kind, Value::Kind::Object);
  const Value *a = v.find("a");
  ASSERT_TRUE(a && a->kind == Value::Kind::Array && a->elements.size() == 5);
  EXPECT_TRUE(a->elements[0].isInteger);
  EXPECT_EQ(a->elements[0].integer, 1);
  EXPECT_FALSE(a->elements[1].isInteger);
  EXPECT_EQ(a->elements[1].number, -25.0);
  EXPECT_TRUE(a->elements[2].boolean);
  EXPECT_EQ(a->elements[4].kind, Value::Kind::Null);
  EXPECT_EQ(v.find("b")->find("c")->string,
            "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  // Too large for int64: a number, but not an integer.
  EXPECT_FALSE(v.find("big")->isInteger);
  EXPECT_TRUE(v.find("i")->isInteger);
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_EQ(a->find("a"), nullptr);
  // Raw UTF-8 is kept.
  ASSERT_EQ(json::parse("\"\xe2\x82\xac\"", v), "");
  EXPECT_EQ(v.string, "\xe2\x82\xac");
}

TEST(JsonTest, RejectsWhatIsNotStrictJson) {
  const char *bad[] = {"",
                       "   ",
                       "{",
                       "[1,]",
                       "{\"a\":1,}",
                       "[01]",
                       "[1.]",
                       "[.5]",
                       "[1e]",
                       "[-]",
                       "[+1]",
                       "// c\n1",
                       "{'a': 1}",
                       "{a: 1}",
                       "[1 2]",
                       "tru",
                       "nul",
                       "\"abc",
                       "\"\\x\"",
                       "\"\\u12\"",
                       "\"\\ud800\"",
                       "\"\\udc00\"",
                       "\"\x01\"",
                       "\"\xc0\xaf\"",
                       "\"\xed\xa0\x80\"",
                       "\"\xff\"",
                       "1 2",
                       "{\"a\":1,\"a\":2}",
                       "[1e999]",
                       "NaN",
                       "\"\xe2\x82\"",
                       "[\"a\":1]",
                       "{\"a\" 1}",
                       "{1:2}"};
  for (const char *text : bad)
    EXPECT_NE(parseError(text), "") << "accepted: " << text;
}

TEST(JsonTest, ErrorsHaveLineAndColumn) {
  EXPECT_EQ(parseError("{\n  \"a\": [1,\n  ]\n}"),
            "line 3, column 3: unexpected character (expected a value)");
  EXPECT_EQ(parseError("[1] x"),
            "line 1, column 5: unexpected data after the JSON value");
}

TEST(JsonTest, DepthIsLimited) {
  std::string ok(64, '['), deep(65, '[');
  ok += std::string(64, ']');
  deep += std::string(65, ']');
  EXPECT_EQ(parseError(ok), "");
  EXPECT_NE(parseError(deep).find("nesting deeper than 64"), std::string::npos);
  // Far deeper than any stack would take, without crashing.
  EXPECT_NE(parseError(std::string(1 << 20, '[')), "");
  EXPECT_NE(parseError(std::string(1 << 20, '{')), "");
}

TEST(JsonTest, ManyKeysAreFast) {
  std::string text = "{";
  for (int i = 0; i < 200000; ++i)
    text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  Value value;
  ASSERT_EQ(json::parse(text + "}", value), "");
  EXPECT_EQ(value.members.size(), 200000u);
  EXPECT_NE(json::parse(text + ",\"k7\":1}", value).find("duplicate key"),
            std::string::npos);
}

TEST(JsonTest, GarbageNeverCrashes) {
  // JSON's own characters, bytes that are not UTF-8, and NUL.
  static const std::string_view kAlphabet(
      "{}[]\",:0123456789-+.eEtrufalsn\\u \x80\xc3\xff\x00", 38);
  std::mt19937 rng(1234);
  for (int round = 0; round < 20000; ++round) {
    std::string bytes(rng() % 64, '\0');
    for (char &c : bytes)
      c = kAlphabet[rng() % kAlphabet.size()];
    Value value;
    std::string error = json::parse(bytes, value);
    if (!error.empty())
      EXPECT_EQ(value.kind, Value::Kind::Null);
  }
}

const char *const kPlan = R"({
  "format": "nora-artifact", "version": 1, "entry": "step", "chip": "sm_90a",
  "arguments": [
    {"name": "dy", "kind": "tensor", "dtype": "bf16", "shape": [64, 128]},
    {"name": "x", "kind": "tensor", "dtype": "f16", "shape": [128, 256]},
    {"name": "lr", "kind": "scalar", "dtype": "f32"}],
  "results": [
    {"name": "w_new", "kind": "tensor", "dtype": "f32", "shape": [64, 256]}],
  "workspace_bytes": 4096,
  "future_key": {"ignored": true},
  "kernels": [
    {"name": "nora_fused_step_0", "cubin": "kernel0.cubin",
     "block": [256, 1, 1], "grid": {"persistent": 96},
     "dynamic_shared_bytes": 65536, "cooperative": true, "cluster": [2, 1, 1],
     "params": [{"argument": 0}, {"result": 0}, {"workspace": 16},
                {"argument": 2}, {"i32": -7}, {"i64": 9000000000}]},
    {"name": "k1", "cubin": "sub/kernel1.cubin", "block": [32, 4, 1],
     "grid": [4, 2, 1], "params": []}]
})";

TEST(PlanTest, ParsesTheExample) {
  Plan plan;
  ASSERT_EQ(parsePlan(kPlan, "p.json", plan), "");
  EXPECT_EQ(plan.entry, "step");
  EXPECT_EQ(plan.chipMajor, 9u);
  EXPECT_EQ(plan.chipMinor, 0u);
  EXPECT_TRUE(plan.chipArchSpecific);
  ASSERT_EQ(plan.arguments.size(), 3u);
  EXPECT_EQ(plan.arguments[0].dtype, ElementType::BF16);
  EXPECT_EQ(plan.arguments[0].byteSize, 64 * 128 * 2);
  EXPECT_EQ(plan.arguments[1].typeString(), "f16[128x256]");
  EXPECT_FALSE(plan.arguments[2].isTensor);
  EXPECT_EQ(plan.results[0].byteSize, 64 * 256 * 4);
  EXPECT_EQ(plan.workspaceBytes, 4096);
  ASSERT_EQ(plan.kernels.size(), 2u);
  const KernelSpec &k0 = plan.kernels[0];
  EXPECT_TRUE(k0.persistent);
  EXPECT_EQ(k0.persistentTiles, 96);
  EXPECT_EQ(k0.dynamicSharedBytes, 65536u);
  EXPECT_TRUE(k0.cooperative);
  EXPECT_EQ(k0.cluster[0], 2u);
  ASSERT_EQ(k0.params.size(), 6u);
  EXPECT_EQ(k0.params[2].kind, KernelParam::Kind::Workspace);
  EXPECT_EQ(k0.params[2].value, 16);
  EXPECT_EQ(k0.params[4].value, -7);
  EXPECT_EQ(k0.params[5].value, 9000000000);
  const KernelSpec &k1 = plan.kernels[1];
  EXPECT_FALSE(k1.persistent);
  EXPECT_EQ(k1.grid[1], 2u);
  EXPECT_FALSE(k1.cooperative);
  EXPECT_EQ(k1.cluster[0], 1u);
  EXPECT_EQ(k1.cubinFile, "sub/kernel1.cubin");
}

/// The error for kPlan with `from` replaced by `to` (once).
std::string errorWith(const std::string &from, const std::string &to) {
  std::string text = kPlan;
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at == std::string::npos)
    return "";
  text.replace(at, from.size(), to);
  Plan plan;
  return parsePlan(text, "p.json", plan);
}

TEST(PlanTest, EveryFieldIsChecked) {
  struct Case {
    const char *from, *to, *message;
  } cases[] = {
      {"\"version\": 1", "\"version\": 1.0", "field 'version': unsupported"},
      {"\"version\": 1", "\"version\": \"1\"",
       "field 'version': expected a number"},
      {"\"chip\": \"sm_90a\"", "\"chip\": \"sm_9\"", "field 'chip'"},
      {"\"chip\": \"sm_90a\"", "\"chip\": \"sm_90ab\"", "field 'chip'"},
      {"\"entry\": \"step\"", "\"entry\": \"\"",
       "field 'entry': must not be empty"},
      {"\"kind\": \"scalar\"", "\"kind\": \"vector\"",
       "field 'arguments[2].kind'"},
      {"\"dtype\": \"f16\"", "\"dtype\": \"F16\"",
       "field 'arguments[1].dtype'"},
      {"[64, 128]", "[64, 128.5]",
       "field 'arguments[0].shape[1]': expected an integer"},
      {"[64, 128]", "[1,1,1,1,1,1,1,1,1]",
       "field 'arguments[0].shape': rank 9"},
      {"[64, 128]", "[2147483648, 2147483648]",
       "field 'arguments[0].shape': the size in bytes overflows int64"},
      {"\"kind\": \"scalar\", \"dtype\": \"f32\"",
       "\"kind\": \"scalar\", \"dtype\": \"f32\", \"shape\": [2]",
       "field 'arguments[2].shape': a scalar has no shape"},
      {"\"kind\": \"tensor\", \"dtype\": \"f32\", \"shape\": [64, 256]",
       "\"kind\": \"scalar\", \"dtype\": \"f32\"",
       "field 'results[0].dtype': a scalar result must be i64"},
      {"\"workspace_bytes\": 4096", "\"workspace_bytes\": 16",
       "field 'kernels[0].params[2].workspace': 16 is out of range [0, 15]"},
      {"{\"workspace\": 16}", "{\"workspace\": 8}",
       "field 'kernels[0].params[2].workspace': byte offset 8 is not a "
       "multiple of 16"},
      {"{\"argument\": 2}", "{\"argument\": -1}",
       "field 'kernels[0].params[3].argument': index -1 out of range"},
      {"{\"argument\": 2}", "{\"argument\": 2, \"i32\": 1}",
       "field 'kernels[0].params[3]': expected an object with one member"},
      {"{\"i64\": 9000000000}", "{\"i64\": 1e3}",
       "field 'kernels[0].params[5].i64': expected an integer"},
      {"\"block\": [256, 1, 1]", "\"block\": [256, 1]",
       "field 'kernels[0].block': expected 3 integers, got 2"},
      {"\"block\": [256, 1, 1]", "\"block\": [64, 32, 1]",
       "field 'kernels[0].block': the product 2048 exceeds 1024"},
      {"\"block\": [256, 1, 1]", "\"block\": [0, 1, 1]",
       "field 'kernels[0].block[0]': 0 is out of range"},
      {"{\"persistent\": 96}", "{\"persistent\": 0}",
       "field 'kernels[0].grid.persistent': 0 is out of range"},
      {"{\"persistent\": 96}", "96", "field 'kernels[0].grid': expected"},
      {"\"cluster\": [2, 1, 1]", "\"cluster\": [2, 2, 1]",
       "field 'kernels[0].cluster': a persistent grid is one-dimensional"},
      {"\"cluster\": [2, 1, 1]", "\"cluster\": [17, 1, 1]",
       "field 'kernels[0].cluster[0]': 17 is out of range"},
      {"\"grid\": [4, 2, 1], ", "\"grid\": [3, 2, 1], \"cluster\": [2,1,1], ",
       "field 'kernels[1].cluster': the grid [3, 2, 1] is not a multiple"},
      {"\"dynamic_shared_bytes\": 65536", "\"dynamic_shared_bytes\": 1e9",
       "field 'kernels[0].dynamic_shared_bytes': expected an integer"},
      {"\"cooperative\": true", "\"cooperative\": 1",
       "field 'kernels[0].cooperative': expected a boolean"},
      {"\"cubin\": \"kernel0.cubin\"", "\"cubin\": \"/etc/passwd\"",
       "field 'kernels[0].cubin'"},
      {"\"cubin\": \"kernel0.cubin\"", "\"cubin\": \"a/../../b\"",
       "field 'kernels[0].cubin'"},
      {"\"params\": []", "\"params\": {}",
       "field 'kernels[1].params': expected an array, got an object"},
      {"\"name\": \"k1\", ", "", "field 'kernels[1].name': missing"},
  };
  for (const Case &c : cases) {
    std::string error = errorWith(c.from, c.to);
    EXPECT_NE(error.find(c.message), std::string::npos)
        << c.from << " -> " << c.to << "\n  gave: " << error;
    EXPECT_EQ(error.rfind("'p.json': ", 0), 0u) << error;
  }
  Plan plan;
  EXPECT_NE(parsePlan("[]", "p.json", plan).find("field '<root>'"),
            std::string::npos);
  EXPECT_NE(parsePlan(R"({"format": "nora-artifact", "version": 1, "entry":
      "s", "chip": "sm_80", "arguments": [], "results": [], "kernels": []})",
                      "p.json", plan)
                .find("field 'results'"),
            std::string::npos);
}

TEST(PlanTest, MutatedPlansNeverCrash) {
  std::mt19937 rng(99);
  std::string base = kPlan;
  for (size_t cut = 0; cut < base.size(); ++cut) {
    Plan plan;
    EXPECT_NE(parsePlan(base.substr(0, cut), "p.json", plan), "");
  }
  for (int round = 0; round < 5000; ++round) {
    std::string text = base;
    for (int edits = 1 + rng() % 4; edits > 0; --edits)
      text[rng() % text.size()] = char(rng() % 256);
    Plan plan;
    std::string error = parsePlan(text, "p.json", plan);
    if (!error.empty())
      EXPECT_TRUE(plan.kernels.empty());
  }
}

TEST(LaunchTest, PersistentGridSize) {
  unsigned ctas = 0;
  EXPECT_EQ(persistentGridSize(96, 132 * 2, 1, ctas), "");
  EXPECT_EQ(ctas, 96u);
  EXPECT_EQ(persistentGridSize(1000, 132, 1, ctas), "");
  EXPECT_EQ(ctas, 132u);
  EXPECT_EQ(persistentGridSize(1000, 132, 8, ctas), "");
  EXPECT_EQ(ctas, 128u);
  EXPECT_EQ(persistentGridSize(3, 132, 4, ctas), "");
  EXPECT_EQ(ctas, 4u);
  EXPECT_NE(persistentGridSize(10, 0, 1, ctas), "");
  EXPECT_NE(persistentGridSize(10, 3, 4, ctas), "");
}

TEST(LaunchTest, ChipCompatibility) {
  Plan sm90a, sm80;
  sm90a.chip = "sm_90a";
  sm90a.chipMajor = 9;
  sm90a.chipArchSpecific = true;
  sm80.chip = "sm_80";
  sm80.chipMajor = 8;
  EXPECT_EQ(checkChip(sm90a, 9, 0, "H100"), "");
  EXPECT_NE(checkChip(sm90a, 10, 0, "B200"), "");
  EXPECT_EQ(checkChip(sm80, 8, 0, "A100"), "");
  EXPECT_EQ(checkChip(sm80, 8, 6, "A40"), "");
  EXPECT_EQ(checkChip(sm80, 9, 0, "H100"),
            "the artifact is compiled for sm_80 but the device (H100) is "
            "sm_90");
}

TEST(DriverTest, DeclaredAbiMatchesCudaH) {
#ifdef NORA_EXPECT_CUDA_ABI_CHECK
  EXPECT_EQ(noraCudaAbiChecked(), 1);
#else
  GTEST_SKIP() << "built without cuda.h";
#endif
}

} // namespace
