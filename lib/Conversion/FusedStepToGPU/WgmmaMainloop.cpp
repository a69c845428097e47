//===- WgmmaMainloop.cpp - the sm_90a wgmma mainloop of the fused step ----===//
//
// A 128 x 128 tile of g = dy^T x with wgmma.mma_async (opt-in:
// mainloop=wgmma, sm_90a), bf16 or f16 inputs, f32 accumulation. Two
// warpgroups each compute 64 rows x 128 columns with one m64n128k16 per
// 16-token stage, reading both operands from shared memory through matrix
// descriptors; TMA fills the stages.
//
// Both operands are MN-major (dy^T's rows and x's columns are contiguous in
// global memory): A with imm-trans-a (layout col), B with imm-trans-b
// (layout row). The stage of one operand is the canonical MN-major 128-byte
// swizzle layout of the PTX ISA, ((8,8,2),(8,2)):((1,8,LBO),(64,SBO)) in
// elements: two 64-element atoms along MN (LBO = 2048 bytes apart), each of
// 16 token rows of 128 bytes in two 8-row groups (SBO = 1024 bytes); chunk
// c of row k sits at chunk c ^ (k & 7) (Swizzle<3,4,3> on the byte
// address, from a 1024-byte aligned base). One atom is exactly what one
// cp.async.bulk.tensor of a 16 x 64 box writes with the 128-byte swizzle,
// so a stage is 4 TMA copies (2 of dy, 2 of x; 8 KiB), issued by thread 0
// on the stage's mbarrier (arrive.expect_tx of the 8 KiB, then the copies
// complete the transaction). Out-of-bounds rows, columns and tokens read
// zeros: no predicates, no clamping.
//
// The ring prefetches 2 token blocks ahead into 4 stages; the first 2
// blocks of the CTA's next tile are issued as soon as this tile's last
// wgmma is done, so they load during the epilogue. Before block kb:
// wgmma.wait_group 1 (the wgmma of block kb - 2 is done), a barrier (in
// both warpgroups), thread 0 issues block kb + 2 into the stage block
// kb - 2 used; then every thread waits on the mbarrier of block kb's
// stage, and the wgmma of block kb is issued and committed, so two wgmmas
// and two blocks of copies are in flight. Each tile restarts the ring at
// stage 0; stage s is used u(s) = ceil((K - s) / 4) times a tile (K token
// blocks), so the use of stage s by block kb in the CTA's tile i waits on
// phase parity (i u(s) + kb / 4) & 1.
//
// Accumulator i of a thread in warp w of its warpgroup (lane l) is row
// 16 w + l / 4 + 8 ((i % 4) / 2), column 8 (i / 4) + 2 (l % 4) + i % 2: the
// thread holds 2 rows x 32 columns, and the 4 lanes of a quad hold a whole
// row (the epilogue sums them by shuffles; no other thread has that row).
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

using namespace mlir;
using namespace mlir::nora;

namespace {
constexpr int64_t kAtomBytes = 2048;  // 16 token rows of one MN atom
constexpr int64_t kGroupBytes = 1024; // 8 token rows: the swizzle period
constexpr int64_t kWarpgroupRows = 64;
constexpr int64_t kAccumulators = 64; // m64n128 f32 over 128 threads
/// The suspend-time hint of mbarrier.try_wait (ns), as upstream's nvgpu.
constexpr int32_t kTryWaitTicks = 10000000;
} // namespace

Value KernelEmitter::stageBarrier(Value stage) {
  return sharedPointer(add(baseAddress(smemBarriers), i64(mul(stage, idx(8)))));
}

void KernelEmitter::emitWgmmaBarrierInit() {
  ifThen(eqIdx(tid, 0), [&] {
    for (int64_t s = 0; s < tiling.stages; ++s)
      NVVM::MBarrierInitOp::create(b, loc, stageBarrier(idx(s)), i32(1),
                                   /*predicate=*/Value());
    NVVM::FenceMbarrierInitOp::create(b, loc);
  });
  barrier();
}

TileFragment KernelEmitter::emitWgmmaMainloop(Value i0, Value j0) {
  MLIRContext *ctx = b.getContext();
  const int64_t stages = tiling.stages;
  const int64_t distance = stages - 2; // blocks in flight ahead
  const int64_t numK = llvm::divideCeil(shape.tokens, tiling.blockTokens);
  const int64_t stageBytes = 2 * kAtomBytes;

  Value lane = remIdx(tid, 32), warp = divIdx(tid, 32);
  Value group = divIdx(lane, 4), inQuad = remIdx(lane, 4);
  Value warpgroup = divIdx(warp, 4), warpInGroup = remIdx(warp, 4);

  TileFragment frag;
  Value rowBase = add(mul(warpgroup, idx(kWarpgroupRows)),
                      add(mul(warpInGroup, idx(16)), group));
  for (int64_t h = 0; h < 2; ++h)
    frag.rows.push_back(add(rowBase, idx(8 * h)));
  Value colBase = mul(inQuad, idx(2));
  for (int64_t j = 0; j < 16; ++j)
    for (int64_t e = 0; e < 2; ++e)
      frag.cols.push_back(add(colBase, idx(8 * j + e)));
  frag.quadSum = true;
  frag.contributors = 1;
  frag.contributor = idx(0);
  frag.writer = eqIdx(inQuad, 0);

  // Stage s of an operand: 2 atoms of 16 token rows x 64 elements, each
  // one TMA box.
  Value baseA = baseAddress(smemA), baseB = baseAddress(smemB);
  Type i32Type = b.getI32Type();
  auto toI32 = [&](Value index) -> Value {
    return arith::IndexCastOp::create(b, loc, i32Type, index);
  };
  auto genericPointer = [&](Value address) -> Value {
    return LLVM::IntToPtrOp::create(b, loc, LLVM::LLVMPointerType::get(ctx),
                                    address);
  };
  Value dyDescriptor = genericPointer(baseAddress(dyMap));
  Value xDescriptor = genericPointer(baseAddress(xMap));
  auto loadStage = [&](Value kblock, Value i0, Value j0) {
    Value stage = remIdx(kblock, stages);
    Value bar = stageBarrier(stage);
    NVVM::MBarrierArriveExpectTxOp::create(
        b, loc, /*res=*/Type(), bar, i32(int32_t(4 * kAtomBytes)),
        NVVM::MemScopeKind::CTA, /*relaxed=*/false, /*predicate=*/Value());
    Value token = toI32(mul(kblock, idx(tiling.blockTokens)));
    Value stageBytes64 = i64(mul(stage, idx(stageBytes)));
    for (auto [base, descriptor, c0] :
         {std::tuple{baseA, dyDescriptor, i0}, {baseB, xDescriptor, j0}}) {
      for (int64_t a = 0; a < 2; ++a) {
        // shared::cluster (address space 7) is the PTX 8.0 form; a CTA's
        // own shared addresses are valid there.
        Value dst = LLVM::AddrSpaceCastOp::create(
            b, loc, LLVM::LLVMPointerType::get(ctx, /*shared_cluster*/ 7),
            sharedPointer(
                add(add(base, stageBytes64), i64(idx(a * kAtomBytes)))));
        Value column = toI32(add(c0, idx(a * FusedStepTiling::kTmaBoxCols)));
        NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
            b, loc, dst, descriptor, ValueRange{column, token}, bar,
            /*im2colOffsets=*/ValueRange{}, /*multicastMask=*/Value(),
            /*l2CacheHint=*/Value(), NVVM::TMALoadMode::TILE,
            /*isCTAOnly=*/false, /*group=*/NVVM::CTAGroupKindAttr(),
            /*predicate=*/Value());
      }
    }
  };
  // The first blocks of a tile: for the CTA's first tile here; for the
  // next ones at the end of the previous mainloop, so that their copies
  // are in flight during its epilogue.
  Value leader = eqIdx(tid, 0);
  auto prologue = [&](Value tileI0, Value tileJ0) {
    for (int64_t s = 0; s < std::min(distance, numK); ++s)
      loadStage(idx(s), tileI0, tileJ0);
  };
  ifThen(andI(leader, eqIdx(tileIteration, 0)), [&] { prologue(i0, j0); });
  // The phase parity block kb waits for (see the header).
  auto phaseParity = [&](Value kb) -> Value {
    Value stage = remIdx(kb, stages);
    Value uses = divIdx(
        arith::SubIOp::create(b, loc, idx(numK + stages - 1), stage), stages);
    Value before = add(mul(tileIteration, uses), divIdx(kb, stages));
    return toI32(remIdx(before, 2));
  };

  // A matrix descriptor: start address, LBO (between MN atoms), SBO
  // (between 8-row groups) in 16-byte units, 128-byte swizzle (mode 1).
  Type i64Type = b.getI64Type();
  auto i64c = [&](int64_t v) -> Value {
    return arith::ConstantOp::create(b, loc, i64Type, b.getI64IntegerAttr(v));
  };
  const int64_t fields = ((kAtomBytes >> 4) << 16) |
                         (int64_t(kGroupBytes >> 4) << 32) | (int64_t(1) << 62);
  auto descriptor = [&](Value address) -> Value {
    Value start = arith::ShRUIOp::create(
        b, loc, arith::AndIOp::create(b, loc, address, i64c(0x3FFFF)), i64c(4));
    return arith::OrIOp::create(b, loc, start, i64c(fields));
  };

  auto accType = LLVM::LLVMStructType::getLiteral(
      ctx, SmallVector<Type>(kAccumulators, b.getF32Type()));
  Value zero = LLVM::ZeroOp::create(b, loc, accType);
  bool isBF16 = shape.dyElem.isBF16();
  auto elemType = NVVM::WGMMATypesAttr::get(
      ctx, isBF16 ? NVVM::WGMMATypes::bf16 : NVVM::WGMMATypes::f16);
  Value warpgroupA = mul(warpgroup, idx(kAtomBytes));

  auto loop =
      scf::ForOp::create(b, loc, idx(0), idx(numK), idx(1), ValueRange{zero});
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value kb = loop.getInductionVar();
    Value acc = loop.getRegionIterArgs()[0];
    // The wgmma of block kb - 2 is done in both warpgroups: its stage is
    // free for block kb + 2.
    NVVM::WgmmaWaitGroupSyncOp::create(b, loc, distance - 1);
    barrier();
    Value next = add(kb, idx(distance));
    ifThen(andI(leader, lt(next, idx(numK))), [&] { loadStage(next, i0, j0); });
    NVVM::MBarrierTryWaitParityOp::create(b, loc,
                                          stageBarrier(remIdx(kb, stages)),
                                          phaseParity(kb), i32(kTryWaitTicks));

    Value stageOffsetBytes = i64(mul(remIdx(kb, stages), idx(stageBytes)));
    Value descA =
        descriptor(add(add(baseA, stageOffsetBytes), i64(warpgroupA)));
    Value descB = descriptor(add(baseB, stageOffsetBytes));
    NVVM::WgmmaFenceAlignedOp::create(b, loc);
    Value updated = NVVM::WgmmaMmaAsyncOp::create(
        b, loc, accType, acc, descA, descB,
        NVVM::MMAShapeAttr::get(ctx, 64, 128, 16), elemType, elemType,
        NVVM::WGMMATypesAttr::get(ctx, NVVM::WGMMATypes::f32),
        NVVM::WGMMAScaleOutAttr::get(ctx, NVVM::WGMMAScaleOut::one),
        NVVM::WGMMAScaleInAttr::get(ctx, NVVM::WGMMAScaleIn::one),
        NVVM::WGMMAScaleInAttr::get(ctx, NVVM::WGMMAScaleIn::one),
        NVVM::MMALayoutAttr::get(ctx, NVVM::MMALayout::col),
        NVVM::MMALayoutAttr::get(ctx, NVVM::MMALayout::row),
        NVVM::MMAIntOverflowAttr());
    NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
    scf::YieldOp::create(b, loc, updated);
  }
  // Every wgmma is done (every copy was waited for), and every warp has
  // left the ring, before the accumulators are read and the next tile
  // refills it.
  NVVM::WgmmaWaitGroupSyncOp::create(b, loc, 0);
  barrier();
  // The ring is free: the next tile's first blocks load during this
  // tile's epilogue.
  Value nextTile = add(currentTile, gridSize);
  ifThen(andI(leader, lt(nextTile, idx(tiling.tiles))), [&] {
    Value nextI0 =
        mul(divIdx(nextTile, tiling.colTiles), idx(tiling.blockRows));
    Value nextJ0 =
        mul(remIdx(nextTile, tiling.colTiles), idx(tiling.blockCols));
    prologue(nextI0, nextJ0);
  });

  Value result = loop.getResult(0);
  frag.acc.assign(2 * 32, Value());
  for (int64_t i = 0; i < kAccumulators; ++i) {
    int64_t j = i / 4, h = (i % 4) / 2, e = i % 2;
    frag.acc[h * 32 + j * 2 + e] =
        LLVM::ExtractValueOp::create(b, loc, result, i);
  }
  return frag;
}
