//===- Passes.h - nora conversion passes ------------------------*- C++ -*-===//

#ifndef NORA_CONVERSION_PASSES_H
#define NORA_CONVERSION_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"

namespace mlir::nora {

#define GEN_PASS_DECL
#include "nora/Conversion/Passes.h.inc"

/// Adds the patterns that lower nora ops to linalg on tensors. With
/// `useUkernels`, nora.wgrad becomes a micro-kernel library call.
void populateNoraToLinalgPatterns(RewritePatternSet &patterns,
                                  bool useUkernels = false);

/// Returns `tensor` with its elements extended to f32 (a linalg.generic), or
/// `tensor` itself when it already is f32.
Value createExtendToF32(OpBuilder &builder, Location loc, Value tensor);

/// The library_call names of the CPU micro-kernels.
inline constexpr const char *kWgradUkernel = "nora_wgrad_f32";
inline constexpr const char *kRowDotUkernel = "nora_row_dot_f64";
inline constexpr const char *kRowSumSqUkernel = "nora_row_sumsq_f64";

#define GEN_PASS_REGISTRATION
#include "nora/Conversion/Passes.h.inc"

} // namespace mlir::nora

#endif // NORA_CONVERSION_PASSES_H
