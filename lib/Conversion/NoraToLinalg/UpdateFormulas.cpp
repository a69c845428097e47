//===- UpdateFormulas.cpp - scalar formulas of the nora update -*- C++ -*-===//

#include "nora/Conversion/UpdateFormulas.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>

using namespace mlir;

Value mlir::nora::createTorchLerp(OpBuilder &b, Location loc, Value start,
                                  Value end, double weight) {
  Type f32 = b.getF32Type();
  Value diff = arith::SubFOp::create(b, loc, end, start);
  if (std::abs(weight) < 0.5) {
    Value w = arith::ConstantOp::create(b, loc, f32, b.getF32FloatAttr(weight));
    return arith::AddFOp::create(b, loc, start,
                                 arith::MulFOp::create(b, loc, w, diff));
  }
  Value oneMinusW = arith::ConstantOp::create(
      b, loc, f32, b.getF32FloatAttr(static_cast<float>(1.0f - float(weight))));
  return arith::SubFOp::create(b, loc, end,
                               arith::MulFOp::create(b, loc, diff, oneMinusW));
}

Value mlir::nora::createSafeRatio(OpBuilder &b, Location loc, Value numerator,
                                  Value sumOfSquares, double eps,
                                  bool squared) {
  Type f64 = b.getF64Type();
  Value norm = math::SqrtOp::create(b, loc, sumOfSquares);
  Value epsValue =
      arith::ConstantOp::create(b, loc, f64, b.getFloatAttr(f64, eps));
  Value den = arith::MaximumFOp::create(b, loc, norm, epsValue);
  if (squared)
    den = arith::MulFOp::create(b, loc, den, den);
  Value zero = arith::ConstantOp::create(b, loc, f64, b.getFloatAttr(f64, 0.0));
  Value ratio = arith::DivFOp::create(b, loc, numerator, den);
  Value isZero =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, den, zero);
  return arith::SelectOp::create(b, loc, isZero, zero, ratio);
}

Value mlir::nora::createDecayFactor(OpBuilder &b, Location loc, Value lr,
                                    Value wd) {
  Type f32 = b.getF32Type(), f64 = b.getF64Type();
  Value lr64 = arith::ExtFOp::create(b, loc, f64, lr);
  Value wd64 = arith::ExtFOp::create(b, loc, f64, wd);
  Value one = arith::ConstantOp::create(b, loc, f64, b.getFloatAttr(f64, 1.0));
  Value decay64 = arith::SubFOp::create(
      b, loc, one, arith::MulFOp::create(b, loc, lr64, wd64));
  return arith::TruncFOp::create(b, loc, f32, decay64);
}

Value mlir::nora::createWeightUpdate(OpBuilder &b, Location loc, Value w,
                                     Value d, Value decay, Value negLr) {
  Value kept = arith::MulFOp::create(b, loc, w, decay);
  Value step = arith::MulFOp::create(b, loc, negLr, d);
  return arith::AddFOp::create(b, loc, kept, step);
}
