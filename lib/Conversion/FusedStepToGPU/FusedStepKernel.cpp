//===- FusedStepKernel.cpp - the persistent fused-step GPU kernel ---------===//
//
// One kernel computes g = scale dy^T x (+ acc) tile by tile and runs the
// optimizer update on each tile while it is in registers. The schedule of a
// CTA (256 threads; the mainloop decides which elements of the tile a thread
// holds, see TileFragment):
//
//   workers = gridDim.x CTAs (ping-pong, wgmma-tall, wgmma-wide: 2
//             gridDim.x consumer warpgroups)
//   onePhase = workers >= colTiles             (uniform over the grid;
//              wgmma-tall: gridDim.x >= colTiles, see emitTiles)
//   for tile = worker; tile < tiles; tile += workers:
//     rb, ct = tile / colTiles, tile % colTiles        (row-block-major;
//       wgmma-tall: the CTA's 256 x 128 tiles, consumer w on rb 2 rb + w;
//       wgmma-wide: its 128 x 256 tiles, consumer w on ct 2 ct + w)
//     mainloop (SimtMainloop.cpp: exact f32 FMAs, 64 x 64 tiles;
//               MmaSyncMainloop.cpp: bf16/f16 tensor cores, 128 x 128)
//     epilogue:
//       g = scale acc (+ acc_in); M' = lerp(M, g, 1-beta), store M'
//       U = nesterov ? lerp(g, M', mu) : M'
//       partial row stats (f64): sum U^2 [, sum U W, sum W^2]
//         -> [quad sum] -> smem [stat][row][contributor] -> fixed-order sum
//         -> slot[rb][ct][stat][row]
//       if onePhase:
//         arrive on counter[rb] (fence.acq_rel.gpu; atom.inc), spin until it
//         reaches colTiles (ld.acquire.gpu), depart (atom.inc: the last
//         departure wraps it to 0), sum the colTiles slots of each row in
//         order, finish D and W' from registers, store W'
//       else: store U into W' (parked)
//   if !onePhase:
//     grid barrier on counter[rowBlocks]; for each row i of this worker
//     (i = worker, + workers, ...): sum its slots in order, W'[i, :] =
//     f(W[i, :], U = W'[i, :])
//
// Both phases sum the same slots in the same order and apply the same
// element formula, so W' and M' are bitwise the same for every grid size.
// The spin-waits need every CTA resident: the launch is cooperative. Every
// counter is back at 0 when the step ends, so no call zero-fills them.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

#include "nora/Conversion/UpdateFormulas.h"

using namespace mlir;
using namespace mlir::nora;

std::string mlir::nora::tensorCoreIneligibility(const FusedStepShape &shape) {
  Type elem = shape.dyElem;
  if (elem != shape.xElem || !(elem.isBF16() || elem.isF16()))
    return "the tensor-core mainloops need bf16 or f16 for both dy and x";
  if (shape.rows % 8 != 0 || shape.cols % 8 != 0)
    return "the tensor-core mainloops need rows and columns that are "
           "multiples of 8 (16-byte cp.async chunks)";
  return "";
}

std::string
mlir::nora::clusterExchangeIneligibility(const FusedStepShape &shape,
                                         const RowUpdateChain &chain,
                                         const FusedStepTiling &tiling) {
  // The cluster barrier counts every thread of every CTA of the cluster,
  // once a tile: the CTA's consumers must all be on one row block at a
  // time (a producer warpgroup arrives for each tile as it fills it).
  if (tiling.pingPong() || tiling.tall())
    return "the cluster exchange takes the mainloops whose CTA works on one "
           "row block at a time (simt, mma-sync, wgmma, wgmma-ws, "
           "wgmma-wide), not mainloop=" +
           std::string(tiling.pingPong() ? "wgmma-pingpong" : "wgmma-tall") +
           "'s";
  // With a guard and partial tiles, ptxas spilled 8 bytes with wgmma at
  // skip_row 264 x 1000; mma-sync, simt and wgmma-ws spill nothing at the
  // shapes swept (bench/RESULTS.md).
  if (chain.guard != NonfiniteGuard::None && tiling.partialTiles(shape) &&
      tiling.mainloop == FusedStepMainloop::Wgmma)
    return "with a nonfinite guard, the cluster exchange needs whole 128 x "
           "128 tiles with mainloop=wgmma (" +
           std::to_string(shape.rows) + " x " + std::to_string(shape.cols) +
           " has partial ones, with which ptxas spilled; mma-sync and "
           "wgmma-ws take them)";
  if (tiling.ctaTilesPerRow() > FusedStepTiling::kMaxClusterCtas)
    return std::to_string(shape.cols) + " columns are " +
           std::to_string(tiling.colTiles) + " column tiles of " +
           std::to_string(tiling.blockCols) +
           (tiling.wide() ? " (" + std::to_string(tiling.ctaTilesPerRow()) +
                                " CTA tiles of 256)"
                          : std::string()) +
           ", and a row block's tiles must be one cluster of at most " +
           std::to_string(FusedStepTiling::kMaxClusterCtas) + " CTAs";
  return "";
}

std::string mlir::nora::tf32Ineligibility(const FusedStepShape &shape) {
  if (!shape.dyElem.isF32() || !shape.xElem.isF32())
    return "the tf32 mainloop needs f32 dy and x";
  if (shape.rows % 4 != 0 || shape.cols % 4 != 0)
    return "the tf32 mainloop needs rows and columns that are multiples of 4 "
           "(16-byte cp.async chunks)";
  return "";
}

FusedStepTiling FusedStepTiling::get(const FusedStepShape &shape,
                                     const RowUpdateChain &chain,
                                     FusedStepMainloop mainloop,
                                     const WgmmaRingOptions &ring,
                                     RowExchange exchange) {
  FusedStepTiling t;
  t.mainloop = mainloop;
  if (mainloop == FusedStepMainloop::MmaSync || t.isWgmma() ||
      mainloop == FusedStepMainloop::MmaSyncTf32) {
    t.blockRows = kTensorCoreTile;
    t.blockCols = kTensorCoreTile;
    t.blockTokens = mainloop == FusedStepMainloop::MmaSyncTf32 ? 8 : 16;
    t.stages = kDefaultRingStages;
    if (t.warpSpecialized()) {
      t.stages =
          ring.stages > 0 ? ring.stages : defaultRingStages(mainloop, exchange);
      // By default a stage is 64 tokens (wgmma-wide with the cluster
      // exchange: 32), or the step's tokens rounded up to a k16 wgmma when
      // they are fewer.
      t.blockTokens =
          ring.stageTokens > 0
              ? ring.stageTokens
              : std::min<int64_t>(
                    defaultStageTokens(mainloop, exchange),
                    llvm::alignTo(std::max<int64_t>(shape.tokens, 1), 16));
      t.dynamicSharedBytes = t.ringBytes() + 1024;
      if (t.consumerWorkers())
        t.dynamicSharedBytes += 2 * kParkedBytes;
    }
  } else {
    t.blockRows = 64;
    t.blockCols = 64;
    t.blockTokens = mainloop == FusedStepMainloop::Simt ? 16 : 0;
    t.stages = mainloop == FusedStepMainloop::Simt ? 1 : 0;
  }
  t.rowBlocks = llvm::divideCeil(shape.rows, t.blockRows);
  t.colTiles = llvm::divideCeil(shape.cols, t.blockCols);
  t.tiles = t.rowBlocks * t.colTiles;
  t.ctaTiles =
      llvm::divideCeil(t.rowBlocks, t.ctaRowBlocks()) * t.ctaTilesPerRow();
  // The threads (or quads) that hold parts of one row of a tile.
  t.contributors = mainloop == FusedStepMainloop::MmaSync ||
                           mainloop == FusedStepMainloop::MmaSyncTf32
                       ? kMmaSyncWarpsN
                   : t.isWgmma() ? 1
                                 : kSimtThreadsX;
  if (shape.wgradOnly) {
    // Only the tensor maps (wgmma) in the workspace.
    t.workspaceBytes = t.hasTensorMaps() ? 2 * kTensorMapBytes : 0;
    return t;
  }
  t.numStats = chain.numStats();
  t.exchange = exchange;
  if (t.clusterExchange()) {
    // The slots in shared memory, no counters: the workspace holds the
    // tensor maps (wgmma) or nothing; with a guard also the counters (of
    // which the flagged rows' count and the finish kernel's departures are
    // used) and the probes.
    assert(!t.pingPong() && !t.tall() &&
           "clusterExchangeIneligibility rules these out");
    t.dynamicSharedBytes += t.clusterSlotBytes();
    if (chain.guard == NonfiniteGuard::None) {
      t.workspaceBytes = t.hasTensorMaps() ? 2 * kTensorMapBytes : 0;
      return t;
    }
  }
  // One a row block, the grid barrier's, and with a guard the flagged rows'
  // count and the finish kernel's departures.
  t.counters = t.rowBlocks + 1 + (chain.guard != NonfiniteGuard::None ? 2 : 0);
  t.statsOffset = llvm::alignTo(t.counters * 4, 256);
  t.statsCount = t.clusterExchange()
                     ? 0
                     : t.rowBlocks * t.colTiles * t.numStats * t.blockRows;
  if (chain.guard != NonfiniteGuard::None) {
    t.probeBase = t.statsCount;
    t.statsCount += t.rowBlocks * t.colTiles * t.blockRows * t.contributors;
  }
  t.workspaceBytes = t.statsOffset + t.statsCount * 8;
  if (t.hasTensorMaps()) {
    t.tensorMapOffset = llvm::alignTo(t.workspaceBytes, kTensorMapBytes);
    t.workspaceBytes = t.tensorMapOffset + 2 * kTensorMapBytes;
  }
  return t;
}

namespace {
using T = FusedStepTiling;
constexpr int32_t kWgmmaMaxRegisters = 255;
constexpr int32_t kMmaSyncMaxRegisters = 255;
/// wgmma-ws: 384 threads at launch (168 x 384 <= 64K registers), then
/// setmaxnreg moves the producer warpgroup to 56 and the consumers to 184.
/// ptxas's spills are not monotonic in these: at the benchmark shapes,
/// 40/232 (CUTLASS's split) spilled 32 bytes, 24/240 28, 56/224 24-56;
/// 40/200 nothing without a guard but 40-64 bytes with skip_row; 56/184
/// nothing at any shape checked, guarded or not (bench/RESULTS.md).
constexpr int32_t kWarpSpecializedStartRegisters = 168;
constexpr int32_t kProducerRegisters = 56, kConsumerRegisters = 184;
/// Consumer workers (wgmma-pingpong, wgmma-tall, wgmma-wide): a consumer
/// warpgroup holds a whole tile's 128 accumulators. ptxas's spills are not
/// monotonic in the split either: with ping-pong at 40/232 (CUTLASS's) it
/// spilled 4-12 bytes at the benchmark shapes, 56/216 and 40/224 4-36, 72/208
/// 24 at one shape; 88/200 nothing at any shape of the resource check, for
/// wgmma-tall too (bench/RESULTS.md).
constexpr int32_t kWholeTileProducerRegisters = 88,
                  kWholeTileConsumerRegisters = 200;
/// wgmma-wide with a nonfinite guard: at 88/200 its consumers spilled 24
/// bytes (at 4096 x 11008, skip_row and skip_step), at 88/208, 80/208 and
/// 56/224 8, at 64/216 16-24; 40/232 nothing, but 80-108 bytes without a
/// guard, where 88/200 spills nothing (bench/RESULTS.md).
constexpr int32_t kWideGuardedProducerRegisters = 40,
                  kWideGuardedConsumerRegisters = 232;
/// The tf32 kernel: 0 spills at the benchmark shapes at any cap from 168
/// (one CTA a SM either way), and with partial tiles (136 x 200) since
/// their loads are predicated instead of clamped (bench/RESULTS.md).
constexpr int32_t kTf32MaxRegisters = 255;
} // namespace

SmallVector<Value> KernelEmitter::emitRowStats(Value rb, Value row) {
  SmallVector<Value> init(tiling.numStats, f64(0.0));
  Value colTiles = idx(tiling.colTiles);
  return forLoop(
      idx(0), colTiles, idx(1), init, [&](Value ct, ValueRange sums) {
        // slot index ((rb * colTiles + ct) * S + s) * 64 + row
        Value base = mul(add(mul(rb, colTiles), ct), idx(tiling.numStats));
        SmallVector<Value> next;
        for (int64_t s = 0; s < tiling.numStats; ++s) {
          Value slot = add(mul(add(base, idx(s)), idx(tiling.blockRows)), row);
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

Value KernelEmitter::emitOpaqueCopy(Value v) {
  return LLVM::InlineAsmOp::create(
             b, loc, v.getType(), ValueRange{v},
             b.getStringAttr("mov.b32 $0, $1;"),
             b.getStringAttr(v.getType().isF32() ? "=f,f" : "=r,r"),
             /*has_side_effects=*/b.getUnitAttr(),
             /*is_align_stack=*/UnitAttr(),
             LLVM::TailCallKindAttr::get(b.getContext(),
                                         LLVM::TailCallKind::None),
             /*asm_dialect=*/LLVM::AsmDialectAttr(),
             /*operand_attrs=*/ArrayAttr())
      .getResult(0);
}

Value KernelEmitter::emitOpaqueIndex(Value index) {
  return arith::IndexCastOp::create(b, loc, b.getIndexType(),
                                    emitOpaqueCopy(arith::IndexCastOp::create(
                                        b, loc, b.getI32Type(), index)));
}

Value KernelEmitter::emitSpecialRegister(StringRef name) {
  Value value =
      LLVM::InlineAsmOp::create(
          b, loc, b.getI32Type(), ValueRange{},
          b.getStringAttr("mov.u32 $0, " + name + ";"), b.getStringAttr("=r"),
          /*has_side_effects=*/b.getUnitAttr(),
          /*is_align_stack=*/UnitAttr(),
          LLVM::TailCallKindAttr::get(b.getContext(), LLVM::TailCallKind::None),
          /*asm_dialect=*/LLVM::AsmDialectAttr(),
          /*operand_attrs=*/ArrayAttr())
          .getResult(0);
  return arith::IndexCastUIOp::create(b, loc, b.getIndexType(), value);
}

/// A generic pointer to counters[index] (memref<N x i32>): the atomics and
/// the spin load run on it as written. Both kernels of a guarded step use it.
static Value counterAddress(OpBuilder &b, Location loc, Value counters,
                            Value index) {
  auto i64 = [&](Value v) -> Value {
    return arith::IndexCastOp::create(b, loc, b.getI64Type(), v);
  };
  Value base =
      i64(memref::ExtractAlignedPointerAsIndexOp::create(b, loc, counters));
  Value offset = i64(arith::MulIOp::create(
      b, loc, index, arith::ConstantIndexOp::create(b, loc, 4)));
  return LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(b.getContext()),
      arith::AddIOp::create(b, loc, base, offset).getResult());
}

Value KernelEmitter::counterPointer(Value index) {
  return counterAddress(b, loc, counters, index);
}

void KernelEmitter::emitArriveAndWait(Value index, Value target) {
  // Release: every thread's slot writes are ordered before thread 0's fence
  // by the barrier; the fence makes them visible at gpu scope before the
  // arrival. NVPTX drops the ordering of atomicrmw, hence the explicit fence.
  //
  // The counter leaves the launch at 0, so no call zero-fills it: each of
  // the `target` arrivals and each of the `target` departures (a waiter that
  // saw every arrival) is one atom.inc wrapping at 2 target - 1, and the
  // last departure takes it from 2 target - 1 back to 0. Nobody spins then:
  // every waiter has departed.
  barrier();
  Value isFirst =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, tid, idx(0));
  ifThen(isFirst, [&] {
    Value ptr = counterPointer(index);
    Type i32 = b.getI32Type();
    Value one = arith::ConstantOp::create(b, loc, i32, b.getI32IntegerAttr(1));
    Value wrap = b.createOrFold<arith::SubIOp>(
        loc, b.createOrFold<arith::ShLIOp>(loc, target, one), one);
    LLVM::FenceOp::create(b, loc, LLVM::AtomicOrdering::release, "device");
    LLVM::AtomicRMWOp::create(b, loc, LLVM::AtomicBinOp::uinc_wrap, ptr, wrap,
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
              nb, l, arith::CmpIPredicate::ult, seen, target);
          scf::ConditionOp::create(nb, l, waiting, ValueRange{});
        },
        [&](OpBuilder &nb, Location l, ValueRange) {
          scf::YieldOp::create(nb, l);
        });
    LLVM::FenceOp::create(b, loc, LLVM::AtomicOrdering::acquire, "device");
    // Depart. Program order after the acquiring load is enough: what the
    // CTA reads next (the slots) is rewritten only by the next launch.
    LLVM::AtomicRMWOp::create(b, loc, LLVM::AtomicBinOp::uinc_wrap, ptr, wrap,
                              LLVM::AtomicOrdering::monotonic, "device");
  });
  barrier();
}

void KernelEmitter::emitClusterBarrier() {
  // Every thread of every CTA of the cluster, uniformly (.aligned): the
  // arrival releases this CTA's slot writes (and its reads of the others'
  // slots of the tile before) at cluster scope, the wait acquires the
  // others'. It orders this CTA's threads too, as a gpu.barrier would.
  emitClusterArrive();
  emitClusterWait();
}

void KernelEmitter::emitClusterArrive() {
  NVVM::ClusterArriveOp::create(b, loc, /*aligned=*/b.getUnitAttr());
}

void KernelEmitter::emitClusterWait() {
  NVVM::ClusterWaitOp::create(b, loc, /*aligned=*/b.getUnitAttr());
}

Value KernelEmitter::clusterSlotBuffer(Value rb) {
  // The grid is clusters of clusterCtas() CTAs, and cluster c's row blocks
  // are c, c + clusters, ...: rb / clusters is how many tiles the CTA ran
  // before this one. Computed where it is used: kept from the tile's start
  // across the mainloop, it made the mma.sync kernel spill 8 bytes.
  Value clusters = divIdx(gridSize, tiling.clusterCtas());
  return remIdx(arith::DivUIOp::create(b, loc, rb, clusters), 2);
}

Value KernelEmitter::slotWorker() {
  return tiling.workersPerCta() > 1 ? consumer() : idx(0);
}

SmallVector<Value> KernelEmitter::emitClusterRowStats(Value rb, Value row) {
  // Column tile ct's slots are in the shared memory of cluster rank ct
  // (wgmma-wide: rank ct / 2, worker ct % 2): each one's address here,
  // mapped to that CTA's (mapa), read with ld.shared::cluster, summed in
  // column tile order as emitRowStats sums the workspace's (the same f64
  // sums: the same W').
  Type sharedPtr = LLVM::LLVMPointerType::get(
      b.getContext(), static_cast<unsigned>(NVVM::NVVMMemorySpace::Shared));
  Type clusterPtr = LLVM::LLVMPointerType::get(
      b.getContext(),
      static_cast<unsigned>(NVVM::NVVMMemorySpace::SharedCluster));
  Value base =
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, smemSlots);
  Value buffer = clusterSlotBuffer(rb);
  SmallVector<Value> init(tiling.numStats, f64(0.0));
  return forLoop(
      idx(0), idx(tiling.colTiles), idx(1), init,
      [&](Value ct, ValueRange sums) {
        const int64_t workers = tiling.workersPerCta();
        Value rank = toI32(workers > 1 ? divIdx(ct, workers) : ct);
        Value worker = workers > 1 ? remIdx(ct, workers) : idx(0);
        SmallVector<Value> next;
        for (int64_t s = 0; s < tiling.numStats; ++s) {
          Value element =
              add(mul(add(mul(add(mul(buffer, idx(workers)), worker),
                              idx(tiling.numStats)),
                          idx(s)),
                      idx(tiling.blockRows)),
                  row);
          Value local = LLVM::IntToPtrOp::create(
              b, loc, sharedPtr, i64(add(base, mul(element, idx(8)))));
          Value remote = NVVM::MapaOp::create(b, loc, clusterPtr, local, rank);
          Value v = LLVM::LoadOp::create(b, loc, b.getF64Type(), remote,
                                         /*alignment=*/8);
          next.push_back(add(sums[s], v));
        }
        return next;
      });
}

Value KernelEmitter::emitRowFlagged(Value rb, Value row) {
  // The probes of the row's contributors in every column tile, in order (a
  // sum of zeros, or NaN).
  Value colTiles = idx(tiling.colTiles);
  Value contributors = idx(tiling.contributors);
  SmallVector<Value> probe = forLoop(
      idx(0), colTiles, idx(1), ValueRange{f64(0.0)},
      [&](Value ct, ValueRange sum) -> SmallVector<Value> {
        Value base =
            add(idx(tiling.probeBase),
                mul(add(mul(add(mul(rb, colTiles), ct), idx(tiling.blockRows)),
                        row),
                    contributors));
        SmallVector<Value> next = {sum[0]};
        for (int64_t t = 0; t < tiling.contributors; ++t)
          next[0] = add(next[0], load(stats, {add(base, idx(t))}));
        return next;
      });
  return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, probe[0],
                               probe[0]);
}

void KernelEmitter::emitCountFlagged() {
  // An integer sum: the same in any order.
  LLVM::AtomicRMWOp::create(b, loc, LLVM::AtomicBinOp::add,
                            counterPointer(idx(tiling.rowBlocks + 1)), i32(1),
                            LLVM::AtomicOrdering::monotonic, "device");
}

void KernelEmitter::emitStoreGradient(Value rb, Value ct,
                                      const TileFragment &frag) {
  int64_t kR = frag.rows.size(), kC = frag.cols.size();
  Value i0 = mul(rb, idx(tiling.blockRows));
  Value j0 = mul(ct, idx(tiling.blockCols));
  bool rowsCovered = shape.rows % tiling.blockRows == 0;
  bool colsCovered = shape.cols % tiling.blockCols == 0;
  int64_t run = columnRun(frag);
  for (int64_t r = 0; r < kR; ++r) {
    Value row = add(i0, frag.rows[r]);
    for (int64_t c0 = 0; c0 < kC; c0 += run) {
      Value col = add(j0, frag.cols[c0]);
      Value ok = arith::ConstantOp::create(b, loc, b.getBoolAttr(true));
      if (!rowsCovered)
        ok = andI(ok, lt(row, idx(shape.rows)));
      if (!colsCovered)
        ok = andI(ok, lt(col, idx(shape.cols)));
      ifThen(ok, [&] {
        SmallVector<Value> accs;
        if (shape.hasAcc)
          accs = loadRun(Value(), accIn, row, col, run);
        SmallVector<Value> gs;
        for (int64_t k = 0; k < run; ++k) {
          Value g = frag.acc[r * kC + c0 + k];
          if (shape.gradScale != 1.0)
            g = mul(f32(shape.gradScale), g);
          if (shape.hasAcc)
            g = add(g, accs[k]);
          gs.push_back(g);
        }
        storeRun(Value(), gs, gOut, row, col);
      });
    }
  }
}

int64_t KernelEmitter::columnRun(const TileFragment &frag) const {
  // An even column count keeps every row's start 8-byte aligned (the
  // runtime takes 16-byte aligned buffers), and a pair in range or out of
  // it together: its first column is even.
  return frag.pairedCols && shape.cols % 2 == 0 ? 2 : 1;
}

SmallVector<Value> KernelEmitter::loadRun(Value ok, Value memref, Value row,
                                          Value col, int64_t n) {
  // Ping-pong's pairs are stores only: with 8-byte loads too its kernel
  // spilled 24-48 bytes at four shapes of the resource check, with 8-byte
  // stores alone nothing (bench/RESULTS.md).
  if (n == 1 || tiling.pingPong()) {
    SmallVector<Value> elements;
    for (int64_t k = 0; k < n; ++k) {
      Value c = k == 0 ? col : add(col, idx(k));
      elements.push_back(ok ? loadIf(ok, memref, {row, c})
                            : load(memref, {row, c}));
    }
    return elements;
  }
  if (!ok)
    return vectorLoad(memref, row, col, n);
  auto type = VectorType::get({n}, b.getF32Type());
  Value v = valueIf(
      ok, type, [&] { return vectorLoadOp(memref, row, col, n); },
      [&]() -> Value {
        return arith::ConstantOp::create(
            b, loc, type, DenseElementsAttr::get(type, b.getF32FloatAttr(0.0)));
      });
  return vectorElements(v, n);
}

Value KernelEmitter::vectorLoadOp(Value memref, Value row, Value col,
                                  int64_t n) {
  return vector::LoadOp::create(b, loc, VectorType::get({n}, b.getF32Type()),
                                memref, ValueRange{row, col},
                                /*nontemporal=*/false, llvm::Align(4 * n))
      .getResult();
}

SmallVector<Value> KernelEmitter::vectorElements(Value v, int64_t n) {
  SmallVector<Value> elements;
  for (int64_t k = 0; k < n; ++k)
    elements.push_back(
        vector::ExtractOp::create(b, loc, v, ArrayRef<int64_t>{k}));
  return elements;
}

SmallVector<Value> KernelEmitter::vectorLoad(Value memref, Value row, Value col,
                                             int64_t n) {
  if (n == 1)
    return {load(memref, {row, col})};
  return vectorElements(vectorLoadOp(memref, row, col, n), n);
}

void KernelEmitter::storeRun(Value ok, ArrayRef<Value> values, Value memref,
                             Value row, Value col) {
  auto body = [&] {
    if (values.size() == 1)
      return store(values[0], memref, {row, col});
    auto type =
        VectorType::get({static_cast<int64_t>(values.size())}, b.getF32Type());
    Value v = vector::FromElementsOp::create(b, loc, type, values);
    vector::StoreOp::create(b, loc, v, memref, ValueRange{row, col},
                            /*nontemporal=*/false,
                            llvm::Align(4 * values.size()));
  };
  if (ok)
    ifThen(ok, body);
  else
    body();
}

Value KernelEmitter::parkedU(ArrayRef<Value> us, int64_t e) {
  if (smemParked && e >= parkedFrom)
    return load(smemParked, {idx(e - parkedFrom), parkedThread});
  return emitOpaqueCopy(us[e]);
}

void KernelEmitter::emitEpilogue(Value rb, Value ct, const TileFragment &frag) {
  // The tiling sized the partials' buffers for the mainloop's fragment.
  assert(frag.contributors == tiling.contributors &&
         "the fragment's contributors are not the tiling's");
  int64_t kR = frag.rows.size(), kC = frag.cols.size();
  Value i0 = mul(rb, idx(tiling.blockRows));
  Value j0 = mul(ct, idx(tiling.blockCols));
  // Where the tiles cover the matrix exactly, every element is in range:
  // no predicates. Elsewhere the loads of out-of-range elements are
  // predicated off (rather than clamped to the last row or column, which
  // gave each element an address of its own and spilled), so a row's
  // column offsets stay immediates of one address either way.
  Value inRange = arith::ConstantOp::create(b, loc, b.getBoolAttr(true));
  auto bound = [&](ArrayRef<Value> offsets, Value origin, int64_t size,
                   int64_t block, SmallVector<Value> &index,
                   SmallVector<Value> &ok) {
    for (Value offset : offsets) {
      index.push_back(add(origin, offset));
      ok.push_back(size % block == 0 ? inRange : lt(index.back(), idx(size)));
    }
  };
  SmallVector<Value> rows, rowOk, cols, colOk;
  bound(frag.rows, i0, shape.rows, tiling.blockRows, rows, rowOk);
  bound(frag.cols, j0, shape.cols, tiling.blockCols, cols, colOk);

  // g, momentum, U; M' is stored right away. U stays in registers.
  double emaWeight = 1.0 - chain.beta;
  SmallVector<Value> us(kR * kC);
  // The parked words' addresses from an opaque copy of the thread index,
  // here and again after the wait: LLVM would otherwise compute them once
  // for the kernel, and keep them in 16 registers across the mainloop.
  if (smemParked)
    parkedThread = emitOpaqueIndex(tid);
  // Consumer workers sum a thread's probe in f32 (an f64 sum, one register
  // pair more, made ping-pong's kernel spill; the plain wgmma kernel
  // spilled with an f32 one): 0 or NaN either way.
  bool f32Probe = tiling.consumerWorkers();
  // Adjacent columns go as one 8-byte access (columnRun).
  int64_t run = columnRun(frag);
  for (int64_t r = 0; r < kR; ++r) {
    SmallVector<Value> sums(tiling.numStats, f64(0.0));
    Value probe = f32Probe ? f32(0.0) : f64(0.0);
    for (int64_t c0 = 0; c0 < kC; c0 += run) {
      Value ok = andI(rowOk[r], colOk[c0]);
      SmallVector<Value> accs;
      if (shape.hasAcc)
        accs = loadRun(ok, accIn, rows[r], cols[c0], run);
      SmallVector<Value> wvs = loadRun(ok, w, rows[r], cols[c0], run);
      SmallVector<Value> mvs = loadRun(ok, m, rows[r], cols[c0], run);
      SmallVector<Value> mns;
      for (int64_t c = c0; c < c0 + run; ++c) {
        int64_t e = r * kC + c;
        Value g = frag.acc[e];
        if (shape.gradScale != 1.0)
          g = mul(f32(shape.gradScale), g);
        if (shape.hasAcc)
          g = add(g, accs[c - c0]);
        Value wv = wvs[c - c0];
        Value mn = createTorchLerp(b, loc, mvs[c - c0], g, emaWeight);
        Value u = chain.nesterov
                      ? createTorchLerp(b, loc, g, mn, *chain.nesterov)
                      : mn;
        mns.push_back(mn);
        // Consumer workers: the second row atom's U waits in shared memory
        // (the thread's own words).
        if (smemParked && e >= parkedFrom)
          store(u, smemParked, {idx(e - parkedFrom), parkedThread});
        // Out-of-range elements contribute nothing to the statistics.
        Value u64 = toF64(select(ok, u, f32(0.0)));
        Value w64 = toF64(select(ok, wv, f32(0.0)));
        sums[0] = add(sums[0], mul(u64, u64));
        if (chain.projectEps) {
          sums[1] = add(sums[1], mul(u64, w64));
          sums[2] = add(sums[2], mul(w64, w64));
        }
        // The probe: g * 0 is 0 for a finite g and NaN for NaN or Inf.
        if (chain.guard != NonfiniteGuard::None) {
          Value gOk = select(ok, g, f32(0.0));
          probe = f32Probe ? add(probe, mul(gOk, f32(0.0)))
                           : add(probe, mul(toF64(gOk), f64(0.0)));
        }
        us[e] = u;
      }
      storeRun(ok, mns, mNew, rows[r], cols[c0]);
    }
    // The row's partial statistics go to shared memory at once (so that
    // only one row's f64 sums are live); the contributors of a row are
    // summed below in a fixed order, and one thread a row writes the tile's
    // slot.
    bool guarded = chain.guard != NonfiniteGuard::None;
    // The slots, and the quad's sum, are f64.
    if (f32Probe)
      probe = toF64(probe);
    if (frag.quadSum) {
      for (Value &sum : sums)
        sum = emitQuadSum(sum);
      if (guarded)
        probe = emitQuadSum(probe);
    }
    auto write = [&] {
      for (int64_t s = 0; s < tiling.numStats; ++s)
        store(sums[s], smemRed, {redIndex(s), frag.rows[r], frag.contributor});
      // The probe goes to its global slot [rb][ct][row][contributor].
      if (guarded) {
        Value tile = add(mul(rb, idx(tiling.colTiles)), ct);
        Value slot =
            add(idx(tiling.probeBase),
                add(mul(add(mul(tile, idx(tiling.blockRows)), frag.rows[r]),
                        idx(tiling.contributors)),
                    frag.contributor));
        store(probe, stats, {slot});
      }
    };
    if (frag.writer)
      ifThen(frag.writer, write);
    else
      write();
  }
  barrier();
  Value isRowThread = lt(tid, idx(tiling.blockRows));
  ifThen(isRowThread, [&] {
    Value colTiles = idx(tiling.colTiles);
    Value base = mul(add(mul(rb, colTiles), ct), idx(tiling.numStats));
    Value buffer = tiling.clusterExchange() ? clusterSlotBuffer(rb) : Value();
    for (int64_t s = 0; s < tiling.numStats; ++s) {
      Value sum = f64(0.0);
      for (int64_t t = 0; t < frag.contributors; ++t)
        sum = add(sum, load(smemRed, {redIndex(s), tid, idx(t)}));
      if (buffer) {
        store(sum, smemSlots, {buffer, slotWorker(), idx(s), tid});
        continue;
      }
      Value slot = add(mul(add(base, idx(s)), idx(tiling.blockRows)), tid);
      store(sum, stats, {slot});
    }
  });

  // One phase: wait for the row block's other column tiles, then finish W'
  // from registers.
  auto onePhase = [&] {
    if (tiling.clusterExchange()) {
      emitClusterBarrier();
    } else {
      Value target = arith::ConstantOp::create(
          b, loc, b.getI32Type(), b.getI32IntegerAttr(tiling.colTiles));
      emitArriveAndWait(rb, target);
    }
    ifThen(isRowThread, [&] {
      std::pair<Value, Value> coef = emitRowCoefficients(
          tiling.clusterExchange() ? emitClusterRowStats(rb, tid)
                                   : emitRowStats(rb, tid));
      store(coef.first, smemCoef, {coefIndex(0), tid});
      store(coef.second, smemCoef, {coefIndex(1), tid});
      if (chain.guard != NonfiniteGuard::None) {
        // The CTA of column tile 0 counts the row block's flagged rows; with
        // skip_row, the row's flag for this CTA's elements goes where the
        // row's partials were (smemRed[0][row][0], read before the wait).
        Value flagged = emitRowFlagged(rb, tid);
        ifThen(andI(flagged, eqIdx(ct, 0)), [&] { emitCountFlagged(); });
        if (chain.guard == NonfiniteGuard::SkipRow)
          store(select(flagged, f64(1.0), f64(0.0)), smemRed,
                {redIndex(0), tid, idx(0)});
      }
    });
    barrier();
    if (smemParked)
      parkedThread = emitOpaqueIndex(tid);
    for (int64_t r = 0; r < kR; ++r) {
      Value a = load(smemCoef, {coefIndex(0), frag.rows[r]});
      Value factor = load(smemCoef, {coefIndex(1), frag.rows[r]});
      // skip_row: a flagged row keeps W and M.
      Value keep;
      if (chain.guard == NonfiniteGuard::SkipRow)
        keep = arith::CmpFOp::create(
            b, loc, arith::CmpFPredicate::ONE,
            load(smemRed, {redIndex(0), frag.rows[r], idx(0)}), f64(0.0));
      for (int64_t c0 = 0; c0 < kC; c0 += run) {
        Value ok = andI(rowOk[r], colOk[c0]);
        // W is read again (from L1/L2: this CTA read the tile before the
        // wait) instead of living in 16 registers across it, which keeps
        // the kernel within 128 registers without spills on sm_80.
        SmallVector<Value> wvs = loadRun(ok, w, rows[r], cols[c0], run);
        SmallVector<Value> wns;
        for (int64_t c = c0; c < c0 + run; ++c) {
          Value wv = wvs[c - c0];
          Value wn = emitUpdatedWeight(parkedU(us, r * kC + c), wv, a, factor);
          wns.push_back(keep ? select(keep, wv, wn) : wn);
        }
        storeRun(ok, wns, wNew, rows[r], cols[c0]);
      }
      // M' was stored before the wait; a kept row puts M back (one branch
      // a row: rare, and off the common path).
      if (keep)
        ifThen(keep, [&] {
          for (int64_t c0 = 0; c0 < kC; c0 += run)
            ifThen(andI(rowOk[r], colOk[c0]), [&] {
              storeRun(Value(), loadRun(Value(), m, rows[r], cols[c0], run),
                       mNew, rows[r], cols[c0]);
            });
        });
    }
    // The next tile writes smemCoef only after its row block's wait (a
    // barrier); it writes smemRed before any barrier when its mainloop has
    // none (T = 0, or wgmma-ws), so the skip_row flags read above need one.
    if (chain.guard == NonfiniteGuard::SkipRow)
      barrier();
  };
  // A cluster holds every column tile of the row block.
  if (tiling.clusterExchange())
    return onePhase();
  // One phase when every column tile of a row block has a worker of its own
  // (uniform over the grid): then all of a row block's tiles are in flight
  // together, and none waits on a tile that waits for it.
  Value onePhaseGrid =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge,
                            rowBlockWorkers(), idx(tiling.colTiles));
  ifThenElse(onePhaseGrid, onePhase, [&] {
    // Two phases: park U in W' for the streaming pass.
    if (smemParked)
      parkedThread = emitOpaqueIndex(tid);
    for (int64_t r = 0; r < kR; ++r)
      for (int64_t c0 = 0; c0 < kC; c0 += run) {
        SmallVector<Value> parked;
        for (int64_t c = c0; c < c0 + run; ++c)
          parked.push_back(parkedU(us, r * kC + c));
        storeRun(andI(rowOk[r], colOk[c0]), parked, wNew, rows[r], cols[c0]);
      }
    // The row threads have read smemRed before the next tile writes it
    // (its mainloop has no barrier when T = 0).
    barrier();
  });
}

SmallVector<Value>
KernelEmitter::emitStagedSums(int64_t count, int64_t lanes, int64_t accAt,
                              function_ref<Value(Value)> element) {
  // The worker's partials buffer (smemRed), seen flat: element k of a
  // chunk at [k / perStat][k / contributors % blockRows][k % contributors]
  // (from redIndex(0): the worker's own part).
  const int64_t perStat = tiling.blockRows * tiling.contributors;
  const int64_t chunk = tiling.numStats * perStat;
  assert(chunk % lanes == 0 && "a chunk holds whole rounds of the lanes");
  assert(accAt + lanes <= tiling.blockRows && "the sums fit a coefficient row");
  auto staged = [&](Value k) -> SmallVector<Value> {
    return {add(redIndex(0), divIdx(k, perStat)),
            remIdx(divIdx(k, tiling.contributors), tiling.blockRows),
            remIdx(k, tiling.contributors)};
  };
  // Lane l's running sum, in smemCoef[coefIndex(0)][accAt + l]: written and
  // read by thread l alone until the last barrier below.
  Value lane = add(tid, idx(accAt));
  Value threads = idx(tiling.workerThreads());
  forLoop(idx(0), idx(count), idx(chunk), [&](Value c0) {
    Value n = minIdx(idx(chunk), arith::SubIOp::create(b, loc, idx(count), c0));
    // Every thread loads its share of the chunk (independent loads, all in
    // flight at once)...
    forLoop(tid, n, threads, [&](Value k) {
      store(load(stats, {element(add(c0, k))}), smemRed, staged(k));
    });
    barrier();
    // ... and lane l adds its elements of it in order to its sum.
    ifThen(lt(tid, idx(lanes)), [&] {
      Value first =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, c0, idx(0));
      Value sum = valueIf(
          first, b.getF64Type(), [&] { return f64(0.0); },
          [&] {
            return load(smemCoef, {coefIndex(0), lane});
          });
      SmallVector<Value> next =
          forLoop(tid, n, idx(lanes), ValueRange{sum},
                  [&](Value k, ValueRange carried) -> SmallVector<Value> {
                    return {add(carried[0], load(smemRed, staged(k)))};
                  });
      store(next[0], smemCoef, {coefIndex(0), lane});
    });
    // The next chunk overwrites the staged elements; the sums are read
    // after the last one.
    barrier();
  });
  SmallVector<Value> sums;
  for (int64_t l = 0; l < lanes; ++l)
    sums.push_back(load(smemCoef, {coefIndex(0), idx(accAt + l)}));
  return sums;
}

void KernelEmitter::emitStreamingPhase() {
  // Every worker arrives once it has parked its tiles' U.
  Value target =
      arith::IndexCastOp::create(b, loc, b.getI32Type(), workerCount);
  emitArriveAndWait(idx(tiling.rowBlocks), target);
  // A row's columns in runs of 4 (16-byte accesses: every row starts
  // 16-byte aligned when the column count is a multiple of 4), 2 or 1.
  const int64_t run = shape.cols % 4 == 0 ? 4 : shape.cols % 2 == 0 ? 2 : 1;
  const int64_t stats = tiling.numStats;
  const bool guarded = chain.guard != NonfiniteGuard::None;
  forLoop(workerId, idx(shape.rows), workerCount, [&](Value i) {
    Value rb = arith::DivUIOp::create(b, loc, i, idx(tiling.blockRows));
    Value row = arith::RemUIOp::create(b, loc, i, idx(tiling.blockRows));
    // The row's slots, summed in column tile order as emitRowStats sums
    // them (the same bits as one phase), but loaded by all the worker's
    // threads at once: one thread a row's thousands of dependent loads
    // left the SM idle for the L2's latency at each (bench/RESULTS.md).
    // Slot ((rb colTiles + ct) S + s) blockRows + row is element ct S + s.
    Value rowSlots = mul(rb, idx(tiling.colTiles * stats));
    SmallVector<Value> rowStats =
        emitStagedSums(tiling.colTiles * stats, stats, 0, [&](Value e) {
          return add(mul(add(rowSlots, e), idx(tiling.blockRows)), row);
        });
    std::pair<Value, Value> coef = emitRowCoefficients(rowStats);
    Value keep;
    if (guarded) {
      // The row's probes, [rb][ct][row][contributor]: element
      // ct contributors + t (a sum of zeros, or NaN).
      const int64_t contributors = tiling.contributors;
      Value probe = emitStagedSums(
          tiling.colTiles * contributors, 1, stats, [&](Value e) {
            Value ct = divIdx(e, contributors);
            Value tile = add(mul(rb, idx(tiling.colTiles)), ct);
            return add(idx(tiling.probeBase),
                       add(mul(add(mul(tile, idx(tiling.blockRows)), row),
                               idx(contributors)),
                           remIdx(e, contributors)));
          })[0];
      Value flagged = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO,
                                            probe, probe);
      // Each row is streamed by one worker: its thread 0 counts it.
      ifThen(andI(flagged, eqIdx(tid, 0)), [&] { emitCountFlagged(); });
      if (chain.guard == NonfiniteGuard::SkipRow)
        keep = flagged;
    }
    // The next row's first chunk overwrites the sums only after a barrier
    // that every thread reaches once it has read them above.
    Value threads = idx(tiling.workerThreads() * run);
    forLoop(mul(tid, idx(run)), idx(shape.cols), threads, [&](Value j) {
      SmallVector<Value> us = vectorLoad(wNew, i, j, run);
      SmallVector<Value> wvs = vectorLoad(w, i, j, run);
      SmallVector<Value> wns;
      for (int64_t k = 0; k < run; ++k) {
        Value wn = emitUpdatedWeight(us[k], wvs[k], coef.first, coef.second);
        // skip_row: a flagged row keeps W, and M (M' was stored).
        wns.push_back(keep ? select(keep, wvs[k], wn) : wn);
      }
      if (keep)
        ifThen(keep, [&] {
          storeRun(Value(), vectorLoad(m, i, j, run), mNew, i, j);
        });
      storeRun(Value(), wns, wNew, i, j);
    });
  });
}

void KernelEmitter::emit(gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  unsigned arg = 0;
  if (shape.gradGiven) {
    grad = entry.getArgument(arg++);
  } else {
    dy = entry.getArgument(arg++);
    x = entry.getArgument(arg++);
  }
  if (shape.hasAcc)
    accIn = entry.getArgument(arg++);
  if (shape.wgradOnly) {
    gOut = entry.getArgument(arg++);
  } else {
    w = entry.getArgument(arg++);
    m = entry.getArgument(arg++);
    lr = entry.getArgument(arg++);
    wd = entry.getArgument(arg++);
    wNew = entry.getArgument(arg++);
    mNew = entry.getArgument(arg++);
    if (tiling.hasCounters()) {
      counters = entry.getArgument(arg++);
      stats = entry.getArgument(arg++);
    }
  }
  if (tiling.hasTensorMaps()) {
    dyMap = entry.getArgument(arg++);
    xMap = entry.getArgument(arg++);
  }
  auto smem = func.getWorkgroupAttributions();
  unsigned next = 0;
  auto workgroup =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  // The dynamic shared memory: the warp-specialized ring (and parked U),
  // the cluster exchange's slots, or both.
  Value dynamic;
  if (tiling.dynamicSharedBytes)
    dynamic = gpu::DynamicSharedMemoryOp::create(
        b, loc,
        MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                        MemRefLayoutAttrInterface(), workgroup));
  // The cluster's slots, [buffer][worker][stat][row], at its start (16-byte
  // aligned: f64 needs 8), or after the ring (and wgmma-wide's parked U).
  auto slotsAt = [&](Value offset) {
    smemSlots = memref::ViewOp::create(
        b, loc,
        MemRefType::get(
            {2, tiling.workersPerCta(), tiling.numStats, tiling.blockRows},
            b.getF64Type(), MemRefLayoutAttrInterface(), workgroup),
        dynamic, offset, ValueRange{});
  };
  if (tiling.clusterExchange() && !tiling.warpSpecialized())
    slotsAt(idx(0));
  if (tiling.warpSpecialized()) {
    // The ring from the first 1024-byte boundary (the 128-byte swizzle is
    // a function of the address).
    Value base =
        memref::ExtractAlignedPointerAsIndexOp::create(b, loc, dynamic);
    Value shift = remIdx(
        arith::SubIOp::create(b, loc, idx(1024), remIdx(base, 1024)), 1024);
    auto stageType = [&](int64_t columns) {
      return MemRefType::get({tiling.stages, tiling.blockTokens, columns},
                             shape.dyElem, MemRefLayoutAttrInterface(),
                             workgroup);
    };
    smemA = memref::ViewOp::create(
        b, loc, stageType(tiling.blockRows * tiling.ctaRowBlocks()), dynamic,
        shift, ValueRange{});
    smemB = memref::ViewOp::create(
        b, loc, stageType(tiling.blockCols * tiling.ctaColTiles()), dynamic,
        add(shift, idx(tiling.ringDyBytes())), ValueRange{});
    dynamicSmem = dynamic;
    dynamicShift = shift;
    if (tiling.clusterExchange())
      slotsAt(add(shift, idx(tiling.clusterSlotOffset())));
  } else if (tiling.mainloop != FusedStepMainloop::LoadGradient) {
    smemA = smem[next++];
    smemB = smem[next++];
  }
  if (!shape.wgradOnly) {
    smemRed = smem[next++];
    smemCoef = smem[next++];
  }
  if (tiling.isWgmma())
    smemBarriers = smem[next++];

  tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  // The grid and the step's scalars. With warp specialization each role
  // reads them after its setmaxnreg: a value live across it (gridDim.x)
  // went to local memory.
  auto schedule = [&](bool scalars) {
    if (tiling.warpSpecialized()) {
      // Inline PTX: LLVM hoists the intrinsics' reads above the fork.
      blockId = emitSpecialRegister("%ctaid.x");
      gridSize = emitSpecialRegister("%nctaid.x");
    } else {
      blockId = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
      gridSize = gpu::GridDimOp::create(b, loc, gpu::Dimension::x);
    }
    workerId = blockId;
    workerCount = gridSize;
    if (!shape.wgradOnly && scalars) {
      decay = createDecayFactor(b, loc, lr, wd);
      negLr = arith::NegFOp::create(b, loc, lr);
    }
  };

  if (tiling.isWgmma())
    emitWgmmaBarrierInit();
  if (!tiling.warpSpecialized()) {
    schedule(/*scalars=*/true);
    emitTiles();
    gpu::ReturnOp::create(b, loc);
    return;
  }
  // Warp specialization: the producer warpgroup gives its registers to the
  // consumers (setmaxnreg: 128 x 56 + 256 x 184 <= 64K) and fills the
  // ring; the consumers, threads 128-383 seen as 0-255, run the tiles.
  // With consumer workers (ping-pong, paired tiles) each consumer warpgroup
  // is a worker of its own: threads 0-127 of consumer w, worker
  // blockIdx.x + w gridDim.x of 2 gridDim.x, on named barrier 1 + w.
  bool consumerWorkers = tiling.consumerWorkers();
  // The registers of the producer's threads and of the consumers' (a
  // split ptxas spills nothing with at the shapes checked).
  std::pair<int32_t, int32_t> split = {kProducerRegisters, kConsumerRegisters};
  if (tiling.wide() && chain.guard != NonfiniteGuard::None)
    split = {kWideGuardedProducerRegisters, kWideGuardedConsumerRegisters};
  else if (consumerWorkers)
    split = {kWholeTileProducerRegisters, kWholeTileConsumerRegisters};
  Value rawTid = tid;
  auto roles = scf::IfOp::create(
      b, loc, lt(rawTid, idx(FusedStepTiling::kProducerThreads)),
      /*withElseRegion=*/true);
  // The consumers' warpgroups run apart (gpusim then simulates each as a
  // thread group of its own; docs/gpusim.md).
  if (consumerWorkers)
    roles->setAttr("nora.independent_warpgroups", b.getUnitAttr());
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(roles.thenBlock());
    NVVM::SetMaxRegisterOp::create(b, loc, split.first,
                                   NVVM::SetMaxRegisterAction::decrease);
    schedule(/*scalars=*/false);
    emitWgmmaProducer();
  }
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(roles.elseBlock());
    NVVM::SetMaxRegisterOp::create(b, loc, split.second,
                                   NVVM::SetMaxRegisterAction::increase);
    schedule(/*scalars=*/true);
    tid = arith::SubIOp::create(b, loc, rawTid,
                                idx(FusedStepTiling::kProducerThreads));
    inConsumers = true;
    if (consumerWorkers) {
      Value consumer = divIdx(tid, T::kWarpgroupThreads);
      consumerIndex = consumer;
      tid = remIdx(tid, T::kWarpgroupThreads);
      setConsumerWorker(consumer, blockId, gridSize);
      if (!shape.wgradOnly) {
        auto workgroup = gpu::AddressSpaceAttr::get(
            b.getContext(), gpu::AddressSpace::Workgroup);
        Value at = add(add(dynamicShift, idx(tiling.parkedOffset())),
                       mul(consumer, idx(T::kParkedBytes)));
        smemParked = memref::ViewOp::create(
            b, loc,
            MemRefType::get({T::kParkedElements, T::kWarpgroupThreads},
                            b.getF32Type(), MemRefLayoutAttrInterface(),
                            workgroup),
            dynamicSmem, at, ValueRange{});
      }
    }
    emitTiles();
  }
  gpu::ReturnOp::create(b, loc);
}

void KernelEmitter::setConsumerWorker(Value consumer, Value cta, Value grid) {
  workerId = add(cta, mul(consumer, grid));
  workerCount = mul(grid, idx(2));
}

Value KernelEmitter::rowBlockWorkers() {
  return tiling.tall() ? gridSize : workerCount;
}

void KernelEmitter::emitTiles() {
  // A worker's tiles: workerId, + workerCount, ... (the CTA's, or with
  // ping-pong every other one of the CTA's); with paired tiles the CTA's
  // tiles, blockIdx.x, + gridDim.x, ..., whose row block (wgmma-tall: 256
  // x 128) or column tile (wgmma-wide: 128 x 256) w is consumer w's.
  bool paired = tiling.pairedTiles();
  Value first = paired ? blockId : workerId;
  Value step = paired ? gridSize : workerCount;
  const int64_t perRow = tiling.ctaTilesPerRow();
  forLoop(first, idx(tiling.ctaTiles), step, [&](Value tile) {
    if (tiling.isWgmma()) {
      // The CTA's tiles before this one, of either worker: the ring's
      // blocks run on in the CTA's tile order.
      currentTile = tile;
      tileIteration = arith::DivUIOp::create(
          b, loc, arith::SubIOp::create(b, loc, tile, blockId), gridSize);
    }
    Value rb = arith::DivUIOp::create(b, loc, tile, idx(perRow));
    Value ct = arith::RemUIOp::create(b, loc, tile, idx(perRow));
    if (tiling.tall())
      rb = add(mul(rb, idx(2)), consumer());
    if (tiling.wide())
      ct = add(mul(ct, idx(2)), consumer());
    Value i0 = mul(rb, idx(tiling.blockRows));
    Value j0 = mul(ct, idx(tiling.blockCols));
    TileFragment frag;
    switch (tiling.mainloop) {
    case FusedStepMainloop::MmaSync:
      frag = emitMmaSyncMainloop(i0, j0);
      break;
    case FusedStepMainloop::Wgmma:
      frag = emitWgmmaMainloop(i0, j0);
      break;
    case FusedStepMainloop::WgmmaWarpSpecialized:
    case FusedStepMainloop::WgmmaPingPong:
    case FusedStepMainloop::WgmmaTall:
    case FusedStepMainloop::WgmmaWide:
      frag = emitWgmmaConsumerMainloop(i0, j0);
      break;
    case FusedStepMainloop::MmaSyncTf32:
      frag = emitTf32Mainloop(i0, j0);
      break;
    case FusedStepMainloop::Simt:
      frag = emitSimtMainloop(i0, j0);
      break;
    case FusedStepMainloop::LoadGradient:
      frag = emitGradientLoad(i0, j0);
      break;
    }
    auto epilogue = [&] {
      if (shape.wgradOnly)
        emitStoreGradient(rb, ct, frag);
      else
        emitEpilogue(rb, ct, frag);
    };
    // wgmma-tall with an odd number of row blocks, wgmma-wide with an
    // odd number of column tiles: the last pair's second consumer has
    // read zeros (TMA fills past the matrix) and has no tile.
    Value inside;
    if (tiling.tall() && tiling.rowBlocks % 2 != 0)
      inside = lt(rb, idx(tiling.rowBlocks));
    else if (tiling.wide() && tiling.colTiles % 2 != 0)
      inside = lt(ct, idx(tiling.colTiles));
    if (!inside)
      epilogue();
    else if (tiling.clusterExchange() && !shape.wgradOnly)
      // Its CTA's threads still meet the cluster at each tile.
      ifThenElse(inside, epilogue, [&] { emitClusterBarrier(); });
    else
      ifThen(inside, epilogue);
  });
  // Cluster exchange: the other CTAs of the cluster may still read this
  // one's slots of its last tile; it leaves once they all have.
  if (!shape.wgradOnly && tiling.clusterExchange())
    return emitClusterBarrier();
  if (!shape.wgradOnly) {
    // Consumer workers: the worker again, from the special registers (kept
    // across the tile loop, it spilled).
    if (tiling.consumerWorkers()) {
      gridSize = emitSpecialRegister("%nctaid.x");
      setConsumerWorker(consumer(), emitSpecialRegister("%ctaid.x"), gridSize);
    }
    Value twoPhases =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                              rowBlockWorkers(), idx(tiling.colTiles));
    ifThen(twoPhases, [&] { emitStreamingPhase(); });
  }
}

void KernelEmitter::emitStatePrefetch(Value firstToken, Value i0, Value j0) {
  // The gradient alone has no W and M; a given gradient has no mainloop
  // for the loads to hide behind.
  if (shape.wgradOnly || shape.gradGiven || tiling.l2PrefetchTokens == 0)
    return;
  // Consumer workers: the producer prefetches (emitProducerPrefetch); the
  // consumers' registers hold a whole tile.
  if (tiling.consumerWorkers())
    return;
  // The epilogue reads the tile's W and M (2 x 64 KiB at 128 x 128) once.
  // Fetched into L2 this far ahead they arrive while the tensor cores
  // still work on the tile (about 9 us at 2048 tokens of a 128 x 128 tile
  // on an H100 SM), and are not yet evicted by the operands that stream
  // through L2 meanwhile (x of a 4096-column step is 64 MiB). Not tuned on
  // a GPU yet (l2-prefetch-tokens sets it).
  const int64_t leadTokens = tiling.l2PrefetchTokens;
  constexpr int64_t kLineBytes = 128;
  const int64_t blockTokens = tiling.blockTokens;
  const int64_t blocks = llvm::divideCeil(shape.tokens, blockTokens);
  const int64_t at =
      std::max<int64_t>(0, blocks - llvm::divideCeil(leadTokens, blockTokens)) *
      blockTokens;
  const int64_t linesPerRow =
      llvm::divideCeil(tiling.blockCols * 4, kLineBytes);
  const int64_t tensorLines = tiling.blockRows * linesPerRow;
  const int64_t threads = tiling.workerThreads();
  assert((2 * tensorLines) % threads == 0 &&
         "each thread prefetches the same number of lines");
  // At token 0 the mainloops call this before their loop, with a
  // constant: a branch on the loop's first iteration would have LLVM peel
  // it, and the peeled wgmma's accumulators then make ptxas serialize it.
  std::optional<int64_t> constant = getConstantIntValue(firstToken);
  if (constant ? *constant != at : at == 0)
    return;
  auto prefetch = [&] {
    Value wBase = baseAddress(w), mBase = baseAddress(m);
    // In a loop, the lines' addresses from an opaque copy of the thread
    // index: LLVM would otherwise hoist them out of the loop, and 8 more
    // registers live across the mainloop spill in the wgmma kernel.
    Value thread = constant ? tid : emitOpaqueIndex(tid);
    for (int64_t i = 0; i < 2 * tensorLines / threads; ++i) {
      Value q = add(thread, idx(i * threads));
      Value isM = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, q,
                                        idx(tensorLines));
      Value inTensor = remIdx(q, tensorLines);
      // Rows and columns past the matrix prefetch its last line instead.
      Value row =
          minIdx(add(i0, divIdx(inTensor, linesPerRow)), idx(shape.rows - 1));
      Value col = minIdx(
          add(j0, mul(remIdx(inTensor, linesPerRow), idx(kLineBytes / 4))),
          idx(shape.cols - 1));
      Value offset = i64(mul(add(mul(row, idx(shape.cols)), col), idx(4)));
      Value base = arith::SelectOp::create(b, loc, isM, mBase, wBase);
      // Inline PTX: LLVM 22's NVPTX selects llvm.nvvm.prefetch.global.L2
      // (nvvm.prefetch) only from sm_90, though PTX has it on every chip.
      LLVM::InlineAsmOp::create(
          b, loc, /*res=*/Type(), ValueRange{globalPointer(add(base, offset))},
          b.getStringAttr("prefetch.global.L2 [$0];"), b.getStringAttr("l"),
          /*has_side_effects=*/b.getUnitAttr(),
          /*is_align_stack=*/UnitAttr(),
          LLVM::TailCallKindAttr::get(b.getContext(), LLVM::TailCallKind::None),
          /*asm_dialect=*/LLVM::AsmDialectAttr(),
          /*operand_attrs=*/ArrayAttr());
    }
  };
  if (constant)
    prefetch();
  else
    ifThen(eqIdx(firstToken, at), prefetch);
}

gpu::GPUFuncOp mlir::nora::buildFusedStepKernel(OpBuilder &builder,
                                                Location loc, StringRef name,
                                                const FusedStepShape &shape,
                                                const RowUpdateChain &chain,
                                                const FusedStepTiling &tiling) {
  MLIRContext *ctx = builder.getContext();
  Type f32 = builder.getF32Type(), f64 = builder.getF64Type();
  auto matrix = MemRefType::get({shape.rows, shape.cols}, f32);
  SmallVector<Type> args;
  if (shape.gradGiven)
    args.push_back(matrix);
  else
    args = {MemRefType::get({shape.tokens, shape.rows}, shape.dyElem),
            MemRefType::get({shape.tokens, shape.cols}, shape.xElem)};
  if (shape.hasAcc)
    args.push_back(matrix);
  if (shape.wgradOnly)
    args.push_back(matrix);
  else
    args.append({matrix, matrix, f32, f32, matrix, matrix});
  if (tiling.hasCounters())
    args.append({MemRefType::get({tiling.counters}, builder.getI32Type()),
                 MemRefType::get({tiling.statsCount}, f64)});
  if (tiling.hasTensorMaps()) {
    auto map = MemRefType::get({T::kTensorMapBytes}, builder.getI8Type());
    args.append({map, map});
  }
  auto workgroup =
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  auto shared = [&](ArrayRef<int64_t> dims, Type elem) -> Type {
    return MemRefType::get(dims, elem, MemRefLayoutAttrInterface(), workgroup);
  };
  // The operand stages of the mainloop (wgmma-ws: in dynamic shared
  // memory, emit()), the row partials of the epilogue
  // ([stat][row][contributor]) and the rows' (a, factor).
  SmallVector<Type> smem;
  if ((tiling.mainloop == FusedStepMainloop::MmaSync || tiling.isWgmma()) &&
      !tiling.warpSpecialized()) {
    // One 16-token x 128 stage of dy (and of x): 4096 bytes (mma-sync,
    // wgmma).
    Type elem = shape.dyElem;
    smem = {
        shared({tiling.stages, tiling.blockTokens, tiling.blockRows}, elem),
        shared({tiling.stages, tiling.blockTokens, tiling.blockCols}, elem)};
  } else if (tiling.mainloop == FusedStepMainloop::MmaSyncTf32) {
    // 8-token stages of f32 rows padded to 136 floats (544 bytes): the
    // scalar fragment loads of a warp hit 32 different banks.
    smem = {shared({tiling.stages, tiling.blockTokens, kTf32RowFloats}, f32),
            shared({tiling.stages, tiling.blockTokens, kTf32RowFloats}, f32)};
  } else if (tiling.mainloop == FusedStepMainloop::Simt) {
    smem = {shared({tiling.blockTokens, tiling.blockRows}, f32),
            shared({tiling.blockTokens, tiling.blockCols}, f32)};
  }
  // A gradient alone has no row statistics: the operand stages only. The
  // partials: 4 warps a row with mma.sync, one quad (a whole row of a
  // wgmma accumulator) with wgmma, 16 threads with simt. With consumer
  // workers each has its own: worker w's stat s is s + w numStats, its
  // (a, factor) 2 w and 2 w + 1.
  int64_t workers = tiling.workersPerCta();
  if (!shape.wgradOnly)
    smem.append({shared({workers * tiling.numStats, tiling.blockRows,
                         tiling.contributors},
                        f64),
                 shared({2 * workers, tiling.blockRows}, f64)});
  // One mbarrier a stage: the TMA copies of the stage complete on it; with
  // warp specialization, a second one a stage: the consumers release it.
  // With ping-pong two more: the consumers' turns (WgmmaMainloop.cpp).
  if (tiling.isWgmma())
    smem.push_back(shared({(tiling.warpSpecialized() ? 2 : 1) * tiling.stages +
                           (tiling.pingPong() ? 2 : 0)},
                          builder.getI64Type()));
  auto func = gpu::GPUFuncOp::create(builder, loc, name,
                                     builder.getFunctionType(args, {}), smem);
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                builder.getUnitAttr());
  func.setKnownBlockSizeAttr(builder.getDenseI32ArrayAttr(
      {static_cast<int32_t>(tiling.blockThreads()), 1, 1}));
  // 256 threads a CTA: ptxas may use up to 255 registers a thread. The
  // persistent grid is sized from the occupancy this gives, so one CTA a SM
  // is correct, two are faster (scripts/check-gpu-resources.py records it).
  // The mma.sync kernel holds 64 accumulators a thread; left to itself,
  // ptxas aims at two CTAs a SM (128 registers) and spills a few bytes at
  // some shapes. Any cap above 128 is one CTA a SM (8 warps behind a
  // 4-stage ring), and 255, all a thread may have, spills nothing at any
  // shape checked (2026-12-02, bench/RESULTS.md); 168, the cap before,
  // spilled 8-16 bytes at 8192 x 4096 x 2048, with partial tiles (136 x 200:
  // 8, 4104 x 4104: 20) and with the cluster exchange.
  bool partialTiles = tiling.partialTiles(shape);
  bool cluster = tiling.clusterExchange();
  if (tiling.mainloop == FusedStepMainloop::MmaSync)
    func->setAttr("nvvm.maxnreg",
                  builder.getI32IntegerAttr(kMmaSyncMaxRegisters));
  // The SIMT kernel takes at most 128 registers (two CTAs a SM), except
  // with partial tiles, where ptxas spilled 16 bytes at 128 (136 x 200 and
  // 4104 x 4104); at 168 it takes 140-167 and spills nothing (one CTA a
  // SM, as the clamped loads before took 176-181). Left to itself ptxas
  // took 128 at the benchmark shapes, but 80 with 40 bytes of spills for
  // RMNP at 4096 x 11008 once the streaming phase staged the row sums, and
  // 80 with 48 bytes with the cluster exchange (256 x 128, RMNP).
  if (tiling.mainloop == FusedStepMainloop::Simt)
    func->setAttr("nvvm.maxnreg", builder.getI32IntegerAttr(
                                      partialTiles || cluster ? 168 : 128));
  if (tiling.mainloop == FusedStepMainloop::MmaSyncTf32)
    func->setAttr("nvvm.maxnreg", builder.getI32IntegerAttr(kTf32MaxRegisters));
  // The wgmma accumulators stay in place across the ring (64 registers a
  // thread that no other instruction may touch): at 168, 200 and 232
  // registers ptxas spilled 16, 8 and (at N = 11008) 48 bytes; 255 (all a
  // thread may have; one 256-thread CTA a SM either way) spills nothing.
  if (tiling.mainloop == FusedStepMainloop::Wgmma)
    func->setAttr("nvvm.maxnreg",
                  builder.getI32IntegerAttr(kWgmmaMaxRegisters));
  // With warp specialization, 384 threads start at 168 registers (the
  // most that fits 64K); setmaxnreg then moves them to the consumers.
  if (tiling.warpSpecialized())
    func->setAttr("nvvm.maxnreg",
                  builder.getI32IntegerAttr(kWarpSpecializedStartRegisters));
  func->setAttr("nvvm.maxntid",
                builder.getDenseI32ArrayAttr(
                    {static_cast<int32_t>(tiling.blockThreads()), 1, 1}));
  // cp.async and ldmatrix need 16-byte aligned shared memory; 128 keeps the
  // swizzled rows of a stage on bank-group boundaries.
  // wgmma's 128-byte swizzle repeats every 1024 bytes from an aligned base.
  int64_t align = tiling.isWgmma() ? 1024 : 128;
  for (unsigned i = 0; i < smem.size(); ++i)
    func.setWorkgroupAttributionAttr(i, LLVM::LLVMDialect::getAlignAttrName(),
                                     builder.getI64IntegerAttr(align));
  OpBuilder body(ctx);
  KernelEmitter(body, loc, shape, chain, tiling).emit(func);
  return func;
}

NonfiniteGuard mlir::nora::parseNonfiniteGuard(std::optional<StringRef> mode) {
  if (!mode)
    return NonfiniteGuard::None;
  return *mode == "skip_step" ? NonfiniteGuard::SkipStep
                              : NonfiniteGuard::SkipRow;
}

gpu::GPUFuncOp mlir::nora::buildNonfiniteFinishKernel(
    OpBuilder &builder, Location loc, StringRef name,
    const FusedStepShape &shape, const RowUpdateChain &chain,
    const FusedStepTiling &tiling) {
  auto matrix = MemRefType::get({shape.rows, shape.cols}, builder.getF32Type());
  SmallVector<Type> args = {
      MemRefType::get({tiling.counters}, builder.getI32Type()),
      matrix,
      matrix,
      matrix,
      matrix,
      MemRefType::get({}, builder.getI64Type())};
  auto func = gpu::GPUFuncOp::create(builder, loc, name,
                                     builder.getFunctionType(args, {}));
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                builder.getUnitAttr());
  func.setKnownBlockSizeAttr(
      builder.getDenseI32ArrayAttr({static_cast<int32_t>(T::kThreads), 1, 1}));
  func->setAttr("nvvm.maxntid", builder.getDenseI32ArrayAttr(
                                    {static_cast<int32_t>(T::kThreads), 1, 1}));
  Block &entry = func.getBody().front();
  OpBuilder b = OpBuilder::atBlockBegin(&entry);
  Value counters = entry.getArgument(0), w = entry.getArgument(1),
        m = entry.getArgument(2), wNew = entry.getArgument(3),
        mNew = entry.getArgument(4), skipped = entry.getArgument(5);
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  Value tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  Value blockId = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value gridSize = gpu::GridDimOp::create(b, loc, gpu::Dimension::x);
  // The step's kernel is done (stream order): a plain load sees its count.
  Value count = memref::LoadOp::create(b, loc, counters,
                                       ValueRange{index(tiling.rowBlocks + 1)});
  Value zero = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(0));
  Value any =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, count, zero);
  // The count leaves this launch at 0 (no call zero-fills it). Every CTA
  // departs once its threads have read it (the barrier; thread 0's release
  // fence); the last of gridDim.x departures wraps its counter to 0 and
  // then (acquire) clears the count.
  gpu::BarrierOp::create(b, loc);
  Value isThread0 =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, tid, index(0));
  auto depart = scf::IfOp::create(b, loc, isThread0, /*withElseRegion=*/false);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(depart.thenBlock());
    Type i32 = b.getI32Type();
    Value last = arith::SubIOp::create(
        b, loc, arith::IndexCastUIOp::create(b, loc, i32, gridSize),
        arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(1)));
    LLVM::FenceOp::create(b, loc, LLVM::AtomicOrdering::release, "device");
    Value before = LLVM::AtomicRMWOp::create(
        b, loc, LLVM::AtomicBinOp::uinc_wrap,
        counterAddress(b, loc, counters, index(tiling.rowBlocks + 2)), last,
        LLVM::AtomicOrdering::monotonic, "device");
    Value isLast =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, before, last);
    auto clear = scf::IfOp::create(b, loc, isLast, /*withElseRegion=*/false);
    b.setInsertionPointToStart(clear.thenBlock());
    LLVM::FenceOp::create(b, loc, LLVM::AtomicOrdering::acquire, "device");
    memref::StoreOp::create(b, loc, zero, counters,
                            ValueRange{index(tiling.rowBlocks + 1)});
  }
  Value result =
      chain.guard == NonfiniteGuard::SkipRow
          ? arith::ExtSIOp::create(b, loc, b.getI64Type(), count).getResult()
          : arith::ExtUIOp::create(b, loc, b.getI64Type(), any).getResult();
  Value first = arith::AndIOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, tid, index(0)),
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, blockId,
                            index(0)));
  auto writeCount = scf::IfOp::create(b, loc, first, /*withElseRegion=*/false);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(writeCount.thenBlock());
    memref::StoreOp::create(b, loc, result, skipped, ValueRange{});
  }
  if (chain.guard == NonfiniteGuard::SkipStep) {
    // A skipped step: W' = W and M' = M, bit for bit.
    auto copy = scf::IfOp::create(b, loc, any, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(copy.thenBlock());
    auto rowsLoop =
        scf::ForOp::create(b, loc, blockId, index(shape.rows), gridSize);
    b.setInsertionPointToStart(rowsLoop.getBody());
    Value i = rowsLoop.getInductionVar();
    auto colsLoop =
        scf::ForOp::create(b, loc, tid, index(shape.cols), index(T::kThreads));
    b.setInsertionPointToStart(colsLoop.getBody());
    Value j = colsLoop.getInductionVar();
    memref::StoreOp::create(b, loc,
                            memref::LoadOp::create(b, loc, w, ValueRange{i, j}),
                            wNew, ValueRange{i, j});
    memref::StoreOp::create(b, loc,
                            memref::LoadOp::create(b, loc, m, ValueRange{i, j}),
                            mNew, ValueRange{i, j});
  }
  gpu::ReturnOp::create(b, loc);
  return func;
}
