//===- FuseWgradEpilogue.cpp - matmul + optimizer chain -> one op -*- C++
//-*-===//
//
// Finds the weight-gradient contraction g = dy^T x (+ acc) in any of the forms
// a front end writes, follows g through the optimizer chain, and replaces the
// contraction and the chain with one nora.fused_wgrad_step whose region holds
// the chain:
//
//   %g  = <contraction of %dy, %x>          %wn, %mn = nora.fused_wgrad_step
//   %mn, %u = nora.momentum %m, %g     =>       dy(%dy) x(%x) w(%w) m(%m)
//   ...                                         lr(%lr) wd(%wd) { chain }
//   %wn = nora.apply_update %w, %d, %lr, %wd
//
// The chain is every op in the forward slice of g that is row-local (it
// implements RowwiseEpilogueOpInterface, or it is an elementwise arith/math
// op on tensors) and that w_new or m_new depends on. Values the chain reads
// from outside must be w, m, lr, wd or constants (the region is isolated).
// When an intermediate has a use outside the chain, the fused op still
// replaces w_new and m_new, and the original ops stay for that use, so the
// value remains correct (it is computed twice).
//
//===----------------------------------------------------------------------===//

#include "nora/Dialect/Nora/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"

namespace mlir::nora {
#define GEN_PASS_DEF_NORAFUSEWGRADEPILOGUE
#include "nora/Dialect/Nora/Transforms/Passes.h.inc"
} // namespace mlir::nora

using namespace mlir;
using namespace mlir::nora;

namespace {

/// g = scale * dy^T x (+ acc), as found in the IR.
struct Contraction {
  Operation *root = nullptr; ///< The op that produces g.
  Value dy, x, acc;
  double scale = 1.0;
  Value g;
};

bool isZeroFill(Value value) {
  auto fill = value.getDefiningOp<linalg::FillOp>();
  return fill && matchPattern(fill.getInputs()[0], m_AnyZeroFloat());
}

/// dy when `value` is transpose(dy) (linalg.transpose or an equivalent
/// linalg.generic), else null.
Value matchTransposeSource(Value value) {
  if (auto transpose = value.getDefiningOp<linalg::TransposeOp>()) {
    if (transpose.getPermutation() == ArrayRef<int64_t>{1, 0})
      return transpose.getInput();
    return nullptr;
  }
  auto generic = value.getDefiningOp<linalg::GenericOp>();
  if (!generic || generic.getNumDpsInputs() != 1 ||
      generic.getNumDpsInits() != 1 || generic.getNumLoops() != 2)
    return nullptr;
  SmallVector<AffineMap> maps = generic.getIndexingMapsArray();
  MLIRContext *ctx = generic.getContext();
  AffineMap swapped =
      AffineMap::getPermutationMap(ArrayRef<unsigned>{1u, 0u}, ctx);
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, ctx);
  bool transposes = (maps[0] == swapped && maps[1] == identity) ||
                    (maps[0] == identity && maps[1] == swapped);
  auto yield = cast<linalg::YieldOp>(generic.getBody()->getTerminator());
  if (!transposes || yield.getValues().size() != 1 ||
      yield.getValues()[0] != generic.getBody()->getArgument(0))
    return nullptr;
  return generic.getDpsInputs()[0];
}

bool isActivation(Value value) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || type.getRank() != 2)
    return false;
  Type elem = type.getElementType();
  return elem.isF32() || elem.isBF16() || elem.isF16();
}

/// The contraction forms of linalg: matmul (named, with indexing_maps) or a
/// contraction linalg.generic, with the first operand read transposed, or a
/// plain one whose first operand is a transpose of dy.
std::optional<Contraction> matchLinalgContraction(linalg::LinalgOp op) {
  if (!op.hasPureTensorSemantics() || op.getNumDpsInputs() != 2 ||
      op.getNumDpsInits() != 1 || op->getNumResults() != 1 ||
      !linalg::isaContractionOpInterface(op))
    return std::nullopt;
  FailureOr<linalg::ContractionDimensions> dims =
      linalg::inferContractionDims(op);
  if (failed(dims) || !dims->batch.empty() || dims->m.size() != 1 ||
      dims->n.size() != 1 || dims->k.size() != 1)
    return std::nullopt;
  MLIRContext *ctx = op->getContext();
  unsigned numLoops = op.getNumLoops();
  auto map = [&](unsigned a, unsigned b) {
    return AffineMap::get(
        numLoops, 0, {getAffineDimExpr(a, ctx), getAffineDimExpr(b, ctx)}, ctx);
  };
  unsigned m = dims->m[0], n = dims->n[0], k = dims->k[0];
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  if (maps[1] != map(k, n) || maps[2] != map(m, n))
    return std::nullopt;

  Contraction c;
  c.root = op;
  c.x = op.getDpsInputs()[1];
  if (maps[0] == map(k, m))
    c.dy = op.getDpsInputs()[0];
  else if (maps[0] == map(m, k))
    c.dy = matchTransposeSource(op.getDpsInputs()[0]);
  if (!c.dy || !isActivation(c.dy) || !isActivation(c.x) ||
      cast<ShapedType>(c.dy.getType()).getElementType() !=
          cast<ShapedType>(c.x.getType()).getElementType())
    return std::nullopt;
  Value init = op.getDpsInits()[0];
  if (!cast<ShapedType>(init.getType()).getElementType().isF32())
    return std::nullopt;
  if (!isZeroFill(init))
    c.acc = init;
  c.g = op->getResult(0);
  return c;
}

std::optional<Contraction> matchContraction(Operation *op) {
  if (auto wgrad = dyn_cast<WgradOp>(op)) {
    Contraction c;
    c.root = op;
    c.dy = wgrad.getDy();
    c.x = wgrad.getX();
    c.acc = wgrad.getAcc();
    c.scale = wgrad.getScale().convertToDouble();
    c.g = wgrad.getG();
    return c;
  }
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
    return matchLinalgContraction(linalgOp);
  return std::nullopt;
}

/// Row-local ops that may run in the epilogue.
bool isEpilogueOp(Operation *op) {
  if (isa<RowwiseEpilogueOpInterface>(op))
    return true;
  if (!op->hasTrait<OpTrait::Elementwise>() || !isMemoryEffectFree(op) ||
      !isa<arith::ArithDialect, math::MathDialect>(op->getDialect()))
    return false;
  return llvm::all_of(op->getResultTypes(),
                      [](Type t) { return isa<RankedTensorType>(t); });
}

bool isConstantLike(Value value) {
  Operation *def = value.getDefiningOp();
  return def && def->hasTrait<OpTrait::ConstantLike>();
}

/// The chain that turns g into (w_new, m_new), with the values it reads from
/// outside.
struct Chain {
  SmallVector<Operation *> ops; ///< In program order.
  Value w, m, lr, wd;
  Value wNew, mNew;
  /// The guard of the step, when (w_new, m_new) feed one: it becomes the
  /// fused op's `nonfinite` attribute.
  SkipNonfiniteOp guard;
};

/// The nora.skip_nonfinite that guards exactly this step: it reads the
/// step's g, w, m and its (w_new, m_new).
SkipNonfiniteOp findGuard(const Chain &chain, Value g) {
  for (Operation *user : chain.wNew.getUsers()) {
    auto guard = dyn_cast<SkipNonfiniteOp>(user);
    if (guard && guard.getWNew() == chain.wNew &&
        guard.getMNew() == chain.mNew && guard.getG() == g &&
        guard.getW() == chain.w && guard.getM() == chain.m &&
        guard->getBlock() == g.getParentBlock())
      return guard;
  }
  return {};
}

std::optional<Chain> collectChain(const Contraction &c) {
  // Forward slice of g through epilogue ops in the same block.
  Block *block = c.root->getBlock();
  llvm::SetVector<Operation *> slice;
  SmallVector<Value> worklist = {c.g};
  while (!worklist.empty()) {
    Value value = worklist.pop_back_val();
    for (Operation *user : value.getUsers()) {
      if (user->getBlock() != block || !isEpilogueOp(user) ||
          !slice.insert(user))
        continue;
      llvm::append_range(worklist, user->getResults());
    }
  }
  ApplyUpdateOp update;
  MomentumOp momentum;
  for (Operation *op : slice) {
    if (auto a = dyn_cast<ApplyUpdateOp>(op)) {
      if (update)
        return std::nullopt; // two updates from one gradient: ambiguous
      update = a;
    }
    if (auto mo = dyn_cast<MomentumOp>(op)) {
      if (momentum)
        return std::nullopt;
      momentum = mo;
    }
  }
  if (!update || !momentum || slice.contains(update.getW().getDefiningOp()) ||
      slice.contains(momentum.getM().getDefiningOp()))
    return std::nullopt;

  Chain chain;
  chain.w = update.getW();
  chain.m = momentum.getM();
  chain.lr = update.getLr();
  chain.wd = update.getWd();
  chain.wNew = update.getWNew();
  chain.mNew = momentum.getMNew();
  chain.guard = findGuard(chain, c.g);

  // Keep what w_new and m_new depend on: the backward slice within `slice`.
  llvm::SetVector<Operation *> needed;
  SmallVector<Operation *> stack = {update, momentum};
  while (!stack.empty()) {
    Operation *op = stack.pop_back_val();
    if (!needed.insert(op))
      continue;
    for (Value operand : op->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (def && slice.contains(def))
        stack.push_back(def);
      else if (operand != c.g && operand != chain.w && operand != chain.m &&
               operand != chain.lr && operand != chain.wd &&
               !isConstantLike(operand))
        return std::nullopt; // the isolated region cannot read it
    }
  }
  chain.ops.assign(needed.begin(), needed.end());
  llvm::sort(chain.ops,
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return chain;
}

/// Builds the fused op after the last op of the chain (after its guard, when
/// it has one) and redirects the uses of w_new and m_new (of the guard's
/// results) to it.
void fuse(const Contraction &c, const Chain &chain, RewriterBase &rewriter) {
  SkipNonfiniteOp guard = chain.guard;
  rewriter.setInsertionPointAfter(guard ? guard.getOperation()
                                        : chain.ops.back());
  Location loc = rewriter.getFusedLoc({c.root->getLoc(), chain.wNew.getLoc()});
  SmallVector<Type> resultTypes = {chain.w.getType(), chain.m.getType()};
  StringAttr nonfinite;
  if (guard) {
    resultTypes.push_back(rewriter.getI64Type());
    nonfinite = guard.getModeAttr();
  }
  auto fused = FusedWgradStepOp::create(
      rewriter, loc, resultTypes, c.dy, c.x, c.acc, chain.w, chain.m, chain.lr,
      chain.wd, rewriter.getF32FloatAttr(c.scale), nonfinite);
  Type f32 = rewriter.getF32Type();
  Block *body = rewriter.createBlock(
      &fused.getEpilogue(), {},
      {fused.getGradType(), chain.w.getType(), chain.m.getType(), f32, f32},
      SmallVector<Location>(5, loc));
  IRMapping mapping;
  mapping.map(c.g, body->getArgument(0));
  mapping.map(chain.w, body->getArgument(1));
  mapping.map(chain.m, body->getArgument(2));
  mapping.map(chain.lr, body->getArgument(3));
  mapping.map(chain.wd, body->getArgument(4));
  for (Operation *op : chain.ops) {
    for (Value operand : op->getOperands())
      if (!mapping.contains(operand))
        mapping.map(operand,
                    rewriter.clone(*operand.getDefiningOp())->getResult(0));
    rewriter.clone(*op, mapping);
  }
  YieldOp::create(
      rewriter, loc,
      ValueRange{mapping.lookup(chain.wNew), mapping.lookup(chain.mNew)});
  // Uses after the fused op read its results; a use placed before it (inside
  // the span of the chain) keeps the original value, which stays correct.
  Block *block = fused->getBlock();
  auto isAfterFused = [&](OpOperand &use) {
    Operation *owner = block->findAncestorOpInBlock(*use.getOwner());
    return owner && fused->isBeforeInBlock(owner);
  };
  if (guard) {
    rewriter.replaceOp(guard, fused.getResults());
    return;
  }
  rewriter.replaceUsesWithIf(chain.wNew, fused.getWNew(), isAfterFused);
  rewriter.replaceUsesWithIf(chain.mNew, fused.getMNew(), isAfterFused);
}

/// Erases the ops of `candidates` (consumers first) that nothing uses and
/// that have no side effect, then the producers that became dead the same
/// way. Each op is erased once, and never touched after.
void eraseDeadOps(ArrayRef<Operation *> candidates, RewriterBase &rewriter) {
  llvm::DenseSet<Operation *> erased;
  SmallVector<Operation *> worklist(llvm::reverse(candidates));
  while (!worklist.empty()) {
    Operation *op = worklist.pop_back_val();
    if (erased.contains(op) || !op->use_empty() || !isMemoryEffectFree(op) ||
        op->hasTrait<OpTrait::IsTerminator>())
      continue;
    for (Value operand : op->getOperands())
      if (Operation *producer = operand.getDefiningOp())
        worklist.push_back(producer);
    erased.insert(op);
    rewriter.eraseOp(op);
  }
}

struct NoraFuseWgradEpiloguePass
    : nora::impl::NoraFuseWgradEpilogueBase<NoraFuseWgradEpiloguePass> {
  void runOnOperation() override {
    SmallVector<Contraction> contractions;
    getOperation()->walk([&](Operation *op) {
      if (std::optional<Contraction> c = matchContraction(op))
        contractions.push_back(*c);
    });
    IRRewriter rewriter(&getContext());
    for (const Contraction &c : contractions) {
      std::optional<Chain> chain = collectChain(c);
      if (!chain)
        continue;
      if (c.g.getType() != chain->w.getType())
        continue; // e.g. a static g for a dynamically shaped w
      fuse(c, *chain, rewriter);
      // The replaced chain and contraction are pure: drop what has no use
      // left. Ops still used outside the chain stay, and stay correct.
      SmallVector<Operation *> candidates(llvm::reverse(chain->ops));
      candidates.push_back(c.root);
      eraseDeadOps(candidates, rewriter);
    }
  }
};

} // namespace
