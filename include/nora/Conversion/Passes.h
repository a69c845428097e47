//===- Passes.h - nora conversion passes ------------------------*- C++ -*-===//

#ifndef NORA_CONVERSION_PASSES_H
#define NORA_CONVERSION_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

#include <string>

namespace mlir::nora {

/// The mainloops of nora-fused-step-to-gpu (and of nora-gpu-pipeline,
/// nora-compile, nora-run), as their errors list them.
inline constexpr const char *kGpuMainloopNames =
    "auto, simt, mma-sync, wgmma, wgmma-ws, wgmma-pingpong, wgmma-tall or "
    "wgmma-wide";
/// Whether `name` is one of kGpuMainloopNames.
bool isGpuMainloop(llvm::StringRef name);

/// The TMA ring of the warp-specialized mainloops (wgmma-ws,
/// wgmma-pingpong, wgmma-tall, wgmma-wide): `stages` stages of
/// `stageTokens` tokens each (0: the defaults, 4 stages of 64 tokens;
/// wgmma-tall and wgmma-wide 3; wgmma-wide with row-exchange=cluster 5 of
/// 32).
struct WgmmaRingOptions {
  int64_t stages = 0, stageTokens = 0;
};

/// Why the kernel options that the pass and nora-gpu-pipeline share cannot
/// go together ("" when they can): only the warp-specialized mainloops take
/// ring options; stages from 2, stage tokens a multiple of 16 (one k16
/// wgmma each) up to 256 (a TMA box), and both operands' stages in at most 192
/// KiB of shared memory (24 stages of 16 tokens, 12 of 32, 6 of 64; 128
/// with wgmma-pingpong, 144 with wgmma-tall and wgmma-wide, 132 with
/// wgmma-wide and row-exchange=cluster: FusedStepTiling::maxRingBytes);
/// l2-prefetch-tokens from 0; row-exchange workspace or cluster, cluster
/// not with wgmma-pingpong and wgmma-tall. Both check them (the pipeline
/// before any IR is built).
std::string kernelOptionsError(llvm::StringRef mainloop,
                               const WgmmaRingOptions &ring,
                               int64_t l2PrefetchTokens,
                               llvm::StringRef rowExchange);

#define GEN_PASS_DECL
#include "nora/Conversion/Passes.h.inc"

/// Adds the patterns that lower nora ops to linalg on tensors. With
/// `useUkernels`, nora.wgrad becomes a micro-kernel library call.
void populateNoraToLinalgPatterns(RewritePatternSet &patterns,
                                  bool useUkernels = false);

/// Returns `tensor` with its elements extended to f32 (a linalg.generic), or
/// `tensor` itself when it already is f32.
Value createExtendToF32(OpBuilder &builder, Location loc, Value tensor);

/// x (T x N, f32) packed as ceil(N/16) tiles of T x 16, zero past column N:
/// xp[t][k][l] = x[k][16 t + l]. The layout the wgrad micro-kernel reads, made
/// once per step so that row panels do not repack x.
Value createPackedX(OpBuilder &builder, Location loc, Value x);

/// g = scale * dy^T x (+ acc) for f32 `dy` and x given packed (from
/// createPackedX) with `cols` = N columns; `gType` is g's type. The
/// contraction carries library_call = "nora_wgrad_packed_f32".
Value createWgradPackedX(OpBuilder &builder, Location loc, Value dy,
                         Value xPacked, OpFoldResult cols, Value acc,
                         double scale, RankedTensorType gType);

/// The non-finite guard (nora.skip_nonfinite), in pieces that the op-by-op
/// lowering and the row panels of a fused step share.
void populateNonfiniteGuardPatterns(RewritePatternSet &patterns);

/// One i1 per row of `g` (M x N, f32): true where the row holds a NaN or an
/// Inf.
Value createNonfiniteRowFlags(OpBuilder &builder, Location loc, Value g);

/// The number of true `flags` (an i64 scalar); for i64 `flags`, their sum.
Value createCountRows(OpBuilder &builder, Location loc, Value flags);

/// Row i of `kept` where flags[i], else row i of `updated`.
Value createKeepFlaggedRows(OpBuilder &builder, Location loc, Value flags,
                            Value kept, Value updated);

/// skip_step from the step's count of non-finite rows (an i64): `kept` when
/// the count is not 0, else `updated`, followed by the step's `skipped` (1 or
/// 0, i64). The `kept` tensors are copied into `updated` in place, so only a
/// skipped step pays a copy.
SmallVector<Value> createSkipStepGuard(OpBuilder &builder, Location loc,
                                       Value flaggedRows, ValueRange kept,
                                       ValueRange updated);

/// The library_call names of the CPU micro-kernels.
inline constexpr const char *kWgradUkernel = "nora_wgrad_f32";
inline constexpr const char *kWgradPackedUkernel = "nora_wgrad_packed_f32";
inline constexpr const char *kRowDotUkernel = "nora_row_dot_f64";
inline constexpr const char *kRowSumSqUkernel = "nora_row_sumsq_f64";

#define GEN_PASS_REGISTRATION
#include "nora/Conversion/Passes.h.inc"

} // namespace mlir::nora

#endif // NORA_CONVERSION_PASSES_H
