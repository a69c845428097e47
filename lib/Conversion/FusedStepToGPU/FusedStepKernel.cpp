//===- FusedStepKernel.cpp - the persistent fused-step GPU kernel -*- C++
//-*-===//
//
// One kernel computes g = scale dy^T x (+ acc) tile by tile and runs the
// optimizer update on each tile while it is in registers. The schedule of a
// CTA (256 threads, thread (ty, tx) owns rows ty*4 + r and columns
// tx + 16 c of the 64 x 64 tile):
//
//   onePhase = gridDim.x >= colTiles           (uniform over the grid)
//   for tile = blockIdx.x; tile < tiles; tile += gridDim.x:
//     rb, ct = tile / colTiles, tile % colTiles        (row-block-major)
//     mainloop: for t0 in 0..T step 16:                (exact f32 FMAs)
//       dy[t0:+16, rows] -> smem A, x[t0:+16, cols] -> smem B; sync
//       acc[r][c] = fma(A[k][ty*4+r], B[k][tx+16c], acc[r][c]); sync
//     epilogue:
//       g = scale acc (+ acc_in); M' = lerp(M, g, 1-beta), store M'
//       U = nesterov ? lerp(g, M', mu) : M'
//       partial row stats (f64): sum U^2 [, sum U W, sum W^2]
//         -> smem [stat][row][tx] -> fixed-order sum -> slot[rb][ct][stat][row]
//       if onePhase:
//         arrive on counter[rb] (fence.acq_rel.gpu; atom.add), spin until it
//         reaches colTiles (ld.acquire.gpu), sum the colTiles slots of each
//         row in order, finish D and W' from registers, store W'
//       else: store U into W' (parked)
//   if !onePhase:
//     grid barrier on counter[rowBlocks]; for each row i of this CTA
//     (i = blockIdx.x, + gridDim.x, ...): sum its slots in order, W'[i, :] =
//     f(W[i, :], U = W'[i, :])
//
// Both phases sum the same slots in the same order and apply the same
// element formula, so W' and M' are bitwise the same for every grid size.
// The spin-waits need every CTA resident: the launch is cooperative.
//
//===----------------------------------------------------------------------===//

#include "FusedStepKernel.h"

#include "nora/Conversion/UpdateFormulas.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::nora;

FusedStepTiling FusedStepTiling::get(const FusedStepShape &shape,
                                     const RowUpdateChain &chain) {
  FusedStepTiling t;
  t.rowBlocks = llvm::divideCeil(shape.rows, kBlockRows);
  t.colTiles = llvm::divideCeil(shape.cols, kBlockCols);
  t.tiles = t.rowBlocks * t.colTiles;
  t.numStats = chain.numStats();
  t.counters = t.rowBlocks + 1;
  t.statsOffset = llvm::alignTo(t.counters * 4, 256);
  t.statsCount = t.rowBlocks * t.colTiles * t.numStats * kBlockRows;
  t.workspaceBytes = t.statsOffset + t.statsCount * 8;
  return t;
}

namespace {

using T = FusedStepTiling;

/// Emits the kernel body. Values named like the schedule above.
class KernelEmitter {
public:
  KernelEmitter(OpBuilder &b, Location loc, const FusedStepShape &shape,
                const RowUpdateChain &chain, const FusedStepTiling &tiling)
      : b(b), loc(loc), shape(shape), chain(chain), tiling(tiling) {}

  void emit(gpu::GPUFuncOp func);

private:
  // --- small builders ------------------------------------------------------
  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f32(double v) {
    return arith::ConstantOp::create(b, loc, b.getF32Type(),
                                     b.getF32FloatAttr(v));
  }
  Value f64(double v) {
    return arith::ConstantOp::create(b, loc, b.getF64Type(),
                                     b.getF64FloatAttr(v));
  }
  Value add(Value x, Value y) {
    if (isa<FloatType>(x.getType()))
      return arith::AddFOp::create(b, loc, x, y);
    return arith::AddIOp::create(b, loc, x, y);
  }
  Value mul(Value x, Value y) {
    if (isa<FloatType>(x.getType()))
      return arith::MulFOp::create(b, loc, x, y);
    return arith::MulIOp::create(b, loc, x, y);
  }
  Value lt(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, x, y);
  }
  Value minIdx(Value x, Value y) {
    return arith::MinUIOp::create(b, loc, x, y);
  }
  Value andI(Value x, Value y) { return arith::AndIOp::create(b, loc, x, y); }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, loc, c, x, y);
  }
  Value toF64(Value v) {
    return arith::ExtFOp::create(b, loc, b.getF64Type(), v);
  }
  Value toF32(Value v) {
    if (v.getType().isF32())
      return v;
    if (v.getType().isF64())
      return arith::TruncFOp::create(b, loc, b.getF32Type(), v);
    return arith::ExtFOp::create(b, loc, b.getF32Type(), v);
  }
  Value load(Value memref, ValueRange indices) {
    return memref::LoadOp::create(b, loc, memref, indices);
  }
  void store(Value v, Value memref, ValueRange indices) {
    memref::StoreOp::create(b, loc, v, memref, indices);
  }
  void barrier() { gpu::BarrierOp::create(b, loc); }
  /// Runs `body` at the start of the then-block of an scf.if on `cond`.
  void ifThen(Value cond, function_ref<void()> body) {
    auto op = scf::IfOp::create(b, loc, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(op.thenBlock());
    body();
  }
  /// An scf.for from `lb` to `ub` step `step` whose body is `body(iv)`.
  void forLoop(Value lb, Value ub, Value step, function_ref<void(Value)> body) {
    auto loop = scf::ForOp::create(b, loc, lb, ub, step);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    body(loop.getInductionVar());
  }
  /// An scf.for carrying `init`; `body(iv, carried)` returns the next values.
  SmallVector<Value>
  forLoop(Value lb, Value ub, Value step, ValueRange init,
          function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    auto loop = scf::ForOp::create(b, loc, lb, ub, step, init);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(loop.getBody());
      SmallVector<Value> next =
          body(loop.getInductionVar(), loop.getRegionIterArgs());
      scf::YieldOp::create(b, loc, next);
    }
    return SmallVector<Value>(loop.getResults().begin(),
                              loop.getResults().end());
  }

  // --- pieces of the schedule ----------------------------------------------
  SmallVector<Value> emitMainloop(Value i0, Value j0);
  void emitStageLoad(Value src, int64_t srcCols, Value t0, Value c0,
                     Value stage);
  void emitEpilogue(Value rb, Value ct, ArrayRef<Value> acc);
  /// Sums the slots of row `row` of row block `rb` over the column tiles, in
  /// order: the row's statistics.
  SmallVector<Value> emitRowStats(Value rb, Value row);
  /// (a, factor) of a row from its statistics: V = U - a W (a = 0 without
  /// projection), D = factor V.
  std::pair<Value, Value> emitRowCoefficients(ValueRange stats);
  /// W' of one element from U, W and its row's (a, factor).
  Value emitUpdatedWeight(Value u, Value w, Value a, Value factor);
  /// Thread 0 arrives on counters[index] and waits until it reaches
  /// `target` (i32); the whole CTA waits for it.
  void emitArriveAndWait(Value index, Value target);
  void emitStreamingPhase();
  Value counterPointer(Value index);

  OpBuilder &b;
  Location loc;
  const FusedStepShape &shape;
  const RowUpdateChain &chain;
  const FusedStepTiling &tiling;

  // Kernel arguments and per-thread values, set by emit().
  Value dy, x, accIn, w, m, lr, wd, wNew, mNew, counters, stats;
  Value smemA, smemB, smemRed, smemCoef;
  Value tid, tx, ty, blockId, gridSize, decay, negLr;
};

} // namespace

void KernelEmitter::emitStageLoad(Value src, int64_t srcCols, Value t0,
                                  Value c0, Value stage) {
  // 16 x 64 elements, 4 a thread: element e = tid + 256 q is (k, col) =
  // (e / 64, e % 64), so a warp reads 32 consecutive columns of one token.
  constexpr int64_t kPerThread = T::kBlockTokens * T::kBlockCols / T::kThreads;
  Value col = arith::RemUIOp::create(b, loc, tid, idx(T::kBlockCols));
  Value k0 = arith::DivUIOp::create(b, loc, tid, idx(T::kBlockCols));
  Value c = add(c0, col);
  Value cValid = lt(c, idx(srcCols));
  Value cClamped = minIdx(c, idx(srcCols - 1));
  for (int64_t q = 0; q < kPerThread; ++q) {
    Value k = add(k0, idx(q * T::kThreads / T::kBlockCols));
    Value t = add(t0, k);
    Value valid = andI(lt(t, idx(shape.tokens)), cValid);
    Value tClamped = minIdx(t, idx(shape.tokens - 1));
    Value v = toF32(load(src, {tClamped, cClamped}));
    store(select(valid, v, f32(0.0)), stage, {k, col});
  }
}

SmallVector<Value> KernelEmitter::emitMainloop(Value i0, Value j0) {
  SmallVector<Value> init(T::kThreadRows * T::kThreadCols, f32(0.0));
  Value rowBase = mul(ty, idx(T::kThreadRows));
  return forLoop(
      idx(0), idx(shape.tokens), idx(T::kBlockTokens), init,
      [&](Value t0, ValueRange carried) {
        emitStageLoad(dy, shape.rows, t0, i0, smemA);
        emitStageLoad(x, shape.cols, t0, j0, smemB);
        barrier();
        SmallVector<Value> acc(carried);
        for (int64_t k = 0; k < T::kBlockTokens; ++k) {
          Value kk = idx(k);
          SmallVector<Value> a, bv;
          for (int64_t r = 0; r < T::kThreadRows; ++r)
            a.push_back(load(smemA, {kk, add(rowBase, idx(r))}));
          for (int64_t c = 0; c < T::kThreadCols; ++c)
            bv.push_back(load(smemB, {kk, add(tx, idx(c * T::kThreadsX))}));
          for (int64_t r = 0; r < T::kThreadRows; ++r)
            for (int64_t c = 0; c < T::kThreadCols; ++c) {
              Value &slot = acc[r * T::kThreadCols + c];
              slot = LLVM::FMAOp::create(b, loc, a[r], bv[c], slot);
            }
        }
        barrier();
        return acc;
      });
}

SmallVector<Value> KernelEmitter::emitRowStats(Value rb, Value row) {
  SmallVector<Value> init(tiling.numStats, f64(0.0));
  Value colTiles = idx(tiling.colTiles);
  return forLoop(
      idx(0), colTiles, idx(1), init, [&](Value ct, ValueRange sums) {
        // slot index ((rb * colTiles + ct) * S + s) * 64 + row
        Value base = mul(add(mul(rb, colTiles), ct), idx(tiling.numStats));
        SmallVector<Value> next;
        for (int64_t s = 0; s < tiling.numStats; ++s) {
          Value slot = add(mul(add(base, idx(s)), idx(T::kBlockRows)), row);
          next.push_back(add(sums[s], load(stats, {slot})));
        }
        return next;
      });
}

std::pair<Value, Value>
KernelEmitter::emitRowCoefficients(ValueRange rowStats) {
  Value scale = f64(chain.normalizeScale);
  if (!chain.projectEps) {
    // RMNP: D = scale U / max(||U||, eps).
    return {f64(0.0), createSafeRatio(b, loc, scale, rowStats[0],
                                      chain.normalizeEps, /*squared=*/false)};
  }
  // Nora: a = <U, W> / max(||W||, eps)^2, V = U - a W, and in f64
  // ||V||^2 = ||U||^2 - 2 a <U, W> + a^2 ||W||^2 (clamped at 0): exact enough
  // when U and W are almost parallel, because the statistics are f64 sums of
  // exact products of f32 values.
  Value uu = rowStats[0], uw = rowStats[1], ww = rowStats[2];
  Value a = createSafeRatio(b, loc, uw, ww, *chain.projectEps,
                            /*squared=*/true);
  Value twoA = mul(f64(2.0), a);
  Value vv = arith::SubFOp::create(b, loc, uu, mul(twoA, uw));
  vv = add(vv, mul(mul(a, a), ww));
  vv = arith::MaximumFOp::create(b, loc, vv, f64(0.0));
  return {a, createSafeRatio(b, loc, scale, vv, chain.normalizeEps,
                             /*squared=*/false)};
}

Value KernelEmitter::emitUpdatedWeight(Value u, Value wv, Value a,
                                       Value factor) {
  Value v = u;
  if (chain.projectEps) {
    // V rounded to f32 once, as the op-by-op lowering stores it.
    Value v64 = arith::SubFOp::create(b, loc, toF64(u), mul(a, toF64(wv)));
    v = toF32(v64);
  }
  Value d = toF32(mul(toF64(v), factor));
  return createWeightUpdate(b, loc, wv, d, decay, negLr);
}

Value KernelEmitter::counterPointer(Value index) {
  Value base = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, counters);
  Value byteOffset = mul(index, idx(4));
  Value address =
      arith::IndexCastOp::create(b, loc, b.getI64Type(), add(base, byteOffset));
  return LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(b.getContext()), address);
}

void KernelEmitter::emitArriveAndWait(Value index, Value target) {
  // Release: every thread's slot writes are ordered before thread 0's fence
  // by the barrier; the fence makes them visible at gpu scope before the
  // arrival. NVPTX drops the ordering of atomicrmw, hence the explicit fence.
  barrier();
  Value isFirst =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, tid, idx(0));
  ifThen(isFirst, [&] {
    Value ptr = counterPointer(index);
    Type i32 = b.getI32Type();
    LLVM::FenceOp::create(b, loc, LLVM::AtomicOrdering::release, "device");
    Value one = arith::ConstantOp::create(b, loc, i32, b.getI32IntegerAttr(1));
    LLVM::AtomicRMWOp::create(b, loc, LLVM::AtomicBinOp::add, ptr, one,
                              LLVM::AtomicOrdering::monotonic, "device");
    // Acquire: spin on ld.acquire.gpu until every tile has arrived.
    scf::WhileOp::create(
        b, loc, TypeRange{}, ValueRange{},
        [&](OpBuilder &nb, Location l, ValueRange) {
          Value seen = LLVM::LoadOp::create(
              nb, l, i32, ptr, /*alignment=*/4, /*isVolatile=*/false,
              /*isNonTemporal=*/false, /*isInvariant=*/false,
              /*isInvariantGroup=*/false, LLVM::AtomicOrdering::acquire,
              "device");
          Value waiting = arith::CmpIOp::create(
              nb, l, arith::CmpIPredicate::slt, seen, target);
          scf::ConditionOp::create(nb, l, waiting, ValueRange{});
        },
        [&](OpBuilder &nb, Location l, ValueRange) {
          scf::YieldOp::create(nb, l);
        });
    LLVM::FenceOp::create(b, loc, LLVM::AtomicOrdering::acquire, "device");
  });
  barrier();
}

void KernelEmitter::emitEpilogue(Value rb, Value ct, ArrayRef<Value> acc) {
  constexpr int64_t kR = T::kThreadRows, kC = T::kThreadCols;
  Value rowInTile0 = mul(ty, idx(kR));
  Value i0 = add(mul(rb, idx(T::kBlockRows)), rowInTile0);
  Value j0 = add(mul(ct, idx(T::kBlockCols)), tx);
  SmallVector<Value> rows, rowOk, rowsClamped, cols, colOk, colsClamped;
  for (int64_t r = 0; r < kR; ++r) {
    rows.push_back(add(i0, idx(r)));
    rowOk.push_back(lt(rows.back(), idx(shape.rows)));
    rowsClamped.push_back(minIdx(rows.back(), idx(shape.rows - 1)));
  }
  for (int64_t c = 0; c < kC; ++c) {
    cols.push_back(add(j0, idx(c * T::kThreadsX)));
    colOk.push_back(lt(cols.back(), idx(shape.cols)));
    colsClamped.push_back(minIdx(cols.back(), idx(shape.cols - 1)));
  }

  // g, momentum, U; M' is stored right away. U stays in registers.
  double emaWeight = 1.0 - chain.beta;
  SmallVector<Value> us, oks;
  for (int64_t r = 0; r < kR; ++r) {
    SmallVector<Value> sums(tiling.numStats, f64(0.0));
    for (int64_t c = 0; c < kC; ++c) {
      Value g = acc[r * kC + c];
      if (shape.gradScale != 1.0)
        g = mul(f32(shape.gradScale), g);
      if (shape.hasAcc)
        g = add(g, load(accIn, {rowsClamped[r], colsClamped[c]}));
      Value wv = load(w, {rowsClamped[r], colsClamped[c]});
      Value mv = load(m, {rowsClamped[r], colsClamped[c]});
      Value mn = createTorchLerp(b, loc, mv, g, emaWeight);
      Value u =
          chain.nesterov ? createTorchLerp(b, loc, g, mn, *chain.nesterov) : mn;
      Value ok = andI(rowOk[r], colOk[c]);
      ifThen(ok, [&] { store(mn, mNew, {rows[r], cols[c]}); });
      // Out-of-range elements contribute nothing to the statistics.
      Value u64 = toF64(select(ok, u, f32(0.0)));
      Value w64 = toF64(select(ok, wv, f32(0.0)));
      sums[0] = add(sums[0], mul(u64, u64));
      if (tiling.numStats == 3) {
        sums[1] = add(sums[1], mul(u64, w64));
        sums[2] = add(sums[2], mul(w64, w64));
      }
      us.push_back(u);
      oks.push_back(ok);
    }
    // The row's partial statistics go to shared memory at once (so that
    // only one row's f64 sums are live); the 16 threads of a row are summed
    // below in a fixed order, and one thread a row writes the tile's slot.
    for (int64_t s = 0; s < tiling.numStats; ++s)
      store(sums[s], smemRed, {idx(s), add(rowInTile0, idx(r)), tx});
  }
  barrier();
  Value isRowThread = lt(tid, idx(T::kBlockRows));
  ifThen(isRowThread, [&] {
    Value colTiles = idx(tiling.colTiles);
    Value base = mul(add(mul(rb, colTiles), ct), idx(tiling.numStats));
    for (int64_t s = 0; s < tiling.numStats; ++s) {
      Value sum = f64(0.0);
      for (int64_t t = 0; t < T::kThreadsX; ++t)
        sum = add(sum, load(smemRed, {idx(s), tid, idx(t)}));
      Value slot = add(mul(add(base, idx(s)), idx(T::kBlockRows)), tid);
      store(sum, stats, {slot});
    }
  });

  Value onePhase = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge,
                                         gridSize, idx(tiling.colTiles));
  auto phase = scf::IfOp::create(b, loc, onePhase, /*withElseRegion=*/true);
  {
    // One phase: wait for the row block's other column tiles, then finish W'
    // from registers.
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(phase.thenBlock());
    Value target = arith::ConstantOp::create(
        b, loc, b.getI32Type(), b.getI32IntegerAttr(tiling.colTiles));
    emitArriveAndWait(rb, target);
    ifThen(isRowThread, [&] {
      std::pair<Value, Value> coef = emitRowCoefficients(emitRowStats(rb, tid));
      store(coef.first, smemCoef, {idx(0), tid});
      store(coef.second, smemCoef, {idx(1), tid});
    });
    barrier();
    for (int64_t r = 0; r < kR; ++r) {
      Value rowInTile = add(rowInTile0, idx(r));
      Value a = load(smemCoef, {idx(0), rowInTile});
      Value factor = load(smemCoef, {idx(1), rowInTile});
      for (int64_t c = 0; c < kC; ++c) {
        int64_t e = r * kC + c;
        // W is read again (from L1/L2: this CTA read the tile before the
        // wait) instead of living in 16 registers across it, which keeps
        // the kernel within 128 registers without spills on sm_80.
        Value wv = load(w, {rowsClamped[r], colsClamped[c]});
        Value wn = emitUpdatedWeight(us[e], wv, a, factor);
        ifThen(oks[e], [&] { store(wn, wNew, {rows[r], cols[c]}); });
      }
    }
    // smemCoef and smemRed are rewritten by the next tile only after its
    // mainloop's barriers.
  }
  {
    // Two phases: park U in W' for the streaming pass.
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(phase.elseBlock());
    for (int64_t r = 0; r < kR; ++r)
      for (int64_t c = 0; c < kC; ++c) {
        int64_t e = r * kC + c;
        ifThen(oks[e], [&] { store(us[e], wNew, {rows[r], cols[c]}); });
      }
    // The row threads have read smemRed before the next tile writes it
    // (its mainloop has no barrier when T = 0).
    barrier();
  }
}

void KernelEmitter::emitStreamingPhase() {
  Value target = arith::IndexCastOp::create(b, loc, b.getI32Type(), gridSize);
  emitArriveAndWait(idx(tiling.rowBlocks), target);
  forLoop(blockId, idx(shape.rows), gridSize, [&](Value i) {
    Value rb = arith::DivUIOp::create(b, loc, i, idx(T::kBlockRows));
    Value row = arith::RemUIOp::create(b, loc, i, idx(T::kBlockRows));
    std::pair<Value, Value> coef = emitRowCoefficients(emitRowStats(rb, row));
    forLoop(tid, idx(shape.cols), idx(T::kThreads), [&](Value j) {
      Value u = load(wNew, {i, j});
      Value wv = load(w, {i, j});
      store(emitUpdatedWeight(u, wv, coef.first, coef.second), wNew, {i, j});
    });
  });
}

void KernelEmitter::emit(gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  unsigned arg = 0;
  dy = entry.getArgument(arg++);
  x = entry.getArgument(arg++);
  if (shape.hasAcc)
    accIn = entry.getArgument(arg++);
  w = entry.getArgument(arg++);
  m = entry.getArgument(arg++);
  lr = entry.getArgument(arg++);
  wd = entry.getArgument(arg++);
  wNew = entry.getArgument(arg++);
  mNew = entry.getArgument(arg++);
  counters = entry.getArgument(arg++);
  stats = entry.getArgument(arg++);
  smemA = func.getWorkgroupAttributions()[0];
  smemB = func.getWorkgroupAttributions()[1];
  smemRed = func.getWorkgroupAttributions()[2];
  smemCoef = func.getWorkgroupAttributions()[3];

  tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  tx = arith::RemUIOp::create(b, loc, tid, idx(T::kThreadsX));
  ty = arith::DivUIOp::create(b, loc, tid, idx(T::kThreadsX));
  blockId = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  gridSize = gpu::GridDimOp::create(b, loc, gpu::Dimension::x);
  decay = createDecayFactor(b, loc, lr, wd);
  negLr = arith::NegFOp::create(b, loc, lr);

  forLoop(blockId, idx(tiling.tiles), gridSize, [&](Value tile) {
    Value rb = arith::DivUIOp::create(b, loc, tile, idx(tiling.colTiles));
    Value ct = arith::RemUIOp::create(b, loc, tile, idx(tiling.colTiles));
    Value i0 = mul(rb, idx(T::kBlockRows));
    Value j0 = mul(ct, idx(T::kBlockCols));
    SmallVector<Value> acc = emitMainloop(i0, j0);
    emitEpilogue(rb, ct, acc);
  });
  Value twoPhases = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                          gridSize, idx(tiling.colTiles));
  ifThen(twoPhases, [&] { emitStreamingPhase(); });
  gpu::ReturnOp::create(b, loc);
}

gpu::GPUFuncOp mlir::nora::buildFusedStepKernel(OpBuilder &builder,
                                                Location loc, StringRef name,
                                                const FusedStepShape &shape,
                                                const RowUpdateChain &chain,
                                                const FusedStepTiling &tiling) {
  MLIRContext *ctx = builder.getContext();
  Type f32 = builder.getF32Type(), f64 = builder.getF64Type();
  auto matrix = MemRefType::get({shape.rows, shape.cols}, f32);
  SmallVector<Type> args = {
      MemRefType::get({shape.tokens, shape.rows}, shape.dyElem),
      MemRefType::get({shape.tokens, shape.cols}, shape.xElem)};
  if (shape.hasAcc)
    args.push_back(matrix);
  args.append({matrix, matrix, f32, f32, matrix, matrix,
               MemRefType::get({tiling.counters}, builder.getI32Type()),
               MemRefType::get({tiling.statsCount}, f64)});
  auto workgroup =
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  auto shared = [&](ArrayRef<int64_t> dims, Type elem) -> Type {
    return MemRefType::get(dims, elem, MemRefLayoutAttrInterface(), workgroup);
  };
  SmallVector<Type> smem = {
      shared({T::kBlockTokens, T::kBlockRows}, f32),
      shared({T::kBlockTokens, T::kBlockCols}, f32),
      shared({tiling.numStats, T::kBlockRows, T::kThreadsX}, f64),
      shared({2, T::kBlockRows}, f64)};
  auto func = gpu::GPUFuncOp::create(builder, loc, name,
                                     builder.getFunctionType(args, {}), smem);
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                builder.getUnitAttr());
  func.setKnownBlockSizeAttr(
      builder.getDenseI32ArrayAttr({static_cast<int32_t>(T::kThreads), 1, 1}));
  // 256 threads a CTA: ptxas may use up to 255 registers a thread. The
  // persistent grid is sized from the occupancy this gives, so one CTA a SM
  // is correct, two are faster (scripts/check-gpu-resources.py records it).
  func->setAttr("nvvm.maxntid", builder.getDenseI32ArrayAttr(
                                    {static_cast<int32_t>(T::kThreads), 1, 1}));
  OpBuilder body(ctx);
  KernelEmitter(body, loc, shape, chain, tiling).emit(func);
  return func;
}
