//===- NoraInterfaces.h - nora op interfaces --------------------*- C++ -*-===//

#ifndef NORA_DIALECT_NORA_IR_NORAINTERFACES_H
#define NORA_DIALECT_NORA_IR_NORAINTERFACES_H

#include "mlir/IR/OpDefinition.h"

namespace mlir::nora {

/// What an epilogue op is to a row (see RowwiseEpilogueOpInterface).
enum class RowwiseKind { Elementwise, RowReduction, RowBroadcast };

} // namespace mlir::nora

#include "nora/Dialect/Nora/IR/NoraInterfaces.h.inc"

#endif // NORA_DIALECT_NORA_IR_NORAINTERFACES_H
