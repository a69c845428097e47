//===- NonfiniteGuard.cpp - nora.skip_nonfinite -> linalg --------*- C++
//-*-===//
//
// The CPU lowering of the non-finite guard, shared by the op-by-op path
// (nora.skip_nonfinite) and the row panels of a fused step (the `nonfinite`
// attribute of nora.fused_wgrad_step):
//
//   %bad  = per row: (sum_j g_ij * 0) is NaN      (Inf * 0 = NaN, NaN * 0 =
//   NaN) skip_row:  %w_out = select(%bad_i, %w, %w_new)  (same for m), skipped
//   = #bad skip_step: %any = #bad > 0
//              %w_out = scf.if %any { linalg.copy %w into %w_new } else %w_new
//
// The probe is one f32 pass over g (vectorizable, exact: the sum of finite
// products with zero is 0). skip_step writes into the updated buffers only
// when the step is skipped, so the common path pays no copy.
//
//===----------------------------------------------------------------------===//

#include "nora/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "nora/Dialect/Nora/IR/NoraOps.h"

using namespace mlir;
using namespace mlir::nora;
using utils::IteratorType;

namespace {

AffineMap matrixMap(MLIRContext *ctx) {
  return AffineMap::getMultiDimIdentityMap(2, ctx);
}
AffineMap rowOfMatrixMap(MLIRContext *ctx) {
  return AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx);
}

Value filled(OpBuilder &b, Location loc, ArrayRef<OpFoldResult> sizes,
             TypedAttr zero) {
  Value empty = tensor::EmptyOp::create(b, loc, sizes, zero.getType());
  Value value = arith::ConstantOp::create(b, loc, zero);
  return linalg::FillOp::create(b, loc, value, empty).getResult(0);
}

} // namespace

Value mlir::nora::createNonfiniteRowFlags(OpBuilder &b, Location loc, Value g) {
  MLIRContext *ctx = b.getContext();
  OpFoldResult rows = tensor::getMixedSize(b, loc, g, 0);
  Value probe = filled(b, loc, {rows}, b.getF32FloatAttr(0.0f));
  probe = linalg::GenericOp::create(
              b, loc, probe.getType(), g, probe,
              ArrayRef<AffineMap>{matrixMap(ctx), rowOfMatrixMap(ctx)},
              ArrayRef<IteratorType>{IteratorType::parallel,
                                     IteratorType::reduction},
              [](OpBuilder &nb, Location l, ValueRange args) {
                Value zero =
                    arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(0.0f));
                Value product = arith::MulFOp::create(nb, l, args[0], zero);
                linalg::YieldOp::create(
                    nb, l,
                    ValueRange{arith::AddFOp::create(nb, l, args[1], product)});
              })
              .getResult(0);
  Value flags = tensor::EmptyOp::create(b, loc, {rows}, b.getI1Type());
  AffineMap id = AffineMap::getMultiDimIdentityMap(1, ctx);
  return linalg::GenericOp::create(
             b, loc, flags.getType(), probe, flags, ArrayRef<AffineMap>{id, id},
             ArrayRef<IteratorType>{IteratorType::parallel},
             [](OpBuilder &nb, Location l, ValueRange args) {
               Value isNaN = arith::CmpFOp::create(
                   nb, l, arith::CmpFPredicate::UNO, args[0], args[0]);
               linalg::YieldOp::create(nb, l, ValueRange{isNaN});
             })
      .getResult(0);
}

Value mlir::nora::createCountRows(OpBuilder &b, Location loc, Value flags) {
  MLIRContext *ctx = b.getContext();
  Value count = filled(b, loc, {}, b.getI64IntegerAttr(0));
  AffineMap id = AffineMap::getMultiDimIdentityMap(1, ctx);
  AffineMap toScalar = AffineMap::get(1, 0, {}, ctx);
  count =
      linalg::GenericOp::create(
          b, loc, count.getType(), flags, count,
          ArrayRef<AffineMap>{id, toScalar},
          ArrayRef<IteratorType>{IteratorType::reduction},
          [](OpBuilder &nb, Location l, ValueRange args) {
            Value one = args[0];
            if (!one.getType().isInteger(64))
              one = arith::ExtUIOp::create(nb, l, nb.getI64Type(), one);
            linalg::YieldOp::create(
                nb, l, ValueRange{arith::AddIOp::create(nb, l, args[1], one)});
          })
          .getResult(0);
  return tensor::ExtractOp::create(b, loc, count, ValueRange{});
}

Value mlir::nora::createKeepFlaggedRows(OpBuilder &b, Location loc, Value flags,
                                        Value kept, Value updated) {
  MLIRContext *ctx = b.getContext();
  Value init = tensor::EmptyOp::create(
      b, loc, tensor::getMixedSizes(b, loc, updated),
      cast<ShapedType>(updated.getType()).getElementType());
  return linalg::GenericOp::create(
             b, loc, init.getType(), ValueRange{flags, kept, updated}, init,
             ArrayRef<AffineMap>{rowOfMatrixMap(ctx), matrixMap(ctx),
                                 matrixMap(ctx), matrixMap(ctx)},
             ArrayRef<IteratorType>{IteratorType::parallel,
                                    IteratorType::parallel},
             [](OpBuilder &nb, Location l, ValueRange args) {
               linalg::YieldOp::create(nb, l,
                                       ValueRange{arith::SelectOp::create(
                                           nb, l, args[0], args[1], args[2])});
             })
      .getResult(0);
}

SmallVector<Value> mlir::nora::createSkipStepGuard(OpBuilder &b, Location loc,
                                                   Value flaggedRows,
                                                   ValueRange kept,
                                                   ValueRange updated) {
  Value none = arith::ConstantIntOp::create(b, loc, 0, 64);
  Value skip = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt,
                                     flaggedRows, none);
  auto ifOp = scf::IfOp::create(
      b, loc, skip,
      [&](OpBuilder &nb, Location l) {
        SmallVector<Value> restored;
        for (auto [old, dest] : llvm::zip(kept, updated))
          restored.push_back(
              linalg::CopyOp::create(nb, l, old, dest).getResult(0));
        scf::YieldOp::create(nb, l, restored);
      },
      [&](OpBuilder &nb, Location l) { scf::YieldOp::create(nb, l, updated); });
  SmallVector<Value> results(ifOp.getResults());
  results.push_back(arith::ExtUIOp::create(b, loc, b.getI64Type(), skip));
  return results;
}

namespace {

struct LowerSkipNonfinite : OpRewritePattern<SkipNonfiniteOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SkipNonfiniteOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value flags = createNonfiniteRowFlags(rewriter, loc, op.getG());
    Value count = createCountRows(rewriter, loc, flags);
    if (op.getMode() == kSkipRow) {
      Value w =
          createKeepFlaggedRows(rewriter, loc, flags, op.getW(), op.getWNew());
      Value m =
          createKeepFlaggedRows(rewriter, loc, flags, op.getM(), op.getMNew());
      rewriter.replaceOp(op, {w, m, count});
      return success();
    }
    rewriter.replaceOp(op, createSkipStepGuard(rewriter, loc, count,
                                               {op.getW(), op.getM()},
                                               {op.getWNew(), op.getMNew()}));
    return success();
  }
};

} // namespace

void mlir::nora::populateNonfiniteGuardPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerSkipNonfinite>(patterns.getContext());
}
