//===- Passes.h - nora dialect passes ---------------------------*- C++ -*-===//

#ifndef NORA_DIALECT_NORA_TRANSFORMS_PASSES_H
#define NORA_DIALECT_NORA_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"
#include "nora/Dialect/Nora/IR/NoraOps.h"

namespace mlir::nora {

#define GEN_PASS_DECL
#include "nora/Dialect/Nora/Transforms/Passes.h.inc"

/// Adds the patterns that expand nora.nora_step and nora.rmnp_step.
void populateNoraDecomposePatterns(RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "nora/Dialect/Nora/Transforms/Passes.h.inc"

} // namespace mlir::nora

#endif // NORA_DIALECT_NORA_TRANSFORMS_PASSES_H
