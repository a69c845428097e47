//===- DialectTest.cpp - the nora C++ API as a front end uses it -*- C++
//-*-===//
//
// An MLIR-based training compiler builds nora IR through the generated C++
// builders rather than by parsing text; these tests cover that path: builders
// with inferred result types, the verifier on built IR, and decomposition of a
// built composite step.
//
//===----------------------------------------------------------------------===//

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "nora/Dialect/Nora/IR/NoraOps.h"
#include "nora/Dialect/Nora/Transforms/Passes.h"

#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::nora;

namespace {

class NoraDialectTest : public ::testing::Test {
protected:
  NoraDialectTest() : builder(&context) {
    context.loadDialect<NoraDialect, func::FuncDialect>();
    module = ModuleOp::create(builder.getUnknownLoc());
    builder.setInsertionPointToEnd(module->getBody());
  }

  /// Creates `func.func @step(g, w, m, lr, wd)` and leaves the builder at
  /// the start of its body.
  func::FuncOp makeStepFunction(RankedTensorType matrix) {
    Type f32 = builder.getF32Type();
    auto type = builder.getFunctionType({matrix, matrix, matrix, f32, f32},
                                        {matrix, matrix});
    auto func =
        func::FuncOp::create(builder, builder.getUnknownLoc(), "step", type);
    builder.setInsertionPointToStart(func.addEntryBlock());
    return func;
  }

  MLIRContext context;
  OpBuilder builder;
  OwningOpRef<ModuleOp> module;
};

TEST(NoraScaleTest, DefaultScalesFollowTheOfficialRules) {
  EXPECT_DOUBLE_EQ(noraDefaultScale(512, 128), 2.0);
  EXPECT_DOUBLE_EQ(noraDefaultScale(128, 512), 1.0);
  EXPECT_DOUBLE_EQ(noraDefaultScale(7, 7), 1.0);
  EXPECT_DOUBLE_EQ(moonlightScale(100, 400), 0.2 * 20.0);
  EXPECT_DOUBLE_EQ(moonlightScale(400, 100), 0.2 * 20.0);
}

TEST_F(NoraDialectTest, BuiltMomentumInfersResultTypesAndVerifies) {
  auto matrix = RankedTensorType::get({4, 8}, builder.getF32Type());
  func::FuncOp func = makeStepFunction(matrix);
  Location loc = builder.getUnknownLoc();
  Value m = func.getArgument(2), g = func.getArgument(0);
  auto momentum =
      MomentumOp::create(builder, loc, m, g, builder.getF32FloatAttr(0.9f),
                         builder.getF32FloatAttr(0.9f));
  EXPECT_EQ(momentum.getMNew().getType(), matrix);
  EXPECT_EQ(momentum.getU().getType(), matrix);
  func::ReturnOp::create(builder, loc,
                         ValueRange{momentum.getU(), momentum.getMNew()});
  EXPECT_TRUE(succeeded(verify(*module)));
}

TEST_F(NoraDialectTest, VerifierRejectsBetaOutsideUnitInterval) {
  auto matrix = RankedTensorType::get({4, 8}, builder.getF32Type());
  func::FuncOp func = makeStepFunction(matrix);
  Location loc = builder.getUnknownLoc();
  auto momentum =
      MomentumOp::create(builder, loc, func.getArgument(2), func.getArgument(0),
                         builder.getF32FloatAttr(1.0f), FloatAttr());
  func::ReturnOp::create(builder, loc,
                         ValueRange{momentum.getU(), momentum.getMNew()});
  std::string message;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    message = diag.str();
    return success();
  });
  EXPECT_TRUE(failed(verify(*module)));
  EXPECT_NE(message.find("'beta' must be in [0, 1)"), std::string::npos)
      << message;
}

TEST_F(NoraDialectTest, DecomposeExpandsBuiltNoraStep) {
  auto matrix = RankedTensorType::get({512, 128}, builder.getF32Type());
  func::FuncOp func = makeStepFunction(matrix);
  Location loc = builder.getUnknownLoc();
  auto step = NoraStepOp::create(builder, loc, func.getArgument(0),
                                 func.getArgument(1), func.getArgument(2),
                                 func.getArgument(3), func.getArgument(4));
  func::ReturnOp::create(builder, loc, step.getResults());
  ASSERT_TRUE(succeeded(verify(*module)));

  PassManager pm(&context);
  pm.addPass(createNoraDecompose());
  ASSERT_TRUE(succeeded(pm.run(*module)));

  SmallVector<StringRef> names;
  for (Operation &op : func.getBody().front())
    names.push_back(op.getName().getStringRef());
  SmallVector<StringRef> expected = {"nora.momentum", "nora.orth_project",
                                     "nora.row_normalize", "nora.apply_update",
                                     "func.return"};
  EXPECT_EQ(names, expected);
  RowNormalizeOp normalize;
  func.walk([&](RowNormalizeOp op) { normalize = op; });
  ASSERT_TRUE(normalize);
  EXPECT_FLOAT_EQ(normalize.getScale().convertToFloat(), 2.0f);
}

} // namespace
