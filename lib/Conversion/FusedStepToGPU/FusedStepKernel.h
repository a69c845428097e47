//===- FusedStepKernel.h - the persistent fused-step GPU kernel -*- C++ -*-===//
//
// What the GPU lowering of nora.fused_wgrad_step needs to know about a step
// (the row-update chain of its epilogue, its shapes, the tiling) and the
// builder of its kernel. Private to lib/Conversion/FusedStepToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_LIB_CONVERSION_FUSEDSTEPTOGPU_FUSEDSTEPKERNEL_H
#define NORA_LIB_CONVERSION_FUSEDSTEPTOGPU_FUSEDSTEPKERNEL_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Support/LLVM.h"

#include <optional>

namespace mlir::nora {

class FusedWgradStepOp;

/// The epilogue chains the GPU kernel computes: Nora (momentum,
/// orth_project, row_normalize, apply_update) and RMNP (the same without
/// orth_project).
struct RowUpdateChain {
  double beta = 0.0;
  std::optional<double> nesterov;   // absent: u = m_new
  std::optional<double> projectEps; // present: orth_project (Nora)
  double normalizeEps = 0.0;
  double normalizeScale = 1.0;

  /// f64 row statistics a column tile contributes: sum u^2, and for Nora also
  /// sum u w and sum w^2.
  int64_t numStats() const { return projectEps ? 3 : 1; }
};

/// Recognizes the chain in `op`'s epilogue; otherwise emits an error on the
/// op that names the first operation the GPU kernel cannot compute.
FailureOr<RowUpdateChain> matchRowUpdateChain(FusedWgradStepOp op);

/// Shapes and element types of one step: g (M x N) = scale dy^T x (+ acc),
/// dy: T x M, x: T x N.
struct FusedStepShape {
  int64_t rows = 0, cols = 0, tokens = 0;
  Type dyElem, xElem;
  bool hasAcc = false;
  double gradScale = 1.0;
};

/// The tiling of the kernel: 256 threads (16 x 16) compute a 64 x 64 tile of
/// g, 4 x 4 elements a thread, 16 tokens per shared-memory stage.
struct FusedStepTiling {
  static constexpr int64_t kBlockRows = 64, kBlockCols = 64, kBlockTokens = 16;
  static constexpr int64_t kThreadsX = 16, kThreadsY = 16;
  static constexpr int64_t kThreads = kThreadsX * kThreadsY;
  static constexpr int64_t kThreadRows = kBlockRows / kThreadsY;
  static constexpr int64_t kThreadCols = kBlockCols / kThreadsX;

  int64_t rowBlocks = 0, colTiles = 0, tiles = 0, numStats = 0;
  /// Workspace: one i32 arrival counter per row block plus one for the
  /// grid-wide barrier, then the f64 slots [rowBlock][colTile][stat][row].
  int64_t counters = 0, statsOffset = 0, statsCount = 0, workspaceBytes = 0;

  static FusedStepTiling get(const FusedStepShape &shape,
                             const RowUpdateChain &chain);
};

/// Builds the kernel of one step as a gpu.func named `name` at `builder`'s
/// insertion point (inside a gpu.module). Its arguments, in order: dy, x,
/// [acc], w, m, lr, wd, w_new, m_new, counters (i32), stats (f64); all
/// memrefs have static shapes.
gpu::GPUFuncOp buildFusedStepKernel(OpBuilder &builder, Location loc,
                                    StringRef name, const FusedStepShape &shape,
                                    const RowUpdateChain &chain,
                                    const FusedStepTiling &tiling);

} // namespace mlir::nora

#endif // NORA_LIB_CONVERSION_FUSEDSTEPTOGPU_FUSEDSTEPKERNEL_H
