//===- Tf32Mainloop.cpp - f32 inputs on tf32 tensor cores (opt-in) --------===//
//
// A 128 x 128 tile of g = dy^T x for f32 dy and x on tensor cores, behind
// allow-tf32 (the default for f32 is the exact SIMT mainloop): mma.sync
// m16n8k8 .tf32 with f32 accumulation. Each input is rounded to the nearest
// tf32 (cvt.rna.tf32.f32: 10 mantissa bits, ties away from zero) as it
// leaves shared memory, so the result is that of the rounded inputs with
// f32 sums; SEMANTICS.md's f32 accuracy does not hold (the bf16 one does).
//
// The same 8 warps (2 x 4, 64 x 32 each), accumulator layout and epilogue
// as the bf16 mma.sync mainloop (MmaSyncMainloop.cpp): the m16n8 C
// fragment of m16n8k8 is the one of m16n8k16. The ring is the same 4-stage
// cp.async ring, with stages of 8 tokens (one k8 step): token rows of 128
// floats, padded to 136 (544 bytes), so that the scalar loads of a warp's
// fragments (lane l: row l / 4 + ..., token l % 4 + ...) fall in 32
// different banks (word 136 k + m: bank 8 k + m).
//
// Fragments of mma.m16n8k8 .tf32 (PTX ISA, lane l: g = l / 4, t = l % 4):
//   A (16 x 8, row):  a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t +
//   4) B (8 x 8, col):   b0 (t, g), b1 (t + 4, g)
// with A = dy^T (A[m][k] = stage_dy[k][m]) and B = x (B[k][n] =
// stage_x[k][n]).
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

using namespace mlir;
using namespace mlir::nora;

namespace {
constexpr int64_t kElemBytes = 4;
constexpr int64_t kRowBytes = kTf32RowFloats * kElemBytes; // 544
constexpr int64_t kChunkBytes = 16;
constexpr int64_t kMmaM = 16, kMmaN = 8, kMmaK = 8;
} // namespace

TileFragment KernelEmitter::emitTf32Mainloop(Value i0, Value j0) {
  const int64_t stageBytes = tiling.blockTokens * kRowBytes;
  constexpr int64_t kTilesM = kMmaSyncWarpRows / kMmaM; // 4
  constexpr int64_t kTilesN = kMmaSyncWarpCols / kMmaN; // 4

  Value lane = remIdx(tid, 32), warp = divIdx(tid, 32);
  Value group = divIdx(lane, 4), inQuad = remIdx(lane, 4);
  Value warpM = divIdx(warp, kMmaSyncWarpsN);
  Value warpN = remIdx(warp, kMmaSyncWarpsN);
  TileFragment frag = emitMmaSyncFragment();

  auto stageOffset = [&](Value k, Value chunk) -> Value {
    return add(mul(k, idx(kRowBytes)), mul(chunk, idx(kChunkBytes)));
  };
  // One operand register: the f32 at [stage][k][col] rounded to tf32.
  auto operand = [&](Value smem, Value stage, Value k, Value col) -> Value {
    Value v = load(smem, {stage, k, col});
    return NVVM::ConvertFloatToTF32Op::create(
        b, loc, b.getI32Type(), v, NVVM::FPRoundingMode::RNA,
        NVVM::SaturationMode::NONE, /*relu=*/false);
  };
  Value rowBase = add(mul(warpM, idx(kMmaSyncWarpRows)), group);
  Value colBase = add(mul(warpN, idx(kMmaSyncWarpCols)), group);
  Value kLo = inQuad, kHi = add(inQuad, idx(4));
  SmallVector<Value> init(kTilesM * kTilesN * 4, f32(0.0));
  frag.acc = emitCpAsyncRing(
      i0, j0, kElemBytes, stageBytes, stageOffset, init,
      [&](Value kb, Value stage, ValueRange carried) {
        SmallVector<SmallVector<Value>> aRegs, bRegs;
        for (int64_t mt = 0; mt < kTilesM; ++mt) {
          Value m = add(rowBase, idx(mt * kMmaM));
          Value m8 = add(m, idx(8));
          aRegs.push_back(
              {operand(smemA, stage, kLo, m), operand(smemA, stage, kLo, m8),
               operand(smemA, stage, kHi, m), operand(smemA, stage, kHi, m8)});
        }
        for (int64_t nt = 0; nt < kTilesN; ++nt) {
          Value n = add(colBase, idx(nt * kMmaN));
          bRegs.push_back(
              {operand(smemB, stage, kLo, n), operand(smemB, stage, kHi, n)});
        }
        SmallVector<Value> acc(carried);
        emitMmaSyncTiles(
            acc, kMmaK, NVVM::MMATypes::tf32,
            [&](int64_t mt) { return aRegs[mt]; },
            [&](int64_t nt) { return bRegs[nt]; });
        return acc;
      });
  return frag;
}
