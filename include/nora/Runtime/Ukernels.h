//===- Ukernels.h - hand-written CPU micro-kernels (no LLVM) ----*- C++ -*-===//
//
// The CPU lowering computes the weight-gradient contraction through a
// micro-kernel ("ukernel", as IREE calls them): a `linalg.generic` carrying
// `library_call = "nora_wgrad_f32"` becomes, after bufferization, a call to
// `_mlir_ciface_nora_wgrad_f32` with memref descriptors. Everything else
// (the optimizer epilogue, the row-panel loop, threading) is generated code.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_RUNTIME_UKERNELS_H
#define NORA_RUNTIME_UKERNELS_H

#include <cstdint>

namespace mlir::nora::ukernel {

/// A rank-2 f32 memref descriptor as the MLIR C interface passes it.
struct MemRef2D {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[2];
  int64_t strides[2];
};

/// A rank-3 f32 memref descriptor (x packed as tiles).
struct MemRef3D {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[3];
  int64_t strides[3];
};

/// A rank-1 f64 memref descriptor.
struct MemRef1D {
  double *allocated;
  double *aligned;
  int64_t offset;
  int64_t sizes[1];
  int64_t strides[1];
};

/// The symbol names the lowering calls (through the C interface).
inline constexpr const char *kWgradSymbol = "_mlir_ciface_nora_wgrad_f32";
inline constexpr const char *kWgradPackedSymbol =
    "_mlir_ciface_nora_wgrad_packed_f32";
/// Columns of x per packed tile (the register tile's width).
inline constexpr int64_t kPackedTileCols = 16;
inline constexpr const char *kRowDotSymbol = "_mlir_ciface_nora_row_dot_f64";
inline constexpr const char *kRowSumSqSymbol =
    "_mlir_ciface_nora_row_sumsq_f64";

/// The number of partial sums a row statistic is accumulated in: lane l sums
/// the columns j with j % kRowLanes == l in order, then the lanes are added
/// pairwise in a fixed tree. Part of the numerical contract (bitwise results
/// do not depend on the vector path taken).
inline constexpr int64_t kRowLanes = 16;

/// Which code path the wgrad kernel takes on this CPU ("avx2+fma" or
/// "portable").
const char *wgradKernelName();

} // namespace mlir::nora::ukernel

extern "C" {
/// g[i][j] += sum_k dy[k][i] * x[k][j], k ascending, one fused multiply-add
/// per term, for dy : T x M, x : T x N, g : M x N (any strides; unit inner
/// strides take the vectorized path). Deterministic: the same inputs give
/// the same bits on every call and for any split of g into row panels.
void _mlir_ciface_nora_wgrad_f32(mlir::nora::ukernel::MemRef2D *dy,
                                 mlir::nora::ukernel::MemRef2D *x,
                                 mlir::nora::ukernel::MemRef2D *g);

/// The same as nora_wgrad_f32 with x packed: xp is ceil(N/16) x T x 16,
/// xp[t][k][l] = x[k][16 t + l] (zero past N), so that each row panel of g
/// reads x without repacking it. N is g's column count.
void _mlir_ciface_nora_wgrad_packed_f32(mlir::nora::ukernel::MemRef2D *dy,
                                        mlir::nora::ukernel::MemRef3D *xp,
                                        mlir::nora::ukernel::MemRef2D *g);

/// out[i] += sum_j a[i][j] * b[i][j] in f64 (kRowLanes partial sums). Each
/// product of two f32 values is exact in f64.
void _mlir_ciface_nora_row_dot_f64(mlir::nora::ukernel::MemRef2D *a,
                                   mlir::nora::ukernel::MemRef2D *b,
                                   mlir::nora::ukernel::MemRef1D *out);

/// out[i] += sum_j a[i][j]^2 in f64 (kRowLanes partial sums).
void _mlir_ciface_nora_row_sumsq_f64(mlir::nora::ukernel::MemRef2D *a,
                                     mlir::nora::ukernel::MemRef1D *out);
}

#endif // NORA_RUNTIME_UKERNELS_H
