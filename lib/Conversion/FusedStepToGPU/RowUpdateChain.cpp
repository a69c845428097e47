//===- RowUpdateChain.cpp - the epilogues the GPU kernel computes -*- C++
//-*-===//
//
// The GPU kernel does not interpret an arbitrary epilogue region: it computes
// the Nora and RMNP row updates with the row statistics in f64 and one
// row-level synchronization. This file checks that a fused step's region is
// one of them, exactly (and finds the same chains outside fused steps, on a
// gradient given as a tensor):
//
//   %mn, %u = nora.momentum %m0, %g {beta, [nesterov]}
//   [%v = nora.orth_project %u, %w0 {eps}]
//   %d = nora.row_normalize %v_or_u {eps, scale}
//   %wn = nora.apply_update %w0, %d, %lr0, %wd0
//   nora.yield %wn, %mn
//
//===----------------------------------------------------------------------===//

#include "FusedStepKernel.h"

#include "nora/Dialect/Nora/IR/NoraOps.h"

using namespace mlir;
using namespace mlir::nora;

namespace {

LogicalResult unsupported(FusedWgradStepOp step, Operation *op,
                          const Twine &why) {
  InFlightDiagnostic diag = step.emitOpError()
                            << "cannot be lowered to the GPU: " << why;
  if (op)
    diag.attachNote(op->getLoc()) << "this '" << op->getName() << "' op";
  diag.attachNote() << "the GPU kernel computes the Nora chain (momentum, "
                       "orth_project, row_normalize, apply_update) and the "
                       "RMNP chain (the same without orth_project)";
  return failure();
}

/// The attributes of a matched chain.
void fillChain(RowUpdateChain &chain, MomentumOp momentum,
               OrthProjectOp project, RowNormalizeOp normalize) {
  chain.beta = momentum.getBeta().convertToDouble();
  if (std::optional<APFloat> mu = momentum.getNesterov())
    chain.nesterov = mu->convertToDouble();
  if (project)
    chain.projectEps = project.getEps().convertToDouble();
  chain.normalizeEps = normalize.getEps().convertToDouble();
  chain.normalizeScale = normalize.getScale().convertToDouble();
}

/// The one user of `v`, if it has exactly one use.
template <typename OpTy> OpTy soleUser(Value v) {
  if (!v.hasOneUse())
    return OpTy();
  return dyn_cast<OpTy>(*v.getUsers().begin());
}

} // namespace

std::optional<FreeRowUpdateChain>
mlir::nora::matchFreeRowUpdateChain(MomentumOp momentum) {
  FreeRowUpdateChain found;
  found.momentum = momentum;
  Value direction = momentum.getU();
  if (auto project = soleUser<OrthProjectOp>(direction)) {
    if (project.getU() != direction)
      return std::nullopt;
    found.project = project;
    direction = project.getV();
  }
  found.normalize = soleUser<RowNormalizeOp>(direction);
  if (!found.normalize)
    return std::nullopt;
  found.update = soleUser<ApplyUpdateOp>(found.normalize.getD());
  if (!found.update || found.update.getD() != found.normalize.getD())
    return std::nullopt;
  // One weight throughout, and the momentum's operands given from outside.
  Value w = found.update.getW();
  if (found.project && found.project.getW() != w)
    return std::nullopt;
  fillChain(found.chain, momentum, found.project, found.normalize);
  // A guard on exactly this step's g, W, M and results, the only user of
  // W' and M': the kernel guards the step itself.
  Value wNew = found.update.getWNew(), mNew = momentum.getMNew();
  if (auto skip = soleUser<SkipNonfiniteOp>(wNew)) {
    bool onlyUser = llvm::all_of(mNew.getUsers(), [&](Operation *user) {
      return user == skip.getOperation();
    });
    if (onlyUser && skip.getG() == momentum.getG() && skip.getW() == w &&
        skip.getM() == momentum.getM() && skip.getWNew() == wNew &&
        skip.getMNew() == mNew &&
        (skip.getMode() == "skip_row" || skip.getMode() == "skip_step")) {
      found.skip = skip;
      found.chain.guard = parseNonfiniteGuard(skip.getMode());
    }
  }
  return found;
}

FailureOr<RowUpdateChain> mlir::nora::matchRowUpdateChain(FusedWgradStepOp op) {
  Block &body = op.getEpilogue().front();
  Value g = body.getArgument(0), w = body.getArgument(1),
        m = body.getArgument(2), lr = body.getArgument(3),
        wd = body.getArgument(4);
  auto ops = llvm::to_vector(llvm::make_pointer_range(body));
  RowUpdateChain chain;
  size_t next = 0;
  auto take = [&]() -> Operation * {
    return next < ops.size() ? ops[next++] : nullptr;
  };

  Operation *first = take();
  auto momentum = dyn_cast_or_null<MomentumOp>(first);
  if (!momentum || momentum.getM() != m || momentum.getG() != g)
    return unsupported(op, first,
                       "the epilogue must start with nora.momentum of the "
                       "step's momentum and gradient");
  Value direction = momentum.getU();
  Operation *op2 = take();
  auto project = dyn_cast_or_null<OrthProjectOp>(op2);
  if (project) {
    if (project.getU() != direction || project.getW() != w)
      return unsupported(op, project,
                         "nora.orth_project must project the momentum "
                         "direction against the step's weight");
    direction = project.getV();
    op2 = take();
  }
  auto normalize = dyn_cast_or_null<RowNormalizeOp>(op2);
  if (!normalize || normalize.getV() != direction)
    return unsupported(op, op2,
                       "expected nora.row_normalize of the (projected) "
                       "momentum direction");
  fillChain(chain, momentum, project, normalize);

  Operation *op3 = take();
  auto update = dyn_cast_or_null<ApplyUpdateOp>(op3);
  if (!update || update.getW() != w || update.getD() != normalize.getD() ||
      update.getLr() != lr || update.getWd() != wd)
    return unsupported(op, op3,
                       "expected nora.apply_update of the step's weight with "
                       "the normalized direction, lr and wd");

  Operation *op4 = take();
  auto yield = dyn_cast_or_null<YieldOp>(op4);
  if (!yield || yield.getValues().size() != 2 ||
      yield.getValues()[0] != update.getWNew() ||
      yield.getValues()[1] != momentum.getMNew())
    return unsupported(op, op4,
                       "the epilogue must yield the updated weight and "
                       "momentum right after nora.apply_update");
  // The region holds exactly these ops, so every intermediate is used only
  // by the next op of the chain: the kernel keeps them in registers.
  return chain;
}
