//===- Passes.h - nora conversion passes ------------------------*- C++ -*-===//

#ifndef NORA_CONVERSION_PASSES_H
#define NORA_CONVERSION_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"

namespace mlir::nora {

#define GEN_PASS_DECL
#include "nora/Conversion/Passes.h.inc"

/// Adds the patterns that lower nora ops to linalg on tensors.
void populateNoraToLinalgPatterns(RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "nora/Conversion/Passes.h.inc"

} // namespace mlir::nora

#endif // NORA_CONVERSION_PASSES_H
