//===- NoraOps.cpp - nora dialect ops: verifiers, folders ------*- C++ -*-===//
//
// Every rule of SEMANTICS.md's "Bad input" section that the ODS type
// constraints do not already enforce (rank, element types, f32 scalars) is
// checked here, with a message that names the operands involved.
//
//===----------------------------------------------------------------------===//

#include "nora/Dialect/Nora/IR/NoraOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"

#include <cmath>

using namespace mlir;
using namespace mlir::nora;

#include "nora/Dialect/Nora/IR/NoraInterfaces.cpp.inc"
#include "nora/Dialect/Nora/IR/NoraOpsDialect.cpp.inc"

void NoraDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "nora/Dialect/Nora/IR/NoraOps.cpp.inc"
      >();
}

double mlir::nora::noraDefaultScale(int64_t rows, int64_t cols) {
  return std::max(
      1.0, std::sqrt(static_cast<double>(rows) / static_cast<double>(cols)));
}

double mlir::nora::moonlightScale(int64_t rows, int64_t cols) {
  return 0.2 * std::sqrt(static_cast<double>(std::max(rows, cols)));
}

//===----------------------------------------------------------------------===//
// Verification helpers
//===----------------------------------------------------------------------===//

/// Prints a shape as `4x8`, with `?` for dynamic sizes.
static std::string shapeString(ArrayRef<int64_t> shape) {
  std::string str;
  llvm::raw_string_ostream os(str);
  llvm::interleave(
      shape, os,
      [&](int64_t d) {
        if (ShapedType::isDynamic(d))
          os << '?';
        else
          os << d;
      },
      "x");
  return str;
}

static ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

/// Two sizes agree when either is dynamic or both are equal.
static bool sizesAgree(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

static bool shapesAgree(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  return a.size() == b.size() && llvm::all_of(llvm::zip(a, b), [](auto pair) {
           return sizesAgree(std::get<0>(pair), std::get<1>(pair));
         });
}

/// Checks that operands `a` and `b` (both M x N) have the same shape.
static LogicalResult verifySameShape(Operation *op, StringRef aName, Value a,
                                     StringRef bName, Value b) {
  if (shapesAgree(shapeOf(a), shapeOf(b)))
    return success();
  return op->emitOpError() << "shape mismatch: '" << aName << "' is "
                           << shapeString(shapeOf(a)) << " but '" << bName
                           << "' is " << shapeString(shapeOf(b));
}

/// beta and nesterov (mu) are EMA coefficients in [0, 1). NaN is outside.
static LogicalResult verifyUnitInterval(Operation *op, StringRef name,
                                        const APFloat &value) {
  double v = value.convertToDouble();
  if (v >= 0.0 && v < 1.0)
    return success();
  return op->emitOpError() << "attribute '" << name
                           << "' must be in [0, 1), got " << v;
}

static LogicalResult verifyEps(Operation *op, const APFloat &value) {
  double v = value.convertToDouble();
  if (v >= 0.0 && std::isfinite(v))
    return success();
  return op->emitOpError()
         << "attribute 'eps' must be a finite non-negative number, got " << v;
}

static LogicalResult verifyFinite(Operation *op, StringRef name,
                                  const APFloat &value) {
  double v = value.convertToDouble();
  if (std::isfinite(v))
    return success();
  return op->emitOpError() << "attribute '" << name << "' must be finite, got "
                           << v;
}

/// Shared rules of nora.wgrad and nora.fused_wgrad_step: dy is T x M, x is
/// T x N, both of one element type; `g` (and `acc`) are M x N.
static LogicalResult verifyWgradOperands(Operation *op, Value dy, Value x,
                                         Value acc, StringRef gName,
                                         ArrayRef<int64_t> gShape,
                                         const APFloat &scale) {
  auto dyType = cast<RankedTensorType>(dy.getType());
  auto xType = cast<RankedTensorType>(x.getType());
  if (dyType.getElementType() != xType.getElementType())
    return op->emitOpError()
           << "element type mismatch: 'dy' has " << dyType.getElementType()
           << " but 'x' has " << xType.getElementType();
  if (!sizesAgree(dyType.getDimSize(0), xType.getDimSize(0)))
    return op->emitOpError()
           << "shape mismatch: 'dy' is " << shapeString(dyType.getShape())
           << " and 'x' is " << shapeString(xType.getShape())
           << " but they must have the same number of rows (tokens)";
  SmallVector<int64_t> expected = {dyType.getDimSize(1), xType.getDimSize(1)};
  if (!shapesAgree(gShape, expected))
    return op->emitOpError()
           << "shape mismatch: '" << gName << "' is " << shapeString(gShape)
           << " but dy^T x is " << shapeString(expected);
  if (acc && !shapesAgree(shapeOf(acc), expected))
    return op->emitOpError()
           << "shape mismatch: 'acc' is " << shapeString(shapeOf(acc))
           << " but dy^T x is " << shapeString(expected);
  return verifyFinite(op, "scale", scale);
}

//===----------------------------------------------------------------------===//
// WgradOp
//===----------------------------------------------------------------------===//

LogicalResult WgradOp::verify() {
  return verifyWgradOperands(*this, getDy(), getX(), getAcc(), "g",
                             shapeOf(getG()), getScale());
}

//===----------------------------------------------------------------------===//
// MomentumOp
//===----------------------------------------------------------------------===//

LogicalResult MomentumOp::verify() {
  if (failed(verifySameShape(*this, "m", getM(), "g", getG())) ||
      failed(verifyUnitInterval(*this, "beta", getBeta())))
    return failure();
  if (std::optional<APFloat> mu = getNesterov())
    return verifyUnitInterval(*this, "nesterov", *mu);
  return success();
}

/// beta = 0: m_new = g, and u = g with or without Nesterov
/// ((1 - mu) g + mu g = g).
LogicalResult MomentumOp::fold(FoldAdaptor,
                               SmallVectorImpl<OpFoldResult> &results) {
  if (!getBeta().isZero() || getG().getType() != getM().getType())
    return failure();
  results.push_back(getG());
  results.push_back(getG());
  return success();
}

namespace {
/// nesterov = 0: u = 1 * g + 0 * m_new = g. Uses of u read g directly, which
/// leaves m_new as the only live result.
struct ForwardGradientForZeroNesterov : OpRewritePattern<MomentumOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MomentumOp op,
                                PatternRewriter &rewriter) const override {
    std::optional<APFloat> mu = op.getNesterov();
    if (!mu || !mu->isZero() || op.getU().use_empty() ||
        op.getG().getType() != op.getU().getType())
      return failure();
    rewriter.replaceAllUsesWith(op.getU(), op.getG());
    return success();
  }
};
} // namespace

void MomentumOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                             MLIRContext *context) {
  results.add<ForwardGradientForZeroNesterov>(context);
}

//===----------------------------------------------------------------------===//
// OrthProjectOp, RowNormalizeOp, ApplyUpdateOp
//===----------------------------------------------------------------------===//

LogicalResult OrthProjectOp::verify() {
  if (failed(verifySameShape(*this, "u", getU(), "w", getW())))
    return failure();
  return verifyEps(*this, getEps());
}

LogicalResult RowNormalizeOp::verify() {
  if (failed(verifyEps(*this, getEps())))
    return failure();
  return verifyFinite(*this, "scale", getScale());
}

LogicalResult ApplyUpdateOp::verify() {
  return verifySameShape(*this, "w", getW(), "d", getD());
}

//===----------------------------------------------------------------------===//
// Non-finite gradients
//===----------------------------------------------------------------------===//

bool mlir::nora::isNonfiniteMode(StringRef mode) {
  return mode == kSkipRow || mode == kSkipStep;
}

/// `nonfinite` (when set) names a mode, and the `skipped` result is there
/// exactly when it is.
static LogicalResult verifyNonfiniteMode(Operation *op, StringRef attrName,
                                         std::optional<StringRef> mode,
                                         bool hasSkippedResult) {
  if (mode && !isNonfiniteMode(*mode))
    return op->emitOpError()
           << "attribute '" << attrName << "' must be \"" << kSkipRow
           << "\" or \"" << kSkipStep << "\", got \"" << *mode << "\"";
  if (mode.has_value() != hasSkippedResult)
    return op->emitOpError()
           << (mode ? "has attribute 'nonfinite' and must have the third "
                      "result 'skipped : i64'"
                    : "has a third result 'skipped' but no 'nonfinite' "
                      "attribute");
  return success();
}

LogicalResult SkipNonfiniteOp::verify() {
  if (failed(verifySameShape(*this, "g", getG(), "w", getW())) ||
      failed(verifySameShape(*this, "m", getM(), "w", getW())))
    return failure();
  return verifyNonfiniteMode(*this, "mode", getMode(), /*hasSkipped=*/true);
}

//===----------------------------------------------------------------------===//
// RowwiseEpilogueOpInterface
//===----------------------------------------------------------------------===//

RowwiseKind MomentumOp::getRowwiseKind() { return RowwiseKind::Elementwise; }
RowwiseKind ApplyUpdateOp::getRowwiseKind() { return RowwiseKind::Elementwise; }
/// <u, w> and ||w||^2 are accumulated together: one row reduction.
RowwiseKind OrthProjectOp::getRowwiseKind() {
  return RowwiseKind::RowReduction;
}
RowwiseKind RowNormalizeOp::getRowwiseKind() {
  return RowwiseKind::RowReduction;
}

//===----------------------------------------------------------------------===//
// Composite steps
//===----------------------------------------------------------------------===//

template <typename StepOp> static LogicalResult verifyStep(StepOp op) {
  if (failed(verifySameShape(op, "g", op.getG(), "w", op.getW())) ||
      failed(verifySameShape(op, "m", op.getM(), "w", op.getW())) ||
      failed(verifyUnitInterval(op, "beta", op.getBeta())) ||
      failed(verifyEps(op, op.getEps())) ||
      failed(verifyNonfiniteMode(op, "nonfinite", op.getNonfinite(),
                                 static_cast<bool>(op.getSkipped()))))
    return failure();
  if (std::optional<APFloat> scale = op.getScale())
    return verifyFinite(op, "scale", *scale);
  return success();
}

LogicalResult NoraStepOp::verify() { return verifyStep(*this); }
LogicalResult RmnpStepOp::verify() { return verifyStep(*this); }

//===----------------------------------------------------------------------===//
// FusedWgradStepOp
//===----------------------------------------------------------------------===//

RankedTensorType FusedWgradStepOp::getGradType() {
  return cast<RankedTensorType>(getW().getType());
}

/// (w_new, m_new) are typed like (w, m). Computed through the adaptor, which
/// knows whether the optional `acc` operand is present.
LogicalResult
FusedWgradStepOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                   Adaptor adaptor,
                                   SmallVectorImpl<Type> &inferredReturnTypes) {
  inferredReturnTypes.push_back(adaptor.getW().getType());
  inferredReturnTypes.push_back(adaptor.getM().getType());
  // The parser infers before it moves parsed attributes into properties: look
  // at the attribute dictionary too.
  DictionaryAttr attrs = adaptor.getAttributes();
  if (adaptor.getNonfinite() || (attrs && attrs.get("nonfinite")))
    inferredReturnTypes.push_back(
        IntegerType::get(adaptor.getW().getContext(), 64));
  return success();
}

LogicalResult FusedWgradStepOp::verify() {
  if (failed(verifyWgradOperands(*this, getDy(), getX(), getAcc(), "w",
                                 shapeOf(getW()), getScale())) ||
      failed(verifySameShape(*this, "m", getM(), "w", getW())))
    return failure();
  return verifyNonfiniteMode(*this, "nonfinite", getNonfinite(),
                             static_cast<bool>(getSkipped()));
}

LogicalResult FusedWgradStepOp::verifyRegions() {
  Block &body = getEpilogue().front();
  Type f32 = Float32Type::get(getContext());
  SmallVector<Type> expected = {getGradType(), getW().getType(),
                                getM().getType(), f32, f32};
  static constexpr const char *names[] = {"g", "w", "m", "lr", "wd"};
  if (body.getNumArguments() != expected.size())
    return emitOpError() << "epilogue must have 5 block arguments (g, w, m, "
                            "lr, wd), got "
                         << body.getNumArguments();
  for (auto [i, arg, type] : llvm::enumerate(body.getArguments(), expected))
    if (arg.getType() != type)
      return emitOpError() << "epilogue block argument #" << i << " ('"
                           << names[i] << "') must be " << type << ", got "
                           << arg.getType();
  auto yield = body.empty() ? YieldOp() : dyn_cast<YieldOp>(body.back());
  if (!yield)
    return emitOpError() << "epilogue must end in 'nora.yield'";
  TypeRange yielded = yield.getValues().getTypes();
  TypeRange updated = TypeRange(getResultTypes()).take_front(2);
  if (yielded != updated)
    return emitOpError() << "epilogue must yield (w_new, m_new) of types "
                         << updated << ", got " << yielded;
  return success();
}

#define GET_OP_CLASSES
#include "nora/Dialect/Nora/IR/NoraOps.cpp.inc"
