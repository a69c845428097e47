//===- SimtMainloop.cpp - the exact-f32 mainloop of the fused step --------===//
//
// A 64 x 64 tile of g with exact f32 FMAs: 256 threads (ty, tx) in a 16 x 16
// grid, thread (ty, tx) holding rows ty*4 + r and columns tx + 16 c. The
// same layout loads the tile of a given gradient (the optimizer step alone).
//
//   for t0 in 0..T step 16:
//     dy[t0:+16, rows] -> smem A (f32), x[t0:+16, cols] -> smem B; sync
//     acc[r][c] = fma(A[k][ty*4+r], B[k][tx+16c], acc[r][c]); sync
//
// bf16/f16 inputs are extended to f32 on the way to shared memory, so the
// products are exact and only the sums round. The row partials of the
// epilogue: 16 threads (tx) a row.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

using namespace mlir;
using namespace mlir::nora;

void KernelEmitter::emitSimtStageLoad(Value src, int64_t srcCols, Value t0,
                                      Value c0, Value stage) {
  // 16 x 64 elements, 4 a thread: element e = tid + 256 q is (k, col) =
  // (e / 64, e % 64), so a warp reads 32 consecutive columns of one token.
  const int64_t cols = tiling.blockCols;
  const int64_t perThread =
      tiling.blockTokens * cols / FusedStepTiling::kThreads;
  Value col = remIdx(tid, cols);
  Value k0 = divIdx(tid, cols);
  Value c = add(c0, col);
  Value cValid = lt(c, idx(srcCols));
  Value cClamped = minIdx(c, idx(srcCols - 1));
  for (int64_t q = 0; q < perThread; ++q) {
    Value k = add(k0, idx(q * FusedStepTiling::kThreads / cols));
    Value t = add(t0, k);
    Value valid = andI(lt(t, idx(shape.tokens)), cValid);
    Value tClamped = minIdx(t, idx(shape.tokens - 1));
    Value v = toF32(load(src, {tClamped, cClamped}));
    store(select(valid, v, f32(0.0)), stage, {k, col});
  }
}

TileFragment KernelEmitter::emitSimtFragment() {
  Value tx = remIdx(tid, kSimtThreadsX);
  Value ty = divIdx(tid, kSimtThreadsX);
  TileFragment frag;
  Value rowBase = mul(ty, idx(kSimtThreadRows));
  for (int64_t r = 0; r < kSimtThreadRows; ++r)
    frag.rows.push_back(add(rowBase, idx(r)));
  for (int64_t c = 0; c < kSimtThreadCols; ++c)
    frag.cols.push_back(add(tx, idx(c * kSimtThreadsX)));
  frag.contributors = kSimtThreadsX;
  frag.contributor = tx;
  return frag;
}

TileFragment KernelEmitter::emitGradientLoad(Value i0, Value j0) {
  // The SIMT layout; a warp reads 16 consecutive columns of two rows.
  // Indices are clamped: the epilogue masks what is out of range.
  TileFragment frag = emitSimtFragment();
  for (Value r : frag.rows) {
    Value row = minIdx(add(i0, r), idx(shape.rows - 1));
    for (Value c : frag.cols)
      frag.acc.push_back(
          load(grad, {row, minIdx(add(j0, c), idx(shape.cols - 1))}));
  }
  return frag;
}

TileFragment KernelEmitter::emitSimtMainloop(Value i0, Value j0) {
  constexpr int64_t kR = kSimtThreadRows, kC = kSimtThreadCols;
  TileFragment frag = emitSimtFragment();

  SmallVector<Value> init(kR * kC, f32(0.0));
  emitStatePrefetch(idx(0), i0, j0);
  frag.acc = forLoop(idx(0), idx(shape.tokens), idx(tiling.blockTokens), init,
                     [&](Value t0, ValueRange carried) {
                       emitSimtStageLoad(dy, shape.rows, t0, i0, smemA);
                       emitSimtStageLoad(x, shape.cols, t0, j0, smemB);
                       emitStatePrefetch(t0, i0, j0);
                       barrier();
                       SmallVector<Value> acc(carried);
                       for (int64_t k = 0; k < tiling.blockTokens; ++k) {
                         Value kk = idx(k);
                         SmallVector<Value> a, bv;
                         for (int64_t r = 0; r < kR; ++r)
                           a.push_back(load(smemA, {kk, frag.rows[r]}));
                         for (int64_t c = 0; c < kC; ++c)
                           bv.push_back(load(smemB, {kk, frag.cols[c]}));
                         for (int64_t r = 0; r < kR; ++r)
                           for (int64_t c = 0; c < kC; ++c) {
                             Value &slot = acc[r * kC + c];
                             slot =
                                 LLVM::FMAOp::create(b, loc, a[r], bv[c], slot);
                           }
                       }
                       barrier();
                       return acc;
                     });
  return frag;
}
