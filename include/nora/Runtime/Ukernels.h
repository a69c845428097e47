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

/// The symbol name the lowering calls (through the C interface).
inline constexpr const char *kWgradSymbol = "_mlir_ciface_nora_wgrad_f32";

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
}

#endif // NORA_RUNTIME_UKERNELS_H
