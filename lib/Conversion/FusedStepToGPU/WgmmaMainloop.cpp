//===- WgmmaMainloop.cpp - the sm_90a wgmma mainloop of the fused step ----===//
//
// A 128 x 128 tile of g = dy^T x with wgmma.mma_async (opt-in:
// mainloop=wgmma, sm_90a), bf16 or f16 inputs, f32 accumulation. Two
// warpgroups each compute 64 rows x 128 columns with one m64n128k16 per
// 16 tokens of a stage (mainloop=wgmma: 16-token stages; wgmma-ws: 64 by
// default, 4 wgmmas in one commit group), reading both operands from
// shared memory through matrix descriptors; TMA fills the stages.
//
// Both operands are MN-major (dy^T's rows and x's columns are contiguous in
// global memory): A with imm-trans-a (layout col), B with imm-trans-b
// (layout row). The stage of one operand is the canonical MN-major 128-byte
// swizzle layout of the PTX ISA, ((8,8,2),(8,2)):((1,8,LBO),(64,SBO)) in
// elements: two 64-element atoms along MN (LBO = a stage's token rows x
// 128 bytes apart: 2048 at 16 tokens), each of the stage's token rows of
// 128 bytes in 8-row groups (SBO = 1024 bytes); chunk c of row k sits at
// chunk c ^ (k & 7) (Swizzle<3,4,3> on the byte address, from a 1024-byte
// aligned base). One atom is exactly what one cp.async.bulk.tensor of a
// (stage tokens) x 64 box writes with the 128-byte swizzle, so a stage is
// 4 TMA copies (2 of dy, 2 of x; 8 KiB at 16 tokens, 32 KiB at 64),
// issued by thread 0 on the stage's mbarrier (arrive.expect_tx of the
// stage's bytes, then the copies complete the transaction). The k-th
// wgmma of a stage reads token rows 16k..16k+15: its descriptors start
// 2048 k bytes on, on the swizzle's period. Out-of-bounds rows, columns
// and tokens read zeros: no predicates, no clamping.
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
// With warp specialization (mainloop=wgmma-ws) the same stages, copies
// and wgmmas are split between a producer warpgroup (threads 0-127; thread
// 0 issues) and the two consumer warpgroups (threads 128-383, which see
// themselves as threads 0-255), on two mbarriers a stage: "full" (the
// copies, as above) and "empty" (count 8: lane 0 of each consumer warp
// arrives once the wgmma that read the stage has retired). The ring runs
// on across the CTA's tiles: the CTA's c-th token block (c = i K + kb in
// its i-th tile) uses stage c % 4, the consumers wait on full parity
// (c / 4) & 1 and the producer, before it refills the stage, on empty
// parity (c / 4 + 1) & 1 (the first use passes at once: the phase before
// phase 0 counts as complete). So the producer runs up to 4 blocks ahead,
// into the next tile during the epilogue. Before block kb a consumer
// waits on full, issues and commits its wgmma, waits for all but that one
// (wgmma.wait_group 1) and releases the stage of block kb - 1; after the
// last block, wait_group 0 and the last stage's release. The producer
// ends with the waits of 4 more blocks, so every release has arrived
// before it exits.
//
// With ping-pong (mainloop=wgmma-pingpong) the producer, stages and
// parities are the same, but each consumer warpgroup computes a whole tile
// of the CTA's (consumer w: its tiles 2 i + w) with two accumulator chains,
// one a row atom of dy (A at the stage's two dy atoms, the same B), and
// releases a stage alone (empty count 4). Two more mbarriers are the
// consumers' turns: before the CTA's tile i (i >= 1) its consumer waits on
// turn i % 2 for phase (i - 1) / 2, which the other consumer completes
// once it has passed every full wait of tile i - 1 (lane 0 of its 4 warps
// arrive). A parity wait cannot tell a phase from the one two before it,
// so without the turns the consumer of tile i, waiting for its first
// blocks while tile i - 1's uses of the same stages are still to come,
// would pass at once. The producer thread also prefetches each tile's W
// and M rows into L2 (cp.async.bulk.prefetch.L2) after its blocks' copies.
//
// With wgmma-tall the producer and parities are wgmma-ws's, but the CTA
// tiles are 256 x 128: a stage holds 4 MN atoms of dy (256 rows) and 2 of
// x, and consumer w's two accumulator chains read dy atoms 2 w and 2 w + 1
// with the same B, so each consumer computes a whole 128 x 128 tile (row
// block 2 p + w of the CTA tile's row pair p) as a ping-pong consumer
// does. Both consumers read every stage and release it (empty count 8),
// so no turns are needed; the producer prefetches both row blocks' W and M
// rows.
//
// wgmma-wide is wgmma-tall on its side: 128 x 256 CTA tiles, a stage of 2
// MN atoms of dy and 4 of x, and consumer w's two chains read both dy
// atoms with B at x atoms 2 w and 2 w + 1 (column tile 2 q + w of the CTA
// tile's column pair q). The producer prefetches the CTA tile's 128 W and
// M rows of 256 columns (128 for the last pair of an odd number of column
// tiles).
//
// Accumulator i of a thread in warp w of its warpgroup (lane l) is row
// 16 w + l / 4 + 8 ((i % 4) / 2), column 8 (i / 4) + 2 (l % 4) + i % 2: the
// thread holds 2 rows x 32 columns (ping-pong: the same in each row atom,
// 64 rows apart), and the 4 lanes of a quad hold a whole row (the epilogue
// sums them by shuffles; no other thread has that row).
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

using namespace mlir;
using namespace mlir::nora;

namespace {
constexpr int64_t kGroupBytes = 1024; // 8 token rows: the swizzle period
constexpr int64_t kWgmmaK = 16;       // the tokens of one wgmma
constexpr int64_t kWgmmaKBytes = kWgmmaK * 128;
constexpr int64_t kWarpgroupRows = 64;
constexpr int64_t kAccumulators = 64; // m64n128 f32 over 128 threads
/// The suspend-time hint of mbarrier.try_wait (ns), as upstream's nvgpu.
constexpr int32_t kTryWaitTicks = 10000000;
} // namespace

Value KernelEmitter::stageBarrier(Value stage) {
  return sharedPointer(add(baseAddress(smemBarriers), i64(mul(stage, idx(8)))));
}

Value KernelEmitter::emptyBarrier(Value stage) {
  return stageBarrier(add(stage, idx(tiling.stages)));
}

Value KernelEmitter::turnBarrier(Value consumer) {
  return stageBarrier(add(consumer, idx(2 * tiling.stages)));
}

void KernelEmitter::emitWgmmaBarrierInit() {
  ifThen(eqIdx(tid, 0), [&] {
    for (int64_t s = 0; s < tiling.stages; ++s) {
      NVVM::MBarrierInitOp::create(b, loc, stageBarrier(idx(s)), i32(1),
                                   /*predicate=*/Value());
      // A stage's consumer warps release it: all 8, or with ping-pong the
      // 4 of the warpgroup whose tile it holds.
      if (tiling.warpSpecialized())
        NVVM::MBarrierInitOp::create(b, loc, emptyBarrier(idx(s)),
                                     i32(int32_t(tiling.stageReaderWarps())),
                                     /*predicate=*/Value());
    }
    // Ping-pong: consumer w's turn, which the other's 4 warps give.
    if (tiling.pingPong())
      for (int64_t w = 0; w < 2; ++w)
        NVVM::MBarrierInitOp::create(
            b, loc, turnBarrier(idx(w)),
            i32(int32_t(FusedStepTiling::kWarpgroupThreads / 32)),
            /*predicate=*/Value());
    NVVM::FenceMbarrierInitOp::create(b, loc);
  });
  barrier();
}

Value KernelEmitter::toI32(Value index) {
  return arith::IndexCastOp::create(b, loc, b.getI32Type(), index);
}

void KernelEmitter::emitWaitParity(Value bar, Value parity) {
  NVVM::MBarrierTryWaitParityOp::create(b, loc, bar, toI32(parity),
                                        i32(kTryWaitTicks));
}

int64_t KernelEmitter::wgmmaRowAtoms() const {
  return tiling.consumerWorkers() ? 2 : 1;
}

TileFragment KernelEmitter::emitWgmmaFragment() {
  Value lane = remIdx(tid, 32), warp = divIdx(tid, 32);
  Value group = divIdx(lane, 4), inQuad = remIdx(lane, 4);
  Value warpInGroup = remIdx(warp, 4);
  TileFragment frag;
  // Two warpgroups of 64 rows, or (ping-pong) one of both row atoms.
  Value rowBase = add(mul(warpInGroup, idx(16)), group);
  if (wgmmaRowAtoms() == 1)
    rowBase = add(mul(divIdx(warp, 4), idx(kWarpgroupRows)), rowBase);
  for (int64_t a = 0; a < wgmmaRowAtoms(); ++a)
    for (int64_t h = 0; h < 2; ++h)
      frag.rows.push_back(add(rowBase, idx(kWarpgroupRows * a + 8 * h)));
  Value colBase = mul(inQuad, idx(2));
  for (int64_t j = 0; j < 16; ++j)
    for (int64_t e = 0; e < 2; ++e)
      frag.cols.push_back(add(colBase, idx(8 * j + e)));
  frag.pairedCols = true;
  frag.quadSum = true;
  frag.contributors = 1;
  frag.contributor = idx(0);
  frag.writer = eqIdx(inQuad, 0);
  return frag;
}

void KernelEmitter::emitTmaStageLoad(Value stage, Value kblock, Value i0,
                                     Value j0) {
  MLIRContext *ctx = b.getContext();
  auto genericPointer = [&](Value address) -> Value {
    return LLVM::IntToPtrOp::create(b, loc, LLVM::LLVMPointerType::get(ctx),
                                    address);
  };
  // A stage holds 2 MN atoms a row block of dy and a column tile of x
  // (wgmma-tall: 4 of dy, wgmma-wide: 4 of x); TMA moves both operands'.
  const int64_t atomBytes = tiling.tmaAtomBytes();
  const int64_t dyAtoms = 2 * tiling.ctaRowBlocks();
  const int64_t xAtoms = 2 * tiling.ctaColTiles();
  Value bar = stageBarrier(stage);
  NVVM::MBarrierArriveExpectTxOp::create(
      b, loc, /*res=*/Type(), bar, i32(int32_t((dyAtoms + xAtoms) * atomBytes)),
      NVVM::MemScopeKind::CTA, /*relaxed=*/false, /*predicate=*/Value());
  Value token = toI32(mul(kblock, idx(tiling.blockTokens)));
  for (auto [buffer, map, c0, atoms] :
       {std::tuple{smemA, dyMap, i0, dyAtoms}, {smemB, xMap, j0, xAtoms}}) {
    Value base = baseAddress(buffer);
    Value descriptor = genericPointer(baseAddress(map));
    Value stageBytes64 = i64(mul(stage, idx(atoms * atomBytes)));
    for (int64_t a = 0; a < atoms; ++a) {
      // shared::cluster (address space 7) is the PTX 8.0 form; a CTA's
      // own shared addresses are valid there.
      Value dst = LLVM::AddrSpaceCastOp::create(
          b, loc, LLVM::LLVMPointerType::get(ctx, /*shared_cluster*/ 7),
          sharedPointer(add(add(base, stageBytes64), i64(idx(a * atomBytes)))));
      Value column = toI32(add(c0, idx(a * FusedStepTiling::kTmaBoxCols)));
      NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
          b, loc, dst, descriptor, ValueRange{column, token}, bar,
          /*im2colOffsets=*/ValueRange{}, /*multicastMask=*/Value(),
          /*l2CacheHint=*/Value(), NVVM::TMALoadMode::TILE,
          /*isCTAOnly=*/false, /*group=*/NVVM::CTAGroupKindAttr(),
          /*predicate=*/Value());
    }
  }
}

SmallVector<Value> KernelEmitter::emitWgmmaBlock(ValueRange accIn,
                                                 Value stage) {
  MLIRContext *ctx = b.getContext();
  const int64_t atoms = wgmmaRowAtoms();
  // No accumulators yet: D = A B (scale-d 0) on undefined registers.
  bool fresh = accIn.empty();
  SmallVector<Value> acc(accIn.begin(), accIn.end());
  if (fresh)
    acc.assign(atoms, LLVM::UndefOp::create(b, loc, accumulatorType()));
  // A matrix descriptor: start address, LBO (between MN atoms), SBO
  // (between 8-row groups) in 16-byte units, 128-byte swizzle (mode 1).
  Type i64Type = b.getI64Type();
  auto i64c = [&](int64_t v) -> Value {
    return arith::ConstantOp::create(b, loc, i64Type, b.getI64IntegerAttr(v));
  };
  const int64_t atomBytes = tiling.tmaAtomBytes();
  const int64_t fields = ((atomBytes >> 4) << 16) |
                         (int64_t(kGroupBytes >> 4) << 32) | (int64_t(1) << 62);
  auto descriptor = [&](Value address) -> Value {
    Value start = arith::ShRUIOp::create(
        b, loc, arith::AndIOp::create(b, loc, address, i64c(0x3FFFF)), i64c(4));
    return arith::OrIOp::create(b, loc, start, i64c(fields));
  };
  // Row atom a of dy: the warpgroup's (two warpgroups), atom a
  // (ping-pong), or atom 2 w + a of the stage's 4 (consumer w, wgmma-tall).
  const int64_t dyAtoms = 2 * tiling.ctaRowBlocks();
  Value stageA =
      add(baseAddress(smemA), i64(mul(stage, idx(dyAtoms * atomBytes))));
  SmallVector<Value> baseA;
  for (int64_t a = 0; a < atoms; ++a) {
    Value atom = atoms == 1 ? divIdx(tid, 128) : idx(a);
    // wgmma-tall: consumer() for each atom (read once for both, the
    // guarded kernel spilled 52 bytes at skip_step).
    if (tiling.tall())
      atom = add(mul(consumer(), idx(2)), atom);
    baseA.push_back(add(stageA, i64(mul(atom, idx(atomBytes)))));
  }
  // B: the stage's 2 x atoms, or with wgmma-wide atoms 2 w and 2 w + 1 of
  // its 4 (consumer w).
  const int64_t xAtoms = 2 * tiling.ctaColTiles();
  Value baseB =
      add(baseAddress(smemB), i64(mul(stage, idx(xAtoms * atomBytes))));
  if (tiling.wide())
    baseB = add(baseB, i64(mul(consumer(), idx(2 * atomBytes))));
  auto elemType = NVVM::WGMMATypesAttr::get(ctx, shape.dyElem.isBF16()
                                                     ? NVVM::WGMMATypes::bf16
                                                     : NVVM::WGMMATypes::f16);
  // The descriptors first, then one fence, the stage's k16 wgmmas on one
  // accumulator chain a row atom (the k-th reads the stage's token rows
  // 16k..16k+15: 2048 bytes on, a multiple of the swizzle's 1024-byte
  // period, so the base offset stays 0; with two atoms, k by k, both
  // reading the same B) and one commit group.
  struct Wgmma {
    int64_t atom;
    bool first;
    Value descA, descB;
  };
  SmallVector<Wgmma> wgmmas;
  Value descB0 = descriptor(baseB);
  SmallVector<Value> descA0;
  for (int64_t a = 0; a < atoms; ++a)
    descA0.push_back(descriptor(baseA[a]));
  for (int64_t k = 0; k < tiling.blockTokens / kWgmmaK; ++k) {
    // The k-th: its start address field (16-byte units) k 128 on; it
    // cannot carry out of the field (shared addresses are below 256 KiB).
    auto at = [&](Value desc) {
      return k ? arith::AddIOp::create(b, loc, desc,
                                       i64c(k * (kWgmmaKBytes >> 4)))
               : desc;
    };
    Value descB = at(descB0);
    for (int64_t a = 0; a < atoms; ++a)
      wgmmas.push_back({a, k == 0, at(descA0[a]), descB});
  }
  NVVM::WgmmaFenceAlignedOp::create(b, loc);
  for (const Wgmma &op : wgmmas) {
    bool zero = fresh && op.first;
    Value &d = acc[op.atom];
    d = NVVM::WgmmaMmaAsyncOp::create(
        b, loc, d.getType(), d, op.descA, op.descB,
        NVVM::MMAShapeAttr::get(ctx, 64, 128, kWgmmaK), elemType, elemType,
        NVVM::WGMMATypesAttr::get(ctx, NVVM::WGMMATypes::f32),
        NVVM::WGMMAScaleOutAttr::get(ctx, zero ? NVVM::WGMMAScaleOut::zero
                                               : NVVM::WGMMAScaleOut::one),
        NVVM::WGMMAScaleInAttr::get(ctx, NVVM::WGMMAScaleIn::one),
        NVVM::WGMMAScaleInAttr::get(ctx, NVVM::WGMMAScaleIn::one),
        NVVM::MMALayoutAttr::get(ctx, NVVM::MMALayout::col),
        NVVM::MMALayoutAttr::get(ctx, NVVM::MMALayout::row),
        NVVM::MMAIntOverflowAttr());
  }
  NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
  return acc;
}

Type KernelEmitter::accumulatorType() {
  return LLVM::LLVMStructType::getLiteral(
      b.getContext(), SmallVector<Type>(kAccumulators, b.getF32Type()));
}

Value KernelEmitter::zeroAccumulators() {
  return LLVM::ZeroOp::create(b, loc, accumulatorType());
}

void KernelEmitter::extractAccumulators(TileFragment &frag,
                                        ValueRange results) {
  // Row 2 a + h of the fragment is half h of row atom a.
  frag.acc.assign(results.size() * 2 * 32, Value());
  for (auto [a, result] : llvm::enumerate(results))
    for (int64_t i = 0; i < kAccumulators; ++i) {
      int64_t j = i / 4, h = (i % 4) / 2, e = i % 2;
      frag.acc[(2 * a + h) * 32 + j * 2 + e] =
          LLVM::ExtractValueOp::create(b, loc, result, i);
    }
}

TileFragment KernelEmitter::emitWgmmaMainloop(Value i0, Value j0) {
  const int64_t stages = tiling.stages;
  const int64_t distance = stages - 2; // blocks in flight ahead
  const int64_t numK = llvm::divideCeil(shape.tokens, tiling.blockTokens);
  TileFragment frag = emitWgmmaFragment();

  // The first blocks of a tile: for the CTA's first tile here; for the
  // next ones at the end of the previous mainloop, so that their copies
  // are in flight during its epilogue.
  Value leader = eqIdx(tid, 0);
  auto prologue = [&](Value tileI0, Value tileJ0) {
    for (int64_t s = 0; s < std::min(distance, numK); ++s)
      emitTmaStageLoad(idx(s), idx(s), tileI0, tileJ0);
  };
  ifThen(andI(leader, eqIdx(tileIteration, 0)), [&] { prologue(i0, j0); });
  // The phase parity block kb waits for (see the header).
  auto phaseParity = [&](Value kb) -> Value {
    Value stage = remIdx(kb, stages);
    Value uses = divIdx(
        arith::SubIOp::create(b, loc, idx(numK + stages - 1), stage), stages);
    Value before = add(mul(tileIteration, uses), divIdx(kb, stages));
    return remIdx(before, 2);
  };

  emitStatePrefetch(idx(0), i0, j0);
  SmallVector<Value> result = forLoop(
      idx(0), idx(numK), idx(1), ValueRange{zeroAccumulators()},
      [&](Value kb, ValueRange acc) -> SmallVector<Value> {
        // The wgmma of block kb - 2 is done in both warpgroups: its stage
        // is free for block kb + 2.
        NVVM::WgmmaWaitGroupSyncOp::create(b, loc, distance - 1);
        barrier();
        Value next = add(kb, idx(distance));
        ifThen(andI(leader, lt(next, idx(numK))),
               [&] { emitTmaStageLoad(remIdx(next, stages), next, i0, j0); });
        emitWaitParity(stageBarrier(remIdx(kb, stages)), phaseParity(kb));
        SmallVector<Value> updated = emitWgmmaBlock(acc, remIdx(kb, stages));
        emitStatePrefetch(mul(kb, idx(tiling.blockTokens)), i0, j0);
        return updated;
      });
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
  extractAccumulators(frag, result);
  return frag;
}

TileFragment KernelEmitter::emitWgmmaConsumerMainloop(Value i0, Value j0) {
  const int64_t stages = tiling.stages;
  const int64_t numK = llvm::divideCeil(shape.tokens, tiling.blockTokens);
  TileFragment frag = emitWgmmaFragment();
  if (numK == 0) {
    extractAccumulators(
        frag, SmallVector<Value>(wgmmaRowAtoms(), zeroAccumulators()));
    return frag;
  }
  // Lane 0 of each consumer warp releases a stage.
  Value releaser = eqIdx(remIdx(tid, 32), 0);
  auto release = [&](Value block) {
    ifThen(releaser, [&] {
      NVVM::MBarrierArriveOp::create(b, loc, b.getI64Type(),
                                     emptyBarrier(remIdx(block, stages)),
                                     /*count=*/Value());
    });
  };
  auto wait = [&](Value block) {
    emitWaitParity(stageBarrier(remIdx(block, stages)),
                   remIdx(divIdx(block, stages), 2));
  };
  // Ping-pong: the CTA's tile i waits for its turn, until the other
  // consumer has passed every full wait of tile i - 1 (turn i % 2, phase
  // (i - 1) / 2). A parity wait only tells a phase from the one before:
  // without the turns, a consumer waiting for the first blocks of tile i
  // would pass on stages whose use by tile i - 1 is not complete yet.
  if (tiling.pingPong())
    ifThen(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge,
                                 tileIteration, idx(1)),
           [&] {
             emitWaitParity(turnBarrier(remIdx(tileIteration, 2)),
                            remIdx(divIdx(arith::SubIOp::create(
                                              b, loc, tileIteration, idx(1)),
                                          2),
                                   2));
           });
  // The CTA's first block of this tile: its wgmma ignores the
  // accumulators (scale-d 0), so nothing writes them between the fence and
  // the wgmma (zeroing them there makes ptxas serialize the wgmmas).
  Value first = mul(tileIteration, idx(numK));
  wait(first);
  SmallVector<Value> acc = emitWgmmaBlock(ValueRange{}, remIdx(first, stages));
  emitStatePrefetch(idx(0), i0, j0);
  SmallVector<Value> result =
      forLoop(idx(1), idx(numK), idx(1), acc,
              [&](Value kb, ValueRange acc) -> SmallVector<Value> {
                Value block = add(first, kb);
                wait(block);
                SmallVector<Value> updated =
                    emitWgmmaBlock(acc, remIdx(block, stages));
                emitStatePrefetch(mul(kb, idx(tiling.blockTokens)), i0, j0);
                // The wgmma of block - 1 has read its stage: the producer may
                // refill it.
                NVVM::WgmmaWaitGroupSyncOp::create(b, loc, 1);
                release(arith::SubIOp::create(b, loc, block, idx(1)));
                return updated;
              });
  // Every full wait of the tile is passed: the other consumer's turn (its
  // wgmmas then follow these on the tensor cores).
  if (tiling.pingPong())
    ifThen(releaser, [&] {
      NVVM::MBarrierArriveOp::create(
          b, loc, b.getI64Type(),
          turnBarrier(remIdx(add(tileIteration, idx(1)), 2)),
          /*count=*/Value());
    });
  NVVM::WgmmaWaitGroupSyncOp::create(b, loc, 0);
  release(add(first, idx(numK - 1)));
  extractAccumulators(frag, result);
  return frag;
}

void KernelEmitter::emitProducerPrefetch(Value kb, Value i0, Value j0) {
  if (shape.wgradOnly || tiling.l2PrefetchTokens == 0)
    return;
  // The tile's 2 x 128 rows of W and M (512 bytes each: whole tiles),
  // spread over the blocks from l2-prefetch-tokens before the tile's end,
  // a few after each block's copies, so that the TMA issue never waits
  // long behind them.
  const int64_t numK = llvm::divideCeil(shape.tokens, tiling.blockTokens);
  const int64_t window = std::min<int64_t>(
      numK, llvm::divideCeil(tiling.l2PrefetchTokens, tiling.blockTokens));
  const int64_t start = numK - window;
  // W's rows of the CTA tile, then M's (wgmma-tall: 256 each, but for the
  // last row pair of an odd number of row blocks, which has 128;
  // wgmma-wide: 128 of 256 columns, 128 in the last column pair of an odd
  // number of column tiles).
  const int64_t tensorRows = tiling.blockRows * tiling.ctaRowBlocks();
  const int64_t tensorCols = tiling.blockCols * tiling.ctaColTiles();
  const int64_t rows = 2 * tensorRows;
  const int64_t perBlock = llvm::divideCeil(rows, window);
  const bool rowsPastMatrix = shape.rows % tensorRows != 0;
  Value rowBytes = i32(int32_t(tensorCols * 4));
  if (shape.cols % tensorCols != 0)
    rowBytes = arith::SelectOp::create(
        b, loc, lt(add(j0, idx(tensorCols)), idx(shape.cols + 1)), rowBytes,
        i32(int32_t(tiling.blockCols * 4)));
  assert(shape.rows % tiling.blockRows == 0 &&
         shape.cols % tiling.blockCols == 0 &&
         "consumer workers take whole tiles");
  ifThen(
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, kb, idx(start)),
      [&] {
        Value lo =
            mul(arith::SubIOp::create(b, loc, kb, idx(start)), idx(perBlock));
        Value hi = minIdx(add(lo, idx(perBlock)), idx(rows));
        forLoop(lo, hi, idx(1), [&](Value q) {
          Value isM = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge,
                                            q, idx(tensorRows));
          Value row = add(i0, remIdx(q, tensorRows));
          auto prefetch = [&] {
            Value offset = i64(mul(add(mul(row, idx(shape.cols)), j0), idx(4)));
            Value base = arith::SelectOp::create(b, loc, isM, baseAddress(m),
                                                 baseAddress(w));
            NVVM::CpAsyncBulkPrefetchOp::create(
                b, loc, globalPointer(add(base, offset)), rowBytes,
                /*l2CacheHint=*/Value());
          };
          if (rowsPastMatrix)
            ifThen(lt(row, idx(shape.rows)), prefetch);
          else
            prefetch();
        });
      });
}

void KernelEmitter::emitWgmmaProducer() {
  const int64_t stages = tiling.stages;
  const int64_t numK = llvm::divideCeil(shape.tokens, tiling.blockTokens);
  auto fill = [&](Value block, function_ref<void(Value)> copies) {
    Value stage = remIdx(block, stages);
    // The consumers released this stage's previous use (the first use
    // passes at once).
    emitWaitParity(emptyBarrier(stage),
                   remIdx(add(divIdx(block, stages), idx(1)), 2));
    copies(stage);
  };
  // The CTA's tiles (wgmma-tall: 256 x 128, a row pair's; wgmma-wide:
  // 128 x 256, a column pair's).
  const int64_t perRow = tiling.ctaTilesPerRow();
  const int64_t tileRows = tiling.blockRows * tiling.ctaRowBlocks();
  const int64_t tileCols = tiling.blockCols * tiling.ctaColTiles();
  auto fillTile = [&](Value tile, Value before) {
    Value i0 = mul(divIdx(tile, perRow), idx(tileRows));
    Value j0 = mul(remIdx(tile, perRow), idx(tileCols));
    forLoop(idx(0), idx(numK), idx(1), [&](Value kb) {
      fill(add(before, kb),
           [&](Value stage) { emitTmaStageLoad(stage, kb, i0, j0); });
      if (tiling.consumerWorkers())
        emitProducerPrefetch(kb, i0, j0);
    });
  };
  // The waits of the next `stages` fills after the last: every release
  // has arrived.
  auto drain = [&](Value blocks) {
    for (int64_t s = 0; s < stages; ++s)
      fill(add(blocks, idx(s)), [](Value) {});
  };
  if (!tiling.clusterExchange()) {
    // One thread issues every copy; the rest of the warpgroup is done.
    ifThen(eqIdx(tid, 0), [&] {
      SmallVector<Value> blocks =
          forLoop(blockId, idx(tiling.ctaTiles), gridSize, ValueRange{idx(0)},
                  [&](Value tile, ValueRange before) -> SmallVector<Value> {
                    fillTile(tile, before[0]);
                    return {add(before[0], idx(numK))};
                  });
      drain(blocks[0]);
    });
    return;
  }
  // Cluster exchange (wgmma-ws, wgmma-wide): the cluster barrier counts every
  // thread of the cluster at each tile, so the whole warpgroup runs the tiles,
  // thread 0 filling them, and each thread arrives for a tile once its
  // blocks are issued. An arrival must follow the wait of the one before,
  // so the producer waits for tile i - 1's phase only after issuing tile
  // i, a tile behind the consumers: the ring never waits for the
  // exchange. Then the last tile's wait and the consumers' final phase.
  SmallVector<Value> blocks =
      forLoop(blockId, idx(tiling.ctaTiles), gridSize, ValueRange{idx(0)},
              [&](Value tile, ValueRange before) -> SmallVector<Value> {
                ifThen(eqIdx(tid, 0), [&] { fillTile(tile, before[0]); });
                ifThen(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne,
                                             tile, blockId),
                       [&] { emitClusterWait(); });
                emitClusterArrive();
                return {add(before[0], idx(numK))};
              });
  ifThen(eqIdx(tid, 0), [&] { drain(blocks[0]); });
  ifThen(lt(blockId, idx(tiling.ctaTiles)), [&] { emitClusterWait(); });
  emitClusterBarrier();
}
