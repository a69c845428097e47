//===- GuardNonfinite.cpp - guard every step against NaN/Inf -----*- C++
//-*-===//
//
// Gives each unguarded optimizer step of a function a non-finite mode:
//
//   composite / fused step:   add {nonfinite = MODE} and the `skipped` result
//   primitive chain:          %w1, %m1, %s = nora.skip_nonfinite %g, %w, %m,
//                                              %w_new, %m_new {mode = MODE}
//                             after the chain; later uses read %w1, %m1
//
// and, with append-count, returns the sum of the new counts as one more
// result (tensor<1xi64>).
//
//===----------------------------------------------------------------------===//

#include "nora/Dialect/Nora/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir::nora {
#define GEN_PASS_DEF_NORAGUARDNONFINITE
#include "nora/Dialect/Nora/Transforms/Passes.h.inc"
} // namespace mlir::nora

using namespace mlir;
using namespace mlir::nora;

namespace {

/// The same op with `nonfinite = mode` and the extra `skipped` result; the
/// op's results are replaced by the first two new ones. Returns `skipped`.
Value addNonfiniteResult(Operation *op, StringAttr mode,
                         RewriterBase &rewriter) {
  rewriter.setInsertionPoint(op);
  OperationState state(op->getLoc(), op->getName());
  state.addOperands(op->getOperands());
  state.addAttributes(op->getAttrs());
  state.addAttribute("nonfinite", mode);
  SmallVector<Type> types(op->getResultTypes());
  types.push_back(rewriter.getI64Type());
  state.addTypes(types);
  for (Region &region : op->getRegions())
    state.addRegion()->takeBody(region);
  Operation *guarded = rewriter.create(state);
  rewriter.replaceOp(op, guarded->getResults().take_front(2));
  return guarded->getResult(2);
}

/// The nora.momentum whose update direction (through row-local ops) feeds
/// `update`, or null.
MomentumOp findMomentum(ApplyUpdateOp update) {
  SmallVector<Value> worklist = {update.getD()};
  llvm::SmallPtrSet<Operation *, 8> seen;
  while (!worklist.empty()) {
    Operation *def = worklist.pop_back_val().getDefiningOp();
    if (!def || !seen.insert(def).second ||
        def->getBlock() != update->getBlock())
      continue;
    if (auto momentum = dyn_cast<MomentumOp>(def))
      return momentum;
    if (isa<RowwiseEpilogueOpInterface>(def) ||
        def->hasTrait<OpTrait::Elementwise>())
      llvm::append_range(worklist, def->getOperands());
  }
  return {};
}

/// Guards the chain ending in `update`; returns `skipped` or null when the
/// chain has no momentum or a guard already.
Value guardChain(ApplyUpdateOp update, StringAttr mode,
                 RewriterBase &rewriter) {
  if (llvm::any_of(update->getUsers(),
                   [](Operation *user) { return isa<SkipNonfiniteOp>(user); }))
    return {};
  MomentumOp momentum = findMomentum(update);
  if (!momentum)
    return {};
  Operation *last =
      update->isBeforeInBlock(momentum) ? momentum.getOperation() : update;
  rewriter.setInsertionPointAfter(last);
  Value wNew = update.getWNew(), mNew = momentum.getMNew();
  auto guard = SkipNonfiniteOp::create(
      rewriter, update.getLoc(), wNew.getType(), mNew.getType(),
      rewriter.getI64Type(), momentum.getG(), update.getW(), momentum.getM(),
      wNew, mNew, mode);
  auto afterGuard = [&](OpOperand &use) {
    Operation *owner =
        guard->getBlock()->findAncestorOpInBlock(*use.getOwner());
    return owner && owner != guard && guard->isBeforeInBlock(owner);
  };
  rewriter.replaceUsesWithIf(wNew, guard.getWOut(), afterGuard);
  rewriter.replaceUsesWithIf(mNew, guard.getMOut(), afterGuard);
  return guard.getSkipped();
}

struct NoraGuardNonfinitePass
    : nora::impl::NoraGuardNonfiniteBase<NoraGuardNonfinitePass> {
  using Base::Base;
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (!isNonfiniteMode(mode)) {
      func.emitError() << "nora-guard-nonfinite: mode must be \"" << kSkipRow
                       << "\" or \"" << kSkipStep << "\", got \"" << mode
                       << "\"";
      return signalPassFailure();
    }
    if (appendCount && appendSingleCount) {
      func.emitError() << "nora-guard-nonfinite: append-count and "
                          "append-single-count exclude each other";
      return signalPassFailure();
    }
    if (func.isExternal())
      return; // a declaration: no step to guard, no return to extend
    IRRewriter rewriter(&getContext());
    StringAttr modeAttr = rewriter.getStringAttr(mode);
    SmallVector<Operation *> steps;
    func.walk([&](Operation *op) {
      if (isa<NoraStepOp, RmnpStepOp, FusedWgradStepOp, ApplyUpdateOp>(op) &&
          !op->hasAttr("nonfinite") && !op->getParentOfType<FusedWgradStepOp>())
        steps.push_back(op);
    });
    SmallVector<Value> counts;
    for (Operation *op : steps) {
      Value skipped =
          isa<ApplyUpdateOp>(op)
              ? guardChain(cast<ApplyUpdateOp>(op), modeAttr, rewriter)
              : addNonfiniteResult(op, modeAttr, rewriter);
      if (skipped)
        counts.push_back(skipped);
    }
    if (appendCount) {
      appendTotal(func, counts, rewriter);
    } else if (appendSingleCount) {
      if (counts.size() != 1) {
        func.emitError() << "nora-guard-nonfinite: append-single-count needs "
                            "one unguarded optimizer step; @"
                         << func.getSymName() << " has " << counts.size();
        return signalPassFailure();
      }
      if (func::ReturnOp ret = singleReturn(func, "append-single-count"))
        appendResult(func, ret, counts.front(), rewriter);
    }
  }

  /// The function's one func.return, or null after an error that names
  /// `option`.
  func::ReturnOp singleReturn(func::FuncOp func, StringRef option) {
    auto ret = dyn_cast<func::ReturnOp>(func.getBody().back().getTerminator());
    if (!ret || !func.getBody().hasOneBlock()) {
      func.emitError() << "nora-guard-nonfinite: " << option
                       << " needs a function with one block that ends in "
                          "func.return";
      signalPassFailure();
      return nullptr;
    }
    return ret;
  }

  /// Returns `value` after the existing results of `ret`'s function.
  void appendResult(func::FuncOp func, func::ReturnOp ret, Value value,
                    RewriterBase &rewriter) {
    SmallVector<Value> operands(ret.getOperands());
    operands.push_back(value);
    rewriter.setInsertionPoint(ret);
    func::ReturnOp::create(rewriter, ret.getLoc(), operands);
    rewriter.eraseOp(ret);
    SmallVector<Type> results(func.getResultTypes());
    results.push_back(value.getType());
    func.setFunctionType(
        rewriter.getFunctionType(func.getArgumentTypes(), results));
  }

  /// Returns sum(counts) as a tensor<1xi64> after the existing results.
  void appendTotal(func::FuncOp func, ArrayRef<Value> counts,
                   RewriterBase &rewriter) {
    func::ReturnOp ret = singleReturn(func, "append-count");
    if (!ret)
      return;
    rewriter.setInsertionPoint(ret);
    Location loc = func.getLoc();
    Value total = arith::ConstantIntOp::create(rewriter, loc, 0, 64);
    for (Value count : counts)
      total = arith::AddIOp::create(rewriter, loc, total, count);
    appendResult(func, ret,
                 tensor::FromElementsOp::create(rewriter, loc, total),
                 rewriter);
  }
};

} // namespace
