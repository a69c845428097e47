//===- Decompose.cpp - expand composite optimizer steps --------*- C++ -*-===//
//
// nora.nora_step / nora.rmnp_step -> momentum, [orth_project,] row_normalize,
// apply_update, with the official defaults made explicit.
//
//===----------------------------------------------------------------------===//

#include "nora/Dialect/Nora/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::nora {
#define GEN_PASS_DEF_NORADECOMPOSE
#include "nora/Dialect/Nora/Transforms/Passes.h.inc"
} // namespace mlir::nora

using namespace mlir;
using namespace mlir::nora;

namespace {

/// What differs between the Nora and the RMNP chain.
struct StepFlavor {
  bool project;
  double (*defaultScale)(int64_t rows, int64_t cols);
};

template <typename StepOp>
static std::optional<double> stepScale(StepOp op, const StepFlavor &flavor) {
  if (std::optional<APFloat> scale = op.getScale())
    return scale->convertToDouble();
  auto wType = cast<RankedTensorType>(op.getW().getType());
  if (!wType.hasStaticShape())
    return std::nullopt;
  return flavor.defaultScale(wType.getDimSize(0), wType.getDimSize(1));
}

template <typename StepOp> struct DecomposeStep : OpRewritePattern<StepOp> {
  DecomposeStep(MLIRContext *context, StepFlavor flavor)
      : OpRewritePattern<StepOp>(context), flavor(flavor) {}

  LogicalResult matchAndRewrite(StepOp op,
                                PatternRewriter &rewriter) const override {
    std::optional<double> scale = stepScale(op, flavor);
    if (!scale)
      return rewriter.notifyMatchFailure(op, "dynamic shape and no scale");
    Location loc = op.getLoc();
    FloatAttr beta = rewriter.getF32FloatAttr(op.getBeta().convertToFloat());
    FloatAttr eps = rewriter.getF32FloatAttr(op.getEps().convertToFloat());
    FloatAttr nesterov = op.getNesterov() ? beta : FloatAttr();
    Type mType = op.getM().getType();

    auto momentum = MomentumOp::create(rewriter, loc, mType, mType, op.getM(),
                                       op.getG(), beta, nesterov);
    Value direction = momentum.getU();
    if (flavor.project)
      direction = OrthProjectOp::create(rewriter, loc, mType, direction,
                                        op.getW(), eps);
    Value d = RowNormalizeOp::create(rewriter, loc, mType, direction, eps,
                                     rewriter.getF32FloatAttr(*scale));
    Value wNew = ApplyUpdateOp::create(rewriter, loc, op.getW().getType(),
                                       op.getW(), d, op.getLr(), op.getWd());
    if (std::optional<StringRef> mode = op.getNonfinite()) {
      auto guard = SkipNonfiniteOp::create(
          rewriter, loc, op.getW().getType(), mType, rewriter.getI64Type(),
          op.getG(), op.getW(), op.getM(), wNew, momentum.getMNew(),
          rewriter.getStringAttr(*mode));
      rewriter.replaceOp(op, guard.getResults());
      return success();
    }
    rewriter.replaceOp(op, {wNew, momentum.getMNew()});
    return success();
  }

  StepFlavor flavor;
};

struct NoraDecomposePass : nora::impl::NoraDecomposeBase<NoraDecomposePass> {
  void runOnOperation() override {
    // A dynamic shape without an explicit scale cannot be decomposed: say so
    // rather than leaving the composite op behind silently.
    WalkResult result = getOperation()->walk([](Operation *op) {
      auto check = [&](auto step, StepFlavor flavor) {
        if (stepScale(step, flavor))
          return WalkResult::advance();
        step.emitOpError() << "needs an explicit 'scale' attribute: the "
                              "default scale depends on the static shape of "
                              "'w', which is "
                           << step.getW().getType();
        return WalkResult::interrupt();
      };
      if (auto step = dyn_cast<NoraStepOp>(op))
        return check(step, {true, noraDefaultScale});
      if (auto step = dyn_cast<RmnpStepOp>(op))
        return check(step, {false, moonlightScale});
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return signalPassFailure();

    RewritePatternSet patterns(&getContext());
    populateNoraDecomposePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace

void mlir::nora::populateNoraDecomposePatterns(RewritePatternSet &patterns) {
  MLIRContext *context = patterns.getContext();
  patterns.add<DecomposeStep<NoraStepOp>>(context,
                                          StepFlavor{true, noraDefaultScale});
  patterns.add<DecomposeStep<RmnpStepOp>>(context,
                                          StepFlavor{false, moonlightScale});
}
