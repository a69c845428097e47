//===- NoraDialect.h - nora dialect -----------------------------*- C++ -*-===//

#ifndef NORA_DIALECT_NORA_IR_NORADIALECT_H
#define NORA_DIALECT_NORA_IR_NORADIALECT_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"

#include "nora/Dialect/Nora/IR/NoraOpsDialect.h.inc"

#endif // NORA_DIALECT_NORA_IR_NORADIALECT_H
