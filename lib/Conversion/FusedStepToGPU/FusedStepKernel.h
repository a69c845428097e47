//===- FusedStepKernel.h - the persistent fused-step GPU kernel -*- C++ -*-===//
//
// What the GPU lowering of nora.fused_wgrad_step needs to know about a step
// (the row-update chain of its epilogue, its shapes, the tiling) and the
// builder of its kernel. Private to lib/Conversion/FusedStepToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_LIB_CONVERSION_FUSEDSTEPTOGPU_FUSEDSTEPKERNEL_H
#define NORA_LIB_CONVERSION_FUSEDSTEPTOGPU_FUSEDSTEPKERNEL_H

#include "nora/Conversion/Passes.h"
#include "nora/Dialect/Nora/IR/NoraOps.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Support/LLVM.h"

#include <optional>
#include <string>

namespace mlir::nora {

/// The epilogue chains the GPU kernel computes: Nora (momentum,
/// orth_project, row_normalize, apply_update) and RMNP (the same without
/// orth_project).
/// The guard against a non-finite gradient (nora.skip_nonfinite's modes).
enum class NonfiniteGuard { None, SkipRow, SkipStep };

struct RowUpdateChain {
  double beta = 0.0;
  std::optional<double> nesterov;   // absent: u = m_new
  std::optional<double> projectEps; // present: orth_project (Nora)
  double normalizeEps = 0.0;
  double normalizeScale = 1.0;

  NonfiniteGuard guard = NonfiniteGuard::None;

  /// f64 row statistics a column tile contributes: sum u^2, and for Nora also
  /// sum u w and sum w^2. (A guard's probe has slots of its own.)
  int64_t numStats() const { return projectEps ? 3 : 1; }
};

/// The guard a `nonfinite` mode names ("skip_row", "skip_step").
NonfiniteGuard parseNonfiniteGuard(std::optional<StringRef> mode);

/// Recognizes the chain in `op`'s epilogue; otherwise emits an error on the
/// op that names the first operation the GPU kernel cannot compute.
FailureOr<RowUpdateChain> matchRowUpdateChain(FusedWgradStepOp op);

/// The same chain outside a fused step, on a gradient given as a tensor:
/// nora.momentum, [nora.orth_project], nora.row_normalize, nora.apply_update,
/// each intermediate used only by the next op, one weight throughout.
struct FreeRowUpdateChain {
  RowUpdateChain chain;
  MomentumOp momentum;
  OrthProjectOp project; // null for RMNP
  RowNormalizeOp normalize;
  ApplyUpdateOp update;
  /// The guard of the chain's g, W, M and results, if one follows it.
  SkipNonfiniteOp skip;
};

/// The chain that starts at `momentum`, or nothing (no diagnostic: ops that
/// do not form a chain are left for other lowerings).
std::optional<FreeRowUpdateChain> matchFreeRowUpdateChain(MomentumOp momentum);

/// Shapes and element types of one step: g (M x N) = scale dy^T x (+ acc),
/// dy: T x M, x: T x N.
struct FusedStepShape {
  int64_t rows = 0, cols = 0, tokens = 0;
  /// The gradient is an input (M x N f32) instead of dy^T x: no dy, no x.
  bool gradGiven = false;
  Type dyElem, xElem;
  bool hasAcc = false;
  double gradScale = 1.0;
  /// No optimizer: a nora.wgrad alone, whose kernel stores g (M x N f32)
  /// and nothing else (no chain, counters or statistics).
  bool wgradOnly = false;
};

/// How a CTA computes its tile of g.
enum class FusedStepMainloop {
  /// Exact f32 FMAs (bf16/f16 inputs extended): 256 threads (16 x 16)
  /// compute a 64 x 64 tile, 4 x 4 elements a thread, 16 tokens a
  /// shared-memory stage.
  Simt,
  /// Tensor cores (bf16 or f16 inputs, f32 accumulation): mma.sync
  /// m16n8k16 fed by ldmatrix from a 4-stage cp.async ring of 16 tokens a
  /// stage. 8 warps (2 x 4) compute a 128 x 128 tile, 64 x 32 a warp.
  MmaSync,
  /// sm_90a tensor cores, opt-in: wgmma.mma_async m64n128k16 (bf16/f16 ->
  /// f32) reading both operands from shared memory through descriptors
  /// (MN-major, 128-byte swizzle), fed by a 4-stage ring that TMA fills
  /// (cp.async.bulk.tensor, one mbarrier a stage). 2 warpgroups of 64 x 128
  /// on a 128 x 128 tile.
  Wgmma,
  /// The same wgmma tiles with warp specialization, opt-in
  /// (mainloop=wgmma-ws, sm_90a), on 64-token stages (4 k16 wgmmas a
  /// stage; WgmmaRingOptions): a third, producer warpgroup (56 registers
  /// after setmaxnreg) issues the TMA copies into the ring, waiting on one
  /// "empty" mbarrier a stage that the consumer warps arrive on once their
  /// wgmma has read it; the two consumer warpgroups (184 registers) wait on
  /// the "full" mbarriers, compute and run the epilogue. The ring runs
  /// continuously across the CTA's tiles, so the producer fills it with the
  /// next tile's blocks during the epilogue. 384 threads.
  WgmmaWarpSpecialized,
  /// The same producer and ring with ping-pong consumers, opt-in
  /// (mainloop=wgmma-pingpong, sm_90a): each consumer warpgroup computes a
  /// whole 128 x 128 tile (two m64n128k16 a k16, 128 accumulators a thread,
  /// 200 registers after setmaxnreg; the producer keeps 88) and runs its
  /// epilogue alone on a named barrier of its own. The two take the CTA's
  /// tiles in turn (warpgroup w: the CTA's tiles 2 i + w), and the ring
  /// serves them in that order, so one's epilogue (and its row block's
  /// wait) runs while the other's wgmmas use the tensor cores: a CTA holds
  /// two tiles in flight, and the grid's workers are 2 gridDim.x
  /// warpgroups.
  WgmmaPingPong,
  /// wgmma-ws's producer with 256 x 128 CTA tiles, opt-in
  /// (mainloop=wgmma-tall, sm_90a): a stage holds 256 rows of dy and 128
  /// columns of x, and consumer warpgroup w computes rows 128 w..128 w +
  /// 127 of it (ping-pong's consumer: two m64n128k16 a k16 on one B, 128
  /// accumulators, the U of its second row atom parked) as a worker of its
  /// own, on row block 2 p + w of the CTA tile's row pair p. Both consumers
  /// read every stage, so x is read once for two row blocks: a wave of
  /// CTAs spans half as many row blocks' worth of x as with 128 x 128
  /// tiles (the one-phase schedule has every column tile of a row block in
  /// the same wave).
  WgmmaTall,
  /// wgmma-tall turned on its side, opt-in (mainloop=wgmma-wide, sm_90a):
  /// 128 x 256 CTA tiles, a stage of 128 rows of dy and 256 columns of x,
  /// and consumer warpgroup w computes columns 128 w..128 w + 127 of it
  /// (two m64n128k16 a k16, on the stage's dy and its own half of x) as a
  /// worker of its own, on column tile 2 q + w of the CTA tile's column
  /// pair q. dy is read once for two column tiles, and a row block is
  /// half as many CTAs: a cluster of 16 spans 4096 columns
  /// (row-exchange=cluster).
  WgmmaWide,
  /// f32 inputs on tensor cores, opt-in (allow-tf32): mma.sync m16n8k8
  /// tf32 (inputs rounded to nearest tf32, f32 accumulation), the same 8
  /// warps and 128 x 128 tile as MmaSync, a 4-stage cp.async ring of 8
  /// tokens a stage (rows padded to 136 floats), operands read with scalar
  /// shared loads.
  MmaSyncTf32,
  /// No matmul: the tile of a given gradient g is loaded (64 x 64 tiles, the
  /// SIMT layout): the optimizer step alone.
  LoadGradient,
};

/// How the CTAs of a row block meet to sum its rows' statistics.
enum class RowExchange {
  /// Through global memory: f64 slots in the workspace and an arrival
  /// counter a row block that the CTAs spin on (a cooperative launch; the
  /// two-phase fallback when a row block has more column tiles than the
  /// grid has workers).
  Workspace,
  /// Through distributed shared memory, opt-in (row-exchange=cluster,
  /// sm_90a): the row block's column tiles are one thread-block cluster
  /// (at most kMaxClusterCtas), each CTA's slots stay in its own shared
  /// memory (two buffers, for alternate tiles), and after the hardware
  /// cluster barrier (barrier.cluster.arrive/wait: release, acquire) the
  /// CTAs read each other's through mapa and ld.shared::cluster, in column
  /// tile order: no counters, no statistics workspace, no co-residency
  /// beyond the cluster.
  Cluster,
};

/// The tiling of the kernel and the layout of its workspace.
struct FusedStepTiling {
  /// The threads that compute a tile and run its epilogue (with
  /// WgmmaWarpSpecialized: the consumer warpgroups).
  static constexpr int64_t kThreads = 256;
  /// With warp specialization: the producer warpgroup, threads 0-127 of
  /// the CTA (the consumers are threads 128-383).
  static constexpr int64_t kProducerThreads = 128;

  FusedStepMainloop mainloop = FusedStepMainloop::Simt;
  int64_t blockRows = 0, blockCols = 0, blockTokens = 0, stages = 1;
  int64_t rowBlocks = 0, colTiles = 0, tiles = 0, numStats = 0;
  /// The CTA tiles: `tiles`, or with wgmma-tall the (row pair, column tile)
  /// tiles, ceil(rowBlocks / 2) x colTiles (the launch's grid at most).
  int64_t ctaTiles = 0;
  /// Workspace: one i32 arrival counter per row block plus one for the
  /// grid-wide barrier (and with a guard one more: the rows flagged), then
  /// the f64 slots [rowBlock][colTile][stat][row],
  /// then (wgmma) the TMA descriptors of dy and x, 128 bytes each, that the
  /// runtime writes (tensorMapOffset: 0 when there are none).
  int64_t counters = 0, statsOffset = 0, statsCount = 0, workspaceBytes = 0;
  /// With a guard, after the statistics in the same f64 buffer: the probe
  /// sums g * 0 (0 for finite values, NaN otherwise) of each contributor
  /// (the threads or quads that hold parts of a row: `contributors` of
  /// them), [rowBlock][colTile][row][contributor], from index probeBase.
  /// They go straight to global memory: the shared-memory partials are at
  /// the 48 KiB limit (the tf32 kernel has 49,152 bytes).
  int64_t contributors = 0, probeBase = 0;
  int64_t tensorMapOffset = 0;
  static constexpr int64_t kTensorMapBytes = 128;
  /// RowExchange::Cluster: the cluster is the CTAs of a row block's column
  /// tiles, column tile t at cluster rank t (wgmma-wide: its CTA tiles,
  /// column tile t at rank t / 2, consumer t % 2); the grid is clusters of
  /// them, so the row-block-major schedule gives every CTA of a cluster the
  /// same row blocks. Its slots, [buffer][worker][stat][row] f64, take the
  /// start of the dynamic shared memory (the static shared memory of the
  /// mma.sync kernel is at its 48 KiB limit; wgmma-ws, wgmma-wide: after
  /// the ring and any parked U).
  RowExchange exchange = RowExchange::Workspace;
  static constexpr int64_t kMaxClusterCtas = 16;
  bool clusterExchange() const { return exchange == RowExchange::Cluster; }
  /// The workspace's counters and statistics (with a cluster exchange,
  /// only a guard's: the flagged rows' count and the probes).
  bool hasCounters() const { return counters > 0; }
  /// Whether `shape`'s matrix leaves a row block or column tile partial.
  bool partialTiles(const FusedStepShape &shape) const {
    return shape.rows % blockRows != 0 || shape.cols % blockCols != 0;
  }
  int64_t clusterCtas() const {
    return clusterExchange() ? ctaTilesPerRow() : 1;
  }
  int64_t clusterSlotBytes() const {
    return 2 * workersPerCta() * numStats * blockRows * 8;
  }
  /// wgmma-wide's slots with the most statistics (3), which the ring
  /// leaves room for: 2 buffers of 2 workers' 3 x 128 f64.
  static constexpr int64_t kWideClusterSlotBytes = 2 * 2 * 3 * 128 * 8;
  /// Where the slots start in the dynamic shared memory of a
  /// warp-specialized kernel: after the ring and any parked U (from the
  /// ring's 1024-byte boundary).
  int64_t clusterSlotOffset() const {
    return ringBytes() + (consumerWorkers() ? 2 * kParkedBytes : 0);
  }
  /// The box one TMA copy moves: a stage's token rows (blockTokens) x 64
  /// elements (128 bytes, one row of the 128-byte swizzle), in the tensors'
  /// row-major order: one MN atom of a stage (tmaAtomBytes()).
  static constexpr int64_t kTmaBoxCols = 64;
  int64_t tmaAtomBytes() const { return blockTokens * kTmaBoxCols * 2; }

  /// Both wgmma mainloops: TMA into a ring with one mbarrier a stage.
  bool isWgmma() const {
    return mainloop == FusedStepMainloop::Wgmma || warpSpecialized();
  }
  /// A producer warpgroup and consumers (wgmma-ws, wgmma-pingpong,
  /// wgmma-tall).
  bool warpSpecialized() const {
    return mainloop == FusedStepMainloop::WgmmaWarpSpecialized ||
           consumerWorkers();
  }
  bool pingPong() const { return mainloop == FusedStepMainloop::WgmmaPingPong; }
  bool tall() const { return mainloop == FusedStepMainloop::WgmmaTall; }
  /// Each consumer warpgroup computes a 128 x 128 tile of its own (two row
  /// atoms, 128 accumulators a thread) and runs its epilogue as a worker:
  /// wgmma-pingpong, wgmma-tall and wgmma-wide.
  bool wide() const { return mainloop == FusedStepMainloop::WgmmaWide; }
  bool consumerWorkers() const { return pingPong() || pairedTiles(); }
  /// wgmma-tall and wgmma-wide: a CTA tile is two workers' tiles, side by
  /// side in a column (tall) or a row (wide), and both consumers read
  /// every stage of it.
  bool pairedTiles() const { return tall() || wide(); }
  /// What computes a tile and runs its epilogue, a "worker": the CTA's
  /// kThreads threads, or with consumerWorkers() each of its two consumer
  /// warpgroups. The one-phase schedule needs a worker for each column tile
  /// of a row block (KernelEmitter::emitEpilogue).
  static constexpr int64_t kWarpgroupThreads = 128;
  int64_t workersPerCta() const { return consumerWorkers() ? 2 : 1; }
  int64_t workerThreads() const {
    return consumerWorkers() ? kWarpgroupThreads : kThreads;
  }
  /// The 128-row blocks of dy a CTA tile (and a ring stage) holds, and
  /// its 128-column tiles of x.
  int64_t ctaRowBlocks() const { return tall() ? 2 : 1; }
  int64_t ctaColTiles() const { return wide() ? 2 : 1; }
  /// The CTA tiles of a row of them (the columns' CTA tiles).
  int64_t ctaTilesPerRow() const {
    return llvm::divideCeil(colTiles, ctaColTiles());
  }
  /// The consumer warps that read each ring stage and release it: both
  /// warpgroups, or with ping-pong the one whose tile it holds.
  int64_t stageReaderWarps() const { return pingPong() ? 4 : 8; }
  /// The wgmma mainloops read dy and x through TMA descriptors.
  bool hasTensorMaps() const { return isWgmma(); }
  /// The rows and columns of a tensor-core tile.
  static constexpr int64_t kTensorCoreTile = 128;
  /// The warp-specialized mainloops: the bytes of `stages` stages of
  /// `tokens` tokens (bf16/f16) of `blocks` 128-row blocks of dy or
  /// 128-column tiles of x, and of a CTA tile's both (the ring).
  static int64_t ringOperandBytes(int64_t stages, int64_t tokens,
                                  int64_t blocks) {
    return stages * tokens * kTensorCoreTile * blocks * 2;
  }
  static int64_t ringBytes(int64_t stages, int64_t tokens, int64_t rowBlocks,
                           int64_t colTiles) {
    return ringOperandBytes(stages, tokens, rowBlocks) +
           ringOperandBytes(stages, tokens, colTiles);
  }
  int64_t ringDyBytes() const {
    return ringOperandBytes(stages, blockTokens, ctaRowBlocks());
  }
  int64_t ringBytes() const {
    return ringBytes(stages, blockTokens, ctaRowBlocks(), ctaColTiles());
  }
  /// The CTA's threads.
  int64_t blockThreads() const {
    return kThreads + (warpSpecialized() ? kProducerThreads : 0);
  }

  /// Warp specialization: the ring's stages live in dynamic shared
  /// memory (so that the ring may exceed the 48 KiB of static shared
  /// memory): both operands' stages plus 1 KiB to align them to 1024 bytes.
  int64_t dynamicSharedBytes = 0;
  /// consumerWorkers(): after the ring, each consumer parks the U of its second
  /// row atom (64 of its 128 elements) in shared memory across the row
  /// block's wait, [element][thread] (kParkedBytes a warpgroup): 128 U
  /// values in registers across it spilled.
  static constexpr int64_t kParkedElements = 64;
  static constexpr int64_t kParkedBytes =
      kParkedElements * kWarpgroupThreads * 4;
  int64_t parkedOffset() const { return ringBytes(); }
  /// The warp-specialized ring (WgmmaRingOptions): 4 stages of 64 tokens (4 k16
  /// wgmmas a stage, 32 KiB; fewer tokens, in steps of 16, when the step
  /// has fewer) unless set; with paired tiles (wgmma-tall, wgmma-wide) 3
  /// stages (48 KiB each); wgmma-wide with the cluster exchange, whose
  /// slots take 12 KiB of the 3rd stage's room, 5 stages of 32 tokens
  /// (24 KiB each).
  static constexpr int64_t kDefaultRingStages = 4, kDefaultStageTokens = 64;
  static constexpr int64_t kDefaultPairedRingStages = 3;
  static constexpr int64_t kWideClusterRingStages = 5,
                           kWideClusterStageTokens = 32;
  static constexpr bool pairedTiles(FusedStepMainloop mainloop) {
    return mainloop == FusedStepMainloop::WgmmaTall ||
           mainloop == FusedStepMainloop::WgmmaWide;
  }
  static constexpr bool wideCluster(FusedStepMainloop mainloop,
                                    RowExchange exchange) {
    return mainloop == FusedStepMainloop::WgmmaWide &&
           exchange == RowExchange::Cluster;
  }
  static int64_t defaultRingStages(FusedStepMainloop mainloop,
                                   RowExchange exchange) {
    return wideCluster(mainloop, exchange) ? kWideClusterRingStages
           : pairedTiles(mainloop)         ? kDefaultPairedRingStages
                                           : kDefaultRingStages;
  }
  static int64_t defaultStageTokens(FusedStepMainloop mainloop,
                                    RowExchange exchange) {
    return wideCluster(mainloop, exchange) ? kWideClusterStageTokens
                                           : kDefaultStageTokens;
  }
  /// The epilogue's W and M go to L2 this many tokens before the end of
  /// the tile's mainloop (0: no prefetch; KernelEmitter::emitStatePrefetch).
  int64_t l2PrefetchTokens = kDefaultL2PrefetchTokens;
  static constexpr int64_t kDefaultL2PrefetchTokens = 2048;
  /// The ring's bound: with the kernel's static shared memory (6-7 KiB) and
  /// the alignment slack it stays under the 227 KiB a CTA may have.
  static constexpr int64_t kMaxRingBytes = 192 * 1024;
  /// The bound with the parked U (two warpgroups' 32 KiB): ping-pong's is
  /// 192 KiB less 64; with paired tiles 144 KiB, all that fits (3 stages
  /// of 48 KiB) beside the parked U, 1 KiB of alignment and its static
  /// shared memory (10-11 KiB, two workers' partials and coefficients):
  /// 209 KiB of dynamic and at most 18 of static shared memory are 227 KiB;
  /// wgmma-wide with the cluster exchange 132 KiB, beside its slots.
  static constexpr int64_t maxRingBytes(FusedStepMainloop mainloop,
                                        RowExchange exchange) {
    return wideCluster(mainloop, exchange) ? 144 * 1024 - kWideClusterSlotBytes
           : pairedTiles(mainloop)         ? 144 * 1024
           : mainloop == FusedStepMainloop::WgmmaPingPong
               ? kMaxRingBytes - 2 * kParkedBytes
               : kMaxRingBytes;
  }
  /// `ring` (warp specialization only; its zeros: the defaults) sets the
  /// ring.
  /// A cluster exchange needs a mainloop whose CTA works on one row block
  /// at a time (simt, mma-sync, wgmma, wgmma-ws, wgmma-wide); with a guard,
  /// wgmma needs whole tiles (clusterExchangeIneligibility).
  static FusedStepTiling get(const FusedStepShape &shape,
                             const RowUpdateChain &chain,
                             FusedStepMainloop mainloop,
                             const WgmmaRingOptions &ring = {},
                             RowExchange exchange = RowExchange::Workspace);
};

/// Why `shape` cannot use the tensor-core mainloops, mma.sync and wgmma (an
/// empty string when it can): it needs bf16 or f16 for both dy and x, and rows
/// and columns that are multiples of 8 (16-byte cp.async chunks).
std::string tensorCoreIneligibility(const FusedStepShape &shape);

/// Why a step of `shape` and `chain` whose tiles `tiling` (a workspace
/// exchange) gives cannot exchange its rows' statistics in a cluster (an
/// empty string when it can).
std::string clusterExchangeIneligibility(const FusedStepShape &shape,
                                         const RowUpdateChain &chain,
                                         const FusedStepTiling &tiling);

/// Why `shape` cannot use the tf32 mainloop ("" when it can): it needs f32
/// dy and x, and rows and columns that are multiples of 4 (16-byte chunks).
std::string tf32Ineligibility(const FusedStepShape &shape);

/// Builds the kernel of one step as a gpu.func named `name` at `builder`'s
/// insertion point (inside a gpu.module). Its arguments, in order: dy, x,
/// [acc], w, m, lr, wd, w_new, m_new, counters (i32), stats (f64) (none
/// of the two with a cluster exchange), and with
/// the wgmma mainloop the tensor maps of dy and x (128 x i8 each) (with
/// shape.gradGiven: g, w, m, ...; with shape.wgradOnly: dy, x, [acc], g,
/// [the tensor maps]); all memrefs have static shapes.
gpu::GPUFuncOp buildFusedStepKernel(OpBuilder &builder, Location loc,
                                    StringRef name, const FusedStepShape &shape,
                                    const RowUpdateChain &chain,
                                    const FusedStepTiling &tiling);

/// The kernel that finishes a guarded step (chain.guard set), launched after
/// the step's: it reads the flagged-row count the step's kernel left in the
/// counters and writes `skipped` (i64: the count with skip_row, 1 or 0 with
/// skip_step), then puts the count back at 0 once every CTA has read it;
/// with skip_step and a count above 0 it copies W and M over W'
/// and M' (rows blockIdx.x, + gridDim.x, ...). Arguments: counters (i32),
/// w, m, w_new, m_new, skipped (memref<i64>).
gpu::GPUFuncOp buildNonfiniteFinishKernel(OpBuilder &builder, Location loc,
                                          StringRef name,
                                          const FusedStepShape &shape,
                                          const RowUpdateChain &chain,
                                          const FusedStepTiling &tiling);

} // namespace mlir::nora

#endif // NORA_LIB_CONVERSION_FUSEDSTEPTOGPU_FUSEDSTEPKERNEL_H
