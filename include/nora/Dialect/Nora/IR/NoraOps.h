//===- NoraOps.h - nora dialect ops -----------------------------*- C++ -*-===//

#ifndef NORA_DIALECT_NORA_IR_NORAOPS_H
#define NORA_DIALECT_NORA_IR_NORAOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "nora/Dialect/Nora/IR/NoraDialect.h"
#include "nora/Dialect/Nora/IR/NoraInterfaces.h"

#define GET_OP_CLASSES
#include "nora/Dialect/Nora/IR/NoraOps.h.inc"

namespace mlir::nora {

/// The default row scale of the Nora optimizer for a weight of M rows and N
/// columns: max(1, sqrt(M / N)).
double noraDefaultScale(int64_t rows, int64_t cols);

/// The modes of nora.skip_nonfinite and of the `nonfinite` attribute of the
/// steps: keep the rows (or the whole step) whose gradient is not finite.
inline constexpr llvm::StringLiteral kSkipRow = "skip_row";
inline constexpr llvm::StringLiteral kSkipStep = "skip_step";
bool isNonfiniteMode(llvm::StringRef mode);

/// Moonlight's scale used by RMNP: 0.2 * sqrt(max(M, N)).
double moonlightScale(int64_t rows, int64_t cols);

} // namespace mlir::nora

#endif // NORA_DIALECT_NORA_IR_NORAOPS_H
