//===- UpdateFormulas.h - scalar formulas of the nora update ---*- C++ -*-===//
//
// The element- and row-level arithmetic of SEMANTICS.md, shared by every
// backend so that the CPU (linalg) and GPU (gpu.func) lowerings round the same
// way: torch's lerp for momentum, the safe f64 ratios of the row statistics,
// and the decoupled weight-decay factor.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_CONVERSION_UPDATEFORMULAS_H
#define NORA_CONVERSION_UPDATEFORMULAS_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/Value.h"

namespace mlir::nora {

/// torch's lerp on f32 scalars: `start + w (end - start)` for |w| < 0.5, else
/// `end - (end - start)(1 - w)`; `weight` is rounded to f32 first.
Value createTorchLerp(OpBuilder &b, Location loc, Value start, Value end,
                      double weight);

/// `numerator / max(sqrt(sumOfSquares), eps)` (with `squared`, divided by the
/// square of that denominator) on f64 scalars, and 0 where the denominator is
/// 0 (a zero row with eps = 0) instead of a NaN.
Value createSafeRatio(OpBuilder &b, Location loc, Value numerator,
                      Value sumOfSquares, double eps, bool squared);

/// The decoupled weight-decay factor `f32(1 - f64(lr) * f64(wd))`, formed in
/// f64 and rounded once, as torch does with Python floats.
Value createDecayFactor(OpBuilder &b, Location loc, Value lr, Value wd);

/// `w * decay + (-lr) * d` in f32: the weight update with alpha = -lr.
Value createWeightUpdate(OpBuilder &b, Location loc, Value w, Value d,
                         Value decay, Value negLr);

} // namespace mlir::nora

#endif // NORA_CONVERSION_UPDATEFORMULAS_H
