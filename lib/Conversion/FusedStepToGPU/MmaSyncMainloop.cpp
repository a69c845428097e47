//===- MmaSyncMainloop.cpp - the tensor-core mainloop of the fused step ---===//
//
// A 128 x 128 tile of g = dy^T x on tensor cores, for bf16 or f16 dy and x
// (f32 accumulation): mma.sync.m16n8k16, fed by ldmatrix from a 4-stage
// shared-memory ring that cp.async fills 16 tokens at a time.
//
// Both operands are token-major in global memory (dy: T x M, x: T x N), and
// a stage keeps them that way: stage[k][m] is 16 rows of 128 elements (256
// bytes, 16 chunks of 16 bytes). Chunk c of row k lives at chunk c ^ (k & 7),
// so the 8 rows an ldmatrix reads at one column fall in 8 different bank
// groups (no conflicts), and the cp.async of a warp writes 512 distinct
// bytes.
//
// With a stored row k and column m, ldmatrix .trans gives lane l the pair
// (k = 2 (l % 4) + {0, 1}, m = l / 4) of an 8 x 8 block: exactly the A
// fragment (row m, columns k) of mma.m16n8k16 .row, and the B fragment
// (rows k, column n) of .col. So one ldmatrix.x4.trans loads
//   A of a 16 x 16 block at m0: blocks (m0, k0) (m0+8, k0) (m0, k0+8)
//       (m0+8, k0+8) -> a0a1 a2a3 a4a5 a6a7;
//   B of two 8-column blocks at n0: (k0, n0) (k0+8, n0) (k0, n0+8)
//       (k0+8, n0+8) -> b0b1 b2b3 of n0, then of n0 + 8.
// Lane l gives the address of row l % 8 of block l / 8.
//
// 8 warps, 2 x 4, each 64 rows x 32 columns: 4 x 4 mma tiles of 16 x 8, 64
// f32 accumulators a thread. Accumulator (h, j) of mma tile (mt, nt) is
// row 16 mt + 8 h + l / 4, column 8 nt + 2 (l % 4) + j of the warp's block:
// the thread holds 8 rows x 8 columns, and its 4 quad lanes together hold
// whole rows of the warp's 32 columns (the epilogue sums them over the quad,
// then the 4 warps of a row through shared memory).
//
// The ring: stage s holds token block kb with s = kb % 4. Before block kb is
// computed, cp.async.wait_group 2 (the groups of kb + 1 and kb + 2 may still
// be in flight) and a barrier; then the load of kb + 3 goes into the stage
// block kb - 1 used, which every warp has left by that barrier.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

using namespace mlir;
using namespace mlir::nora;

namespace {
constexpr int64_t kElemBytes = 2;   // bf16, f16
constexpr int64_t kChunkBytes = 16; // one cp.async, one ldmatrix row
constexpr int64_t kRowBytes = 256;  // a stage row: 128 elements
constexpr int64_t kMmaM = 16, kMmaN = 8, kMmaK = 16;
} // namespace

Value KernelEmitter::baseAddress(Value memref) {
  return i64(memref::ExtractAlignedPointerAsIndexOp::create(b, loc, memref));
}

Value KernelEmitter::sharedPointer(Value address) {
  return LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(b.getContext(), /*shared*/ 3),
      address);
}

Value KernelEmitter::globalPointer(Value address) {
  MLIRContext *ctx = b.getContext();
  Value generic = LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(ctx), address);
  return LLVM::AddrSpaceCastOp::create(
      b, loc, LLVM::LLVMPointerType::get(ctx, /*global*/ 1), generic);
}

Value KernelEmitter::emitQuadSum(Value v) {
  Type i32Type = b.getI32Type(), i64Type = b.getI64Type();
  Value width = i32(32);
  for (int32_t offset : {1, 2}) {
    // An f64 crosses lanes as two 32-bit halves.
    Value bits = arith::BitcastOp::create(b, loc, i64Type, v);
    Value lo = arith::TruncIOp::create(b, loc, i32Type, bits);
    Value hi = arith::TruncIOp::create(
        b, loc, i32Type,
        arith::ShRUIOp::create(b, loc, bits,
                               arith::ConstantOp::create(
                                   b, loc, i64Type, b.getI64IntegerAttr(32))));
    auto shuffle = [&](Value half) -> Value {
      return gpu::ShuffleOp::create(b, loc, half, i32(offset), width,
                                    gpu::ShuffleMode::XOR)
          .getShuffleResult();
    };
    Value otherLo = arith::ExtUIOp::create(b, loc, i64Type, shuffle(lo));
    Value otherHi = arith::ExtUIOp::create(b, loc, i64Type, shuffle(hi));
    Value other = arith::OrIOp::create(
        b, loc, otherLo,
        arith::ShLIOp::create(b, loc, otherHi,
                              arith::ConstantOp::create(
                                  b, loc, i64Type, b.getI64IntegerAttr(32))));
    // Lanes l and l ^ offset add the same two values: the same bits.
    v = add(v, arith::BitcastOp::create(b, loc, b.getF64Type(), other));
  }
  return v;
}

void KernelEmitter::emitMmaSyncStageLoad(
    Value src, int64_t srcCols, Value smemBase, Value stage, Value kblock,
    Value c0, int64_t elemBytes, int64_t stageBytes,
    function_ref<Value(Value, Value)> stageOffset) {
  // Token rows of 128 elements, one chunk a thread: thread t copies chunk
  // t % C of token row t / C (C chunks a row; bf16: 16 rows x 16 chunks,
  // f32: 8 x 32). Rows and columns are multiples of a chunk, so a chunk is
  // all in range or all out; out of range copies 0 bytes and zero-fills.
  const int64_t chunksPerRow = 128 * elemBytes / kChunkBytes;
  Value k = divIdx(tid, chunksPerRow);
  Value chunk = remIdx(tid, chunksPerRow);
  Value t = add(mul(kblock, idx(tiling.blockTokens)), k);
  Value c = add(c0, mul(chunk, idx(kChunkBytes / elemBytes)));
  Value valid = andI(lt(t, idx(shape.tokens)), lt(c, idx(srcCols)));
  Value offset = mul(add(mul(t, idx(srcCols)), c), idx(elemBytes));
  offset = select(valid, offset, idx(0));
  Value srcPtr = globalPointer(add(baseAddress(src), i64(offset)));
  Value dstOffset = add(mul(stage, idx(stageBytes)), stageOffset(k, chunk));
  Value dstPtr = sharedPointer(add(smemBase, i64(dstOffset)));
  Value bytes =
      arith::SelectOp::create(b, loc, valid, i32(kChunkBytes), i32(0));
  NVVM::CpAsyncOp::create(b, loc, dstPtr, srcPtr, kChunkBytes,
                          NVVM::LoadCacheModifierKind::CG, bytes);
}

TileFragment KernelEmitter::emitMmaSyncFragment() {
  constexpr int64_t kTilesM = kMmaSyncWarpRows / kMmaM; // 4
  constexpr int64_t kTilesN = kMmaSyncWarpCols / kMmaN; // 4
  Value lane = remIdx(tid, 32), warp = divIdx(tid, 32);
  Value group = divIdx(lane, 4), inQuad = remIdx(lane, 4);
  Value warpM = divIdx(warp, kMmaSyncWarpsN);
  Value warpN = remIdx(warp, kMmaSyncWarpsN);

  TileFragment frag;
  Value rowBase = add(mul(warpM, idx(kMmaSyncWarpRows)), group);
  for (int64_t mt = 0; mt < kTilesM; ++mt)
    for (int64_t h = 0; h < 2; ++h)
      frag.rows.push_back(add(rowBase, idx(mt * kMmaM + h * 8)));
  Value colBase = add(mul(warpN, idx(kMmaSyncWarpCols)), mul(inQuad, idx(2)));
  for (int64_t nt = 0; nt < kTilesN; ++nt)
    for (int64_t j = 0; j < 2; ++j)
      frag.cols.push_back(add(colBase, idx(nt * kMmaN + j)));
  frag.pairedCols = true;
  frag.quadSum = true;
  frag.contributors = kMmaSyncWarpsN;
  frag.contributor = warpN;
  frag.writer = eqIdx(inQuad, 0);
  return frag;
}

TileFragment KernelEmitter::emitMmaSyncMainloop(Value i0, Value j0) {
  MLIRContext *ctx = b.getContext();
  const int64_t stageBytes = tiling.blockTokens * kRowBytes;
  constexpr int64_t kTilesM = kMmaSyncWarpRows / kMmaM; // 4
  constexpr int64_t kTilesN = kMmaSyncWarpCols / kMmaN; // 4

  Value lane = remIdx(tid, 32), warp = divIdx(tid, 32);
  Value warpM = divIdx(warp, kMmaSyncWarpsN);
  Value warpN = remIdx(warp, kMmaSyncWarpsN);
  TileFragment frag = emitMmaSyncFragment();

  // The byte offsets in a stage of the rows this lane gives ldmatrix: row
  // l % 8 of block l / 8 (see the file comment), swizzled.
  Value block = divIdx(lane, 8), rowInBlock = remIdx(lane, 8);
  auto ldmatrixOffset = [&](Value k, Value chunk) -> Value {
    Value swizzled = arith::XOrIOp::create(b, loc, chunk, rowInBlock);
    return add(mul(k, idx(kRowBytes)), mul(swizzled, idx(kChunkBytes)));
  };
  SmallVector<Value> aOffsets, bOffsets;
  for (int64_t mt = 0; mt < kTilesM; ++mt) {
    // Blocks (m0 | m0+8) x (k0 | k0+8): k half = block / 2, m half = block % 2.
    Value k = add(rowInBlock, mul(divIdx(block, 2), idx(8)));
    Value chunk = add(mul(warpM, idx(kMmaSyncWarpRows / 8)),
                      add(idx(mt * 2), remIdx(block, 2)));
    aOffsets.push_back(ldmatrixOffset(k, chunk));
  }
  for (int64_t np = 0; np < kTilesN / 2; ++np) {
    // Blocks (k0 | k0+8) x (n0 | n0+8): k half = block % 2, n half = block / 2.
    Value k = add(rowInBlock, mul(remIdx(block, 2), idx(8)));
    Value chunk = add(mul(warpN, idx(kMmaSyncWarpCols / 8)),
                      add(idx(np * 2), divIdx(block, 2)));
    bOffsets.push_back(ldmatrixOffset(k, chunk));
  }

  Value baseA = baseAddress(smemA), baseB = baseAddress(smemB);
  // Chunk c of token row k at c ^ (k & 7) of a 256-byte row.
  auto stageOffset = [&](Value k, Value chunk) -> Value {
    Value swizzled = arith::XOrIOp::create(b, loc, chunk, remIdx(k, 8));
    return add(mul(k, idx(kRowBytes)), mul(swizzled, idx(kChunkBytes)));
  };

  Type i32Type = b.getI32Type();
  auto x4 = LLVM::LLVMStructType::getLiteral(
      ctx, {i32Type, i32Type, i32Type, i32Type});
  bool isBF16 = shape.dyElem.isBF16();
  NVVM::MMATypes ptxType = isBF16 ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  // f16 operands are <2 x half> registers, bf16 ones i32.
  auto operand = [&](Value reg) -> Value {
    if (isBF16)
      return reg;
    return LLVM::BitcastOp::create(b, loc, VectorType::get({2}, b.getF16Type()),
                                   reg);
  };
  auto ldmatrix = [&](Value address) -> SmallVector<Value> {
    Value result = NVVM::LdMatrixOp::create(
        b, loc, x4, sharedPointer(address), b.getI32IntegerAttr(4),
        NVVM::MMALayoutAttr::get(ctx, NVVM::MMALayout::col),
        NVVM::LdStMatrixShapeAttr::get(ctx, 8, 8),
        NVVM::LdStMatrixEltTypeAttr::get(ctx, NVVM::LdStMatrixEltType::B16));
    SmallVector<Value> regs;
    for (int64_t i = 0; i < 4; ++i)
      regs.push_back(LLVM::ExtractValueOp::create(b, loc, result, i));
    return regs;
  };

  SmallVector<Value> init(kTilesM * kTilesN * 4, f32(0.0));
  frag.acc = emitCpAsyncRing(
      i0, j0, kElemBytes, stageBytes, stageOffset, init,
      [&](Value kb, Value stage, ValueRange carried) {
        Value offset = mul(stage, idx(stageBytes));
        Value stageA = add(baseA, i64(offset));
        Value stageB = add(baseB, i64(offset));
        SmallVector<SmallVector<Value>> aRegs, bRegs;
        for (Value off : aOffsets)
          aRegs.push_back(ldmatrix(add(stageA, i64(off))));
        for (Value off : bOffsets)
          bRegs.push_back(ldmatrix(add(stageB, i64(off))));
        SmallVector<Value> acc(carried);
        emitMmaSyncTiles(
            acc, kMmaK, ptxType,
            [&](int64_t mt) {
              SmallVector<Value> regs;
              for (Value reg : aRegs[mt])
                regs.push_back(operand(reg));
              return regs;
            },
            [&](int64_t nt) {
              const SmallVector<Value> &pair = bRegs[nt / 2];
              return SmallVector<Value>{operand(pair[(nt % 2) * 2]),
                                        operand(pair[(nt % 2) * 2 + 1])};
            });
        return acc;
      });
  return frag;
}

SmallVector<Value> KernelEmitter::emitCpAsyncRing(
    Value i0, Value j0, int64_t elemBytes, int64_t stageBytes,
    function_ref<Value(Value, Value)> stageOffset, ValueRange init,
    function_ref<SmallVector<Value>(Value, Value, ValueRange)> step) {
  const int64_t stages = tiling.stages;
  const int64_t numK = llvm::divideCeil(shape.tokens, tiling.blockTokens);
  Value baseA = baseAddress(smemA), baseB = baseAddress(smemB);
  auto loadStage = [&](Value stage, Value kblock) {
    emitMmaSyncStageLoad(dy, shape.rows, baseA, stage, kblock, i0, elemBytes,
                         stageBytes, stageOffset);
    emitMmaSyncStageLoad(x, shape.cols, baseB, stage, kblock, j0, elemBytes,
                         stageBytes, stageOffset);
  };
  // Prologue: token blocks 0 .. stages-2, one commit group each (empty past
  // the end, so that the group count stays uniform).
  for (int64_t s = 0; s < stages - 1; ++s) {
    if (s < numK)
      loadStage(idx(s), idx(s));
    NVVM::CpAsyncCommitGroupOp::create(b, loc);
  }
  emitStatePrefetch(idx(0), i0, j0);
  SmallVector<Value> result = forLoop(
      idx(0), idx(numK), idx(1), init, [&](Value kb, ValueRange carried) {
        NVVM::CpAsyncWaitGroupOp::create(b, loc, stages - 2);
        barrier();
        Value next = add(kb, idx(stages - 1));
        ifThen(lt(next, idx(numK)),
               [&] { loadStage(remIdx(next, stages), next); });
        NVVM::CpAsyncCommitGroupOp::create(b, loc);
        emitStatePrefetch(mul(kb, idx(tiling.blockTokens)), i0, j0);
        return step(kb, remIdx(kb, stages), carried);
      });
  // Every copy has landed and every warp has left the ring before the next
  // tile's prologue refills it.
  NVVM::CpAsyncWaitGroupOp::create(b, loc, 0);
  barrier();
  return result;
}

void KernelEmitter::emitMmaSyncTiles(
    SmallVector<Value> &acc, int64_t k, NVVM::MMATypes type,
    function_ref<SmallVector<Value>(int64_t)> a,
    function_ref<SmallVector<Value>(int64_t)> bOperand) {
  constexpr int64_t kTilesM = kMmaSyncWarpRows / kMmaM; // 4
  constexpr int64_t kTilesN = kMmaSyncWarpCols / kMmaN; // 4
  auto f32x4 = LLVM::LLVMStructType::getLiteral(
      b.getContext(), SmallVector<Type>(4, b.getF32Type()));
  // The accumulators in the fragment's order: row (mt, h), column (nt, j).
  auto accIndex = [&](int64_t mt, int64_t nt, int64_t h, int64_t j) {
    return (mt * 2 + h) * (kTilesN * 2) + nt * 2 + j;
  };
  for (int64_t mt = 0; mt < kTilesM; ++mt) {
    SmallVector<Value> aRegs = a(mt);
    for (int64_t nt = 0; nt < kTilesN; ++nt) {
      SmallVector<Value> c;
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t j = 0; j < 2; ++j)
          c.push_back(acc[accIndex(mt, nt, h, j)]);
      Value d = NVVM::MmaOp::create(
          b, loc, f32x4, aRegs, bOperand(nt), c, {kMmaM, kMmaN, int32_t(k)},
          std::nullopt, std::nullopt, std::array<NVVM::MMATypes, 2>{type, type},
          std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                         NVVM::MMALayout::col});
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t j = 0; j < 2; ++j)
          acc[accIndex(mt, nt, h, j)] =
              LLVM::ExtractValueOp::create(b, loc, d, h * 2 + j);
    }
  }
}
