//===- KernelEmitter.h - emits the fused-step kernel body ------*- C++ -*-===//
//
// The emitter of the persistent fused-step kernel: the schedule, the
// epilogue and the synchronization (FusedStepKernel.cpp), and the two
// mainloops that compute a tile of g (SimtMainloop.cpp, MmaSyncMainloop.cpp).
// Private to lib/Conversion/FusedStepToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_LIB_CONVERSION_FUSEDSTEPTOGPU_KERNELEMITTER_H
#define NORA_LIB_CONVERSION_FUSEDSTEPTOGPU_KERNELEMITTER_H

#include "FusedStepKernel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Matchers.h"

namespace mlir::nora {

/// The SIMT mainloop's threads: 16 x 16, 4 x 4 elements each.
constexpr int64_t kSimtThreadsX = 16, kSimtThreadsY = 16;
constexpr int64_t kSimtThreadRows = 4, kSimtThreadCols = 4;
/// The mma.sync mainloop's warps: 2 (rows) x 4 (columns), 64 x 32 each.
constexpr int64_t kMmaSyncWarpsM = 2, kMmaSyncWarpsN = 4;
constexpr int64_t kMmaSyncWarpRows = 64, kMmaSyncWarpCols = 32;
/// A tf32 stage row: 128 floats padded to 136 (Tf32Mainloop.cpp).
constexpr int64_t kTf32RowFloats = 136;

/// What one thread holds of a tile of g after the mainloop: every (row, col)
/// of the cross product of its rows and columns (offsets in the tile), and
/// how its partial row statistics meet those of the other threads on the
/// same rows.
struct TileFragment {
  SmallVector<Value> rows, cols;
  /// rows.size() x cols.size() accumulators, row-major.
  SmallVector<Value> acc;
  /// First sum the partials over the 4 lanes of each quad (the lanes of an
  /// mma.sync accumulator row); then only lane 0 of a quad writes them.
  bool quadSum = false;
  /// After that, `contributors` threads (or quads) hold partials of a row;
  /// this one writes slot `contributor` of the row in shared memory.
  int64_t contributors = 0;
  Value contributor;
  /// i1: whether this thread writes its partials (null: every thread).
  Value writer;
  /// cols come in pairs (c, c + 1) of adjacent columns, the first even:
  /// with an even column count, one 8-byte access a pair in the epilogue.
  bool pairedCols = false;
};

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
  Value andI(Value x, Value y) {
    return b.createOrFold<arith::AndIOp>(loc, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return b.createOrFold<arith::SelectOp>(loc, c, x, y);
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
  /// memref[indices] (f32) where `ok`, else 0: the load only runs where
  /// `ok` holds (out-of-range indices are never read).
  Value loadIf(Value ok, Value memref, ValueRange indices) {
    return valueIf(
        ok, b.getF32Type(), [&] { return load(memref, indices); },
        [&] { return f32(0.0); });
  }
  /// `then()` where `ok`, else `otherwise()`, each built in its branch of
  /// an scf.if of result type `type` (or `then()` alone when `ok` is true).
  Value valueIf(Value ok, Type type, function_ref<Value()> then,
                function_ref<Value()> otherwise) {
    if (matchPattern(ok, m_One()))
      return then();
    auto op = scf::IfOp::create(b, loc, TypeRange{type}, ok,
                                /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(op.thenBlock());
    scf::YieldOp::create(b, loc, then());
    b.setInsertionPointToStart(op.elseBlock());
    scf::YieldOp::create(b, loc, otherwise());
    return op.getResult(0);
  }
  void store(Value v, Value memref, ValueRange indices) {
    memref::StoreOp::create(b, loc, v, memref, indices);
  }
  /// Elements (row, col) .. (row, col + n - 1) of an f32 matrix, n = 1 or
  /// 2 (one 8-byte vector.load: col even, the row's start 8-byte aligned;
  /// wgmma-pingpong: two 4-byte loads), or zeros where `ok` is false.
  SmallVector<Value> loadRun(Value ok, Value memref, Value row, Value col,
                             int64_t n);
  /// Elements (row, col) .. (row, col + n - 1) of an f32 matrix, each in
  /// range: one vector.load {alignment = 4 n} (the caller knows the address
  /// is), or a memref.load when n = 1.
  SmallVector<Value> vectorLoad(Value memref, Value row, Value col, int64_t n);
  Value vectorLoadOp(Value memref, Value row, Value col, int64_t n);
  SmallVector<Value> vectorElements(Value v, int64_t n);
  /// How many adjacent columns of `frag` one epilogue access takes (1 or
  /// 2).
  int64_t columnRun(const TileFragment &frag) const;
  /// Stores `values` from (row, col) on where `ok` holds, as loadRun.
  void storeRun(Value ok, ArrayRef<Value> values, Value memref, Value row,
                Value col);
  /// A barrier of the threads that run the epilogue: the CTA
  /// (gpu.barrier), or with warp specialization, once they have forked off
  /// the producer, named barrier 1 of the 256 consumer threads (with
  /// consumer workers: named barrier 1 + w of consumer warpgroup w's 128).
  void barrier() {
    if (!inConsumers)
      return (void)gpu::BarrierOp::create(b, loc);
    Value id = i32(kConsumerBarrierId);
    if (tiling.consumerWorkers())
      id = toI32(add(consumer(), idx(kConsumerBarrierId)));
    NVVM::BarrierOp::create(b, loc, /*res=*/Type(), id,
                            i32(int32_t(tiling.workerThreads())),
                            /*reductionOp=*/NVVM::BarrierReductionAttr(),
                            /*reductionPredicate=*/Value());
  }
  /// The worker's index of stat `s` in the partials (smemRed) and of
  /// coefficient `k` (0: a, 1: factor) in smemCoef.
  /// With consumer workers, worker w's stat s is s + w numStats, its
  /// (a, factor) 2 w and 2 w + 1.
  Value redIndex(int64_t s) {
    return workerSlots() ? add(mul(consumer(), idx(tiling.numStats)), idx(s))
                         : idx(s);
  }
  Value coefIndex(int64_t k) {
    return workerSlots() ? add(mul(consumer(), idx(2)), idx(k)) : idx(k);
  }
  bool workerSlots() const { return inConsumers && tiling.consumerWorkers(); }
  /// Consumer workers: the consumer warpgroup of this thread, 0 or 1. With
  /// paired tiles it is read where it is used (%tid.x / 128 - 1): kept in a
  /// register, with the addresses LLVM derives from it hoisted out of the
  /// tile loop, it made that kernel spill 8-24 bytes; the ping-pong kernel
  /// spilled 76 (guarded) the other way round, and keeps it in consumerIndex.
  Value consumer() {
    if (!tiling.pairedTiles())
      return consumerIndex;
    return arith::SubIOp::create(b, loc,
                                 divIdx(emitSpecialRegister("%tid.x"),
                                        FusedStepTiling::kWarpgroupThreads),
                                 idx(1));
  }
  /// Runs `body` at the start of the then-block of an scf.if on `cond`.
  void ifThen(Value cond, function_ref<void()> body) {
    if (matchPattern(cond, m_One()))
      return body();
    auto op = scf::IfOp::create(b, loc, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(op.thenBlock());
    body();
  }
  /// An scf.if on `cond` with `then` and `otherwise` in its two blocks.
  void ifThenElse(Value cond, function_ref<void()> then,
                  function_ref<void()> otherwise) {
    auto op = scf::IfOp::create(b, loc, cond, /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(op.thenBlock());
    then();
    b.setInsertionPointToStart(op.elseBlock());
    otherwise();
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

  Value i64(Value index) {
    return arith::IndexCastOp::create(b, loc, b.getI64Type(), index);
  }
  Value i32(int32_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32Type(),
                                     b.getI32IntegerAttr(v));
  }
  Value eqIdx(Value x, int64_t v) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, x, idx(v));
  }
  Value divIdx(Value x, int64_t v) {
    return arith::DivUIOp::create(b, loc, x, idx(v));
  }
  Value remIdx(Value x, int64_t v) {
    return arith::RemUIOp::create(b, loc, x, idx(v));
  }

  // --- pieces of the schedule ----------------------------------------------
  /// The mainloops (SimtMainloop.cpp, MmaSyncMainloop.cpp): the thread's
  /// fragment of the tile of g at (i0, j0) = scale-free dy^T x.
  TileFragment emitSimtMainloop(Value i0, Value j0);
  /// The SIMT thread layout with no accumulators yet.
  TileFragment emitSimtFragment();
  /// No mainloop: the tile of the given gradient, in the SIMT layout.
  TileFragment emitGradientLoad(Value i0, Value j0);
  void emitSimtStageLoad(Value src, int64_t srcCols, Value t0, Value c0,
                         Value stage);
  TileFragment emitMmaSyncMainloop(Value i0, Value j0);
  /// The mma.sync thread layout (8 warps of 64 x 32, m16n8 accumulators)
  /// with no accumulators yet; MmaSyncMainloop.cpp.
  TileFragment emitMmaSyncFragment();
  /// Tf32Mainloop.cpp: f32 dy and x on tf32 tensor cores.
  TileFragment emitTf32Mainloop(Value i0, Value j0);
  /// The cp.async ring of both mma.sync mainloops (MmaSyncMainloop.cpp):
  /// token blocks of dy (columns from i0) and x (from j0), `elemBytes` an
  /// element, `stageBytes` a stage, chunk `chunk` of token row k at
  /// stageOffset(k, chunk), prefetched stages - 1 blocks ahead;
  /// `step(kb, stage, acc)` computes block kb from ring stage `stage` and
  /// returns the next accumulators. Returns the last ones, with every copy
  /// landed and every warp out of the ring.
  SmallVector<Value> emitCpAsyncRing(
      Value i0, Value j0, int64_t elemBytes, int64_t stageBytes,
      function_ref<Value(Value, Value)> stageOffset, ValueRange init,
      function_ref<SmallVector<Value>(Value, Value, ValueRange)> step);
  /// The 4 x 4 mma.sync tiles of a warp (m16n8k`k`, f32 accumulators in
  /// the fragment's order) on the operands `a(mt)` and `b(nt)`.
  void emitMmaSyncTiles(SmallVector<Value> &acc, int64_t k, NVVM::MMATypes type,
                        function_ref<SmallVector<Value>(int64_t)> a,
                        function_ref<SmallVector<Value>(int64_t)> b);
  /// WgmmaMainloop.cpp: the mainloop, the shared pointer to the mbarrier of
  /// ring stage `stage`, and their initialization (once a kernel).
  TileFragment emitWgmmaMainloop(Value i0, Value j0);
  Value stageBarrier(Value stage);
  void emitWgmmaBarrierInit();
  /// The pieces both wgmma mainloops share: the accumulator layout, the
  /// TMA copies of token block `kblock` of the tile at (i0, j0) into ring
  /// stage `stage` on its (full) mbarrier, a stage's wgmmas (fence, one
  /// mma_async a 16 tokens, commit; with a null `acc`, the first is D = A B
  /// on no accumulators), the accumulators' type, zeros and extraction.
  TileFragment emitWgmmaFragment();
  void emitTmaStageLoad(Value stage, Value kblock, Value i0, Value j0);
  /// The m64 row atoms of the tile a warpgroup computes, an accumulator
  /// struct each: 1 (two warpgroups a tile), 2 with consumer workers
  /// (ping-pong, paired tiles).
  int64_t wgmmaRowAtoms() const;
  SmallVector<Value> emitWgmmaBlock(ValueRange acc, Value stage);
  Type accumulatorType();
  Value zeroAccumulators();
  void extractAccumulators(TileFragment &frag, ValueRange results);
  /// mbarrier.try_wait.parity on `bar` for phase parity `parity` (index).
  void emitWaitParity(Value bar, Value parity);
  Value toI32(Value index);
  /// Warp specialization (mainloop=wgmma-ws, WgmmaMainloop.cpp): the
  /// consumers' mainloop, the "empty" mbarrier of a stage, and the
  /// producer warpgroup's whole program.
  TileFragment emitWgmmaConsumerMainloop(Value i0, Value j0);
  Value emptyBarrier(Value stage);
  /// Ping-pong: the mbarrier of consumer `consumer`'s turn (0 or 1).
  Value turnBarrier(Value consumer);
  void emitWgmmaProducer();
  /// Consumer workers (ping-pong, paired tiles): the producer's thread
  /// prefetches the W and M rows of the CTA tile at (i0, j0) into L2 after
  /// the copies of its token block kb (the consumers' emitStatePrefetch, in
  /// bulk: cp.async.bulk.prefetch.L2).
  void emitProducerPrefetch(Value kb, Value i0, Value j0);
  /// Emits the persistent tile loop and the streaming phase.
  void emitTiles();
  /// Consumer workers: consumer `consumer` of CTA `cta` of `grid` is
  /// worker cta + consumer grid of 2 grid.
  void setConsumerWorker(Value consumer, Value cta, Value grid);
  /// The workers that hold a row block's column tiles at once, one each, in
  /// the one-phase schedule: workerCount, or with wgmma-tall (whose two
  /// consumers of a CTA take two row blocks of one column tile) gridDim.x
  /// (wgmma-wide's two take two column tiles of one row block: workerCount).
  Value rowBlockWorkers();
  /// Called by each mainloop at the token block that starts at token
  /// `firstToken` of the tile at (i0, j0), and before its loop with token
  /// 0 (a constant): at the block tiling.l2PrefetchTokens before the end
  /// (or the first), the threads prefetch the lines of the tile's W and M
  /// into L2 for the epilogue (fused steps only).
  void emitStatePrefetch(Value firstToken, Value i0, Value j0);
  /// cp.async of token block `kblock` of `src` (columns from c0, 128 of
  /// them, `elemBytes` each) into stage `stage` (`stageBytes` apart): one
  /// 16-byte chunk a thread; chunk `chunk` of token row k goes to byte
  /// stageOffset(k, chunk) of the stage (the mainloop's layout).
  void emitMmaSyncStageLoad(Value src, int64_t srcCols, Value smemBase,
                            Value stage, Value kblock, Value c0,
                            int64_t elemBytes, int64_t stageBytes,
                            function_ref<Value(Value, Value)> stageOffset);
  /// Address (i64) of a memref's aligned data, and pointers from addresses
  /// (MmaSyncMainloop.cpp).
  Value baseAddress(Value memref);
  Value sharedPointer(Value address);
  Value globalPointer(Value address);
  /// The f64 `v` summed over the 4 lanes of a quad (xor 1, then 2): every
  /// lane of the quad gets the same bits.
  Value emitQuadSum(Value v);
  /// A copy of the f32 (or i32) `v` that no compiler can see through (an
  /// inline-asm mov). U is kept across the row block's wait as f32; without
  /// this, CSE merges the W' formula's extf of U with the statistics' one
  /// before the wait, and twice the registers stay live across it.
  Value emitOpaqueCopy(Value v);
  /// The same for an index (through i32).
  Value emitOpaqueIndex(Value index);
  /// The PTX special register `name` (%tid.x, %ctaid.x, %nctaid.x) as an
  /// index, read by inline PTX where it stands (LLVM hoists the
  /// intrinsics).
  Value emitSpecialRegister(StringRef name);

  void emitEpilogue(Value rb, Value ct, const TileFragment &frag);
  /// U of fragment element `e` after the row block's wait: an opaque copy
  /// of us[e], or (consumer workers) its parked value.
  Value parkedU(ArrayRef<Value> us, int64_t e);
  /// The epilogue of a gradient alone: g = scale acc (+ acc_in) stored.
  void emitStoreGradient(Value rb, Value ct, const TileFragment &frag);
  /// Sums the slots of row `row` of row block `rb` over the column tiles, in
  /// order: the row's statistics.
  SmallVector<Value> emitRowStats(Value rb, Value row);
  /// (a, factor) of a row from its statistics: V = U - a W (a = 0 without
  /// projection), D = factor V.
  std::pair<Value, Value> emitRowCoefficients(ValueRange stats);
  /// W' of one element from U, W and its row's (a, factor).
  Value emitUpdatedWeight(Value u, Value w, Value a, Value factor);
  /// Thread 0 arrives on counters[index], waits until it reaches `target`
  /// (i32) and departs; the whole CTA waits for it. The last departure
  /// puts the counter back at 0.
  void emitArriveAndWait(Value index, Value target);
  /// Cluster exchange: the hardware cluster barrier (arrive, release; wait,
  /// acquire) of every thread of the cluster's CTAs.
  void emitClusterBarrier();
  /// Its two halves, for a warpgroup that waits a tile late (the
  /// producer's; uniform in each warp: .aligned).
  void emitClusterArrive();
  void emitClusterWait();
  /// Cluster exchange: the slot buffer (0 or 1) of row block `rb`'s tile.
  Value clusterSlotBuffer(Value rb);
  /// Cluster exchange: this worker's slots in its CTA's (the consumer with
  /// wgmma-wide, else 0).
  Value slotWorker();
  /// Cluster exchange: row `row`'s statistics, its slots in the tile's
  /// buffer of every CTA of the cluster summed in column tile (rank) order.
  SmallVector<Value> emitClusterRowStats(Value rb, Value row);
  /// The streaming phase of two-phase grids: every worker streams whole
  /// rows, W' from the U parked in W', W and the row's coefficients.
  void emitStreamingPhase();
  /// Streaming phase: `lanes` sums of `count` f64 of the workspace
  /// (`stats`), element e at index element(e) (e = 0 .. count - 1), sum l
  /// of elements l, l + lanes, ... in that order. The worker's threads load
  /// a chunk of them into smemRed at once, then thread l adds its own in
  /// order (smemCoef[coefIndex(0)][accAt + l] holds its sum between
  /// chunks). Every thread gets the sums.
  SmallVector<Value> emitStagedSums(int64_t count, int64_t lanes, int64_t accAt,
                                    function_ref<Value(Value)> element);
  Value counterPointer(Value index);
  /// With a guard: whether a row's statistics flag it (its probe is NaN),
  /// and one more flagged row on the workspace's count.
  Value emitRowFlagged(Value rb, Value row);
  void emitCountFlagged();

  OpBuilder &b;
  Location loc;
  const FusedStepShape &shape;
  const RowUpdateChain &chain;
  const FusedStepTiling &tiling;

  // Kernel arguments and per-thread values, set by emit().
  Value dy, x, grad, accIn, w, m, lr, wd, wNew, mNew, counters, stats;
  Value gOut;        // wgradOnly: the gradient
  Value dyMap, xMap; // wgmma: the TMA descriptors
  Value smemA, smemB, smemRed, smemCoef;
  Value smemBarriers; // wgmma: one mbarrier a ring stage
  /// Cluster exchange: the slots ([buffer][stat][row] f64, dynamic shared
  /// memory).
  Value smemSlots;
  /// wgmma: how many tiles this CTA computed before this one (the
  /// mbarrier phases continue across tiles).
  Value tileIteration;
  /// wgmma: the tile index of the loop (for the next tile's prefetch).
  Value currentTile;
  Value tid, blockId, gridSize, decay, negLr;
  /// The worker (FusedStepTiling::workersPerCta) this thread belongs to, of
  /// how many: blockIdx.x of gridDim.x, or with consumer workers blockIdx.x
  /// + w gridDim.x of 2 gridDim.x for consumer warpgroup w.
  Value workerId, workerCount;
  /// Consumer workers: the worker's parked U ([element][thread], f32) from
  /// fragment element parkedFrom on (FusedStepTiling::kParkedElements).
  Value smemParked, parkedThread;
  int64_t parkedFrom = 64;
  /// The dynamic shared memory and the shift to its first 1024-byte
  /// boundary (warp specialization).
  Value dynamicSmem, dynamicShift;
  /// In the consumers' code, once the roles have forked (warp
  /// specialization): barrier() is their named barrier, and with consumer
  /// workers consumer() is w (consumerIndex: its value at the fork).
  bool inConsumers = false;
  Value consumerIndex;
  static constexpr int32_t kConsumerBarrierId = 1;
};

} // namespace mlir::nora

#endif // NORA_LIB_CONVERSION_FUSEDSTEPTOGPU_KERNELEMITTER_H
