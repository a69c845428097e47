//===- FusedStepToPanels.cpp - fused step -> parallel row panels -*- C++
//-*-===//
//
//   %wn, %mn = nora.fused_wgrad_step dy(%dy) x(%x) w(%w) m(%m) ... { chain }
//
// becomes
//
//   %res:2 = scf.forall (%p) in (ceildiv(M, BM)) shared_outs(%wo, %mo) {
//     %r0 = %p * BM, %rows = min(BM, M - %r0)
//     %g  = dy[:, r0:r0+rows]^T x (x packed once, before the loop)
//     %wp = w[r0:r0+rows, :], %mp = m[r0:r0+rows, :]
//     <chain cloned on (%g, %wp, %mp, %lr, %wd), panel-typed>
//     scf.forall.in_parallel { insert W' and M' panels at row r0 }
//   }
//
// The chain is row-local (RowwiseEpilogueOpInterface), so running it on a
// panel of rows is exact.
//
//===----------------------------------------------------------------------===//

#include "nora/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "nora/Dialect/Nora/IR/NoraOps.h"

namespace mlir::nora {
#define GEN_PASS_DEF_NORAFUSEDSTEPTOPANELS
#include "nora/Conversion/Passes.h.inc"
} // namespace mlir::nora

using namespace mlir;
using namespace mlir::nora;

namespace {

/// Rows [r0, r0 + rows) of a matrix, all columns.
Value rowPanel(OpBuilder &b, Location loc, Value matrix, Value r0, Value rows) {
  OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
  return tensor::ExtractSliceOp::create(
      b, loc, matrix, {r0, zero},
      {rows, tensor::getMixedSize(b, loc, matrix, 1)}, {one, one});
}

/// Rows per panel when none is given. Two pressures: the epilogue makes
/// about six passes over panel-sized arrays (g, u, v, d, W and M panels),
/// which should stay in a core's L2 (kEpilogueBytes per array); and the
/// micro-kernel streams all of the packed x (T x N) once per panel, which
/// dominates when T is large, so large T gets the largest panels
/// (bench/RESULTS.md has the measurements behind these numbers). A multiple
/// of the micro-kernel's 6 rows.
int64_t automaticPanelRows(FusedWgradStepOp op) {
  constexpr int64_t kMicroRows = 6, kMaxRows = 192, kMaxEpilogueRows = 96;
  constexpr int64_t kEpilogueBytes = 96 * 1024, kLargeTokens = 256;
  auto wType = cast<RankedTensorType>(op.getW().getType());
  auto dyType = cast<RankedTensorType>(op.getDy().getType());
  int64_t cols = wType.getDimSize(1), tokens = dyType.getDimSize(0);
  if (ShapedType::isDynamic(cols) || ShapedType::isDynamic(tokens))
    return 48;
  int64_t rows = tokens >= kLargeTokens
                     ? kMaxRows
                     : std::clamp<int64_t>(kEpilogueBytes / (4 * cols), 1,
                                           kMaxEpilogueRows);
  return (rows + kMicroRows - 1) / kMicroRows * kMicroRows;
}

void tileFusedStep(FusedWgradStepOp op, int64_t rowsPerPanel,
                   RewriterBase &rewriter) {
  Location loc = op.getLoc();
  rewriter.setInsertionPoint(op);
  auto wType = cast<RankedTensorType>(op.getW().getType());
  auto panelType = [&](Type elem) {
    return RankedTensorType::get({ShapedType::kDynamic, wType.getDimSize(1)},
                                 elem);
  };

  // The micro-kernel takes f32: extend bf16/f16 inputs once, not per panel.
  Value dy = createExtendToF32(rewriter, loc, op.getDy());
  Value x = createExtendToF32(rewriter, loc, op.getX());
  // Pack x once for all panels in the micro-kernel's tile layout.
  OpFoldResult cols = tensor::getMixedSize(rewriter, loc, op.getW(), 1);
  Value xPacked = createPackedX(rewriter, loc, x);
  Value rowsTotal = tensor::DimOp::create(rewriter, loc, op.getW(), 0);
  Value tokens = tensor::DimOp::create(rewriter, loc, dy, 0);
  Value panelRows = arith::ConstantIndexOp::create(rewriter, loc, rowsPerPanel);
  Value numPanels =
      arith::CeilDivUIOp::create(rewriter, loc, rowsTotal, panelRows);
  Value wOut = tensor::EmptyOp::create(
      rewriter, loc, tensor::getMixedSizes(rewriter, loc, op.getW()),
      wType.getElementType());
  auto mType = cast<RankedTensorType>(op.getM().getType());
  Value mOut = tensor::EmptyOp::create(
      rewriter, loc, tensor::getMixedSizes(rewriter, loc, op.getM()),
      mType.getElementType());

  // A guarded step also gives one count of non-finite gradient rows a panel.
  std::optional<StringRef> nonfinite = op.getNonfinite();
  SmallVector<Value> sharedOuts = {wOut, mOut};
  if (nonfinite)
    sharedOuts.push_back(tensor::EmptyOp::create(
        rewriter, loc, ArrayRef<OpFoldResult>{numPanels},
        rewriter.getI64Type()));
  auto forall =
      scf::ForallOp::create(rewriter, loc, ArrayRef<OpFoldResult>{numPanels},
                            sharedOuts, std::nullopt);
  Block *body = forall.getBody();
  rewriter.setInsertionPointToStart(body);
  Value panel = forall.getInductionVar(0);
  Value r0 = arith::MulIOp::create(rewriter, loc, panel, panelRows);
  Value left = arith::SubIOp::create(rewriter, loc, rowsTotal, r0);
  Value rows = arith::MinSIOp::create(rewriter, loc, panelRows, left);

  OpFoldResult zero = rewriter.getIndexAttr(0), one = rewriter.getIndexAttr(1);
  Value dyPanel = tensor::ExtractSliceOp::create(rewriter, loc, dy, {zero, r0},
                                                 {tokens, rows}, {one, one});
  Value accPanel =
      op.getAcc() ? rowPanel(rewriter, loc, op.getAcc(), r0, rows) : Value();
  Value g = createWgradPackedX(rewriter, loc, dyPanel, xPacked, cols, accPanel,
                               op.getScale().convertToDouble(),
                               panelType(rewriter.getF32Type()));

  IRMapping mapping;
  Block &epilogue = op.getEpilogue().front();
  mapping.map(epilogue.getArgument(0), g);
  mapping.map(epilogue.getArgument(1),
              rowPanel(rewriter, loc, op.getW(), r0, rows));
  mapping.map(epilogue.getArgument(2),
              rowPanel(rewriter, loc, op.getM(), r0, rows));
  mapping.map(epilogue.getArgument(3), op.getLr());
  mapping.map(epilogue.getArgument(4), op.getWd());
  for (Operation &inner : epilogue.without_terminator()) {
    Operation *clone = rewriter.clone(inner, mapping);
    for (OpResult result : clone->getResults()) {
      auto type = dyn_cast<RankedTensorType>(result.getType());
      if (!type || type.getRank() != 2)
        continue;
      if (clone->hasTrait<OpTrait::ConstantLike>()) {
        // A matrix constant: the panel's rows of it.
        rewriter.setInsertionPointAfter(clone);
        Value slice = rowPanel(rewriter, loc, result, r0, rows);
        mapping.map(inner.getResult(result.getResultNumber()), slice);
        continue;
      }
      result.setType(panelType(type.getElementType()));
    }
    rewriter.setInsertionPointToEnd(body);
    rewriter.setInsertionPoint(forall.getTerminator());
  }
  auto yield = cast<YieldOp>(epilogue.getTerminator());
  SmallVector<Value> panelResults = llvm::map_to_vector(
      yield.getValues(), [&](Value v) { return mapping.lookup(v); });
  Value panelCount;
  if (nonfinite) {
    Value wPanel = mapping.lookup(epilogue.getArgument(1));
    Value mPanel = mapping.lookup(epilogue.getArgument(2));
    Value flags = createNonfiniteRowFlags(rewriter, loc, g);
    if (*nonfinite == kSkipRow) {
      panelResults[0] =
          createKeepFlaggedRows(rewriter, loc, flags, wPanel, panelResults[0]);
      panelResults[1] =
          createKeepFlaggedRows(rewriter, loc, flags, mPanel, panelResults[1]);
    }
    panelCount = tensor::FromElementsOp::create(
        rewriter, loc, createCountRows(rewriter, loc, flags));
  }
  rewriter.setInsertionPointToStart(forall.getTerminator().getBody());
  for (auto [value, dest] :
       llvm::zip(panelResults, forall.getRegionIterArgs().take_front(2))) {
    tensor::ParallelInsertSliceOp::create(
        rewriter, loc, value, dest, {r0, zero},
        {rows, tensor::getMixedSize(rewriter, loc, dest, 1)}, {one, one});
  }
  if (!nonfinite) {
    rewriter.replaceOp(op, forall.getResults());
    return;
  }
  tensor::ParallelInsertSliceOp::create(rewriter, loc, panelCount,
                                        forall.getRegionIterArgs()[2], {panel},
                                        {one}, {one});
  // After all panels: the step's count, and for skip_step the whole-step
  // decision (W' and M' panels were written unguarded; a skipped step copies
  // W and M over them).
  rewriter.setInsertionPointAfter(forall);
  Value total = createCountRows(rewriter, loc, forall.getResult(2));
  if (*nonfinite == kSkipRow) {
    rewriter.replaceOp(op, {forall.getResult(0), forall.getResult(1), total});
    return;
  }
  rewriter.replaceOp(
      op, createSkipStepGuard(rewriter, loc, total, {op.getW(), op.getM()},
                              {forall.getResult(0), forall.getResult(1)}));
}

struct NoraFusedStepToPanelsPass
    : nora::impl::NoraFusedStepToPanelsBase<NoraFusedStepToPanelsPass> {
  using Base::Base;
  void runOnOperation() override {
    if (rowsPerPanel < 0) {
      emitError(getOperation()->getLoc())
          << "nora-fused-step-to-panels: rows-per-panel must be positive (or "
             "0 for automatic), got "
          << static_cast<int64_t>(rowsPerPanel);
      return signalPassFailure();
    }
    SmallVector<FusedWgradStepOp> steps;
    getOperation()->walk([&](FusedWgradStepOp op) { steps.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (FusedWgradStepOp op : steps)
      tileFusedStep(op, rowsPerPanel ? rowsPerPanel : automaticPanelRows(op),
                    rewriter);
  }
};

} // namespace
