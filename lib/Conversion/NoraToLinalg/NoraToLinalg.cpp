//===- NoraToLinalg.cpp - nora ops -> linalg on tensors --------*- C++ -*-===//
//
// The CPU semantics of the nora dialect: every op becomes linalg.generic ops
// on tensors, with the accumulation rules of SEMANTICS.md (f32 contraction,
// f64 row statistics, one rounding to f32 per output element). Everything is
// sequential and in a fixed order, so results are bitwise reproducible.
//
//===----------------------------------------------------------------------===//

#include "nora/Conversion/Passes.h"
#include "nora/Conversion/UpdateFormulas.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/DialectConversion.h"
#include "nora/Dialect/Nora/IR/NoraOps.h"
#include "nora/Dialect/Nora/Transforms/Passes.h"

namespace mlir::nora {
#define GEN_PASS_DEF_CONVERTNORATOLINALG
#include "nora/Conversion/Passes.h.inc"
} // namespace mlir::nora

using namespace mlir;
using namespace mlir::nora;
using utils::IteratorType;

namespace {

/// Emits the linalg building blocks of the lowering at one insertion point.
/// "Matrix" values are M x N tensors; "row" values are M-element tensors
/// holding one statistic per row.
class LinalgEmitter {
public:
  LinalgEmitter(OpBuilder &b, Location loc, bool useUkernels = false)
      : b(b), loc(loc), useUkernels(useUkernels) {}

  Type f32() { return b.getF32Type(); }
  Type f64() { return b.getF64Type(); }

  Value constant(Type type, double value) {
    return arith::ConstantOp::create(b, loc, type, b.getFloatAttr(type, value));
  }

  /// An uninitialized tensor with the sizes `sizes` and element type `elem`.
  Value empty(ArrayRef<OpFoldResult> sizes, Type elem) {
    return tensor::EmptyOp::create(b, loc, sizes, elem);
  }
  Value emptyLike(Value matrix, Type elem) {
    return empty(tensor::getMixedSizes(b, loc, matrix), elem);
  }
  Value emptyRows(Value matrix, Type elem) {
    return empty({tensor::getMixedSize(b, loc, matrix, 0)}, elem);
  }
  Value zeros(Value tensor) {
    Type elem = cast<ShapedType>(tensor.getType()).getElementType();
    return linalg::FillOp::create(b, loc, constant(elem, 0.0), tensor)
        .getResult(0);
  }

  /// Extends a float scalar to `type` (no-op when it already has it).
  static Value extend(OpBuilder &nb, Location l, Value v, Type type) {
    if (v.getType() == type)
      return v;
    return arith::ExtFOp::create(nb, l, type, v);
  }

  using BodyFn =
      function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange)>;

  /// A linalg.generic over an M x N iteration space. `inputMaps` say how each
  /// input is read (matrixMap() or rowMap()); outputs are matrices.
  ValueRange elementwise(ValueRange inputs, ArrayRef<AffineMap> inputMaps,
                         ValueRange outputs, BodyFn body) {
    SmallVector<AffineMap> maps(inputMaps);
    maps.append(outputs.size(), matrixMap());
    return generic(inputs, outputs, maps,
                   {IteratorType::parallel, IteratorType::parallel}, body);
  }

  /// Per-row f64 sum over j of the product of the inputs' (i, j) elements:
  /// sum_j a_ij^2 for one input, sum_j a_ij c_ij for two. With micro-kernels
  /// the sum runs in kRowLanes partial sums (vectorizable, still a fixed
  /// order); the loop form sums j in order.
  Value rowSumOfProducts(ValueRange matrices) {
    Value init = zeros(emptyRows(matrices.front(), f64()));
    SmallVector<AffineMap> maps(matrices.size(), matrixMap());
    maps.push_back(rowMap());
    Type f64Type = f64();
    return generic(
               matrices, init, maps,
               {IteratorType::parallel, IteratorType::reduction},
               [&](OpBuilder &nb, Location l, ValueRange args) {
                 Value product = extend(nb, l, args[0], f64Type);
                 Value other = extend(
                     nb, l, args.size() == 2 ? args[0] : args[1], f64Type);
                 product = arith::MulFOp::create(nb, l, product, other);
                 Value sum = arith::AddFOp::create(nb, l, args.back(), product);
                 return SmallVector<Value>{sum};
               },
               useUkernels
                   ? (matrices.size() == 1 ? kRowSumSqUkernel : kRowDotUkernel)
                   : "")
        .front();
  }

  /// A per-row computation on f64 row statistics: one value per row.
  Value perRow(ValueRange rows, BodyFn body) {
    Value init = emptyRows(rows.front(), f64());
    AffineMap id = AffineMap::getMultiDimIdentityMap(1, b.getContext());
    SmallVector<AffineMap> maps(rows.size() + 1, id);
    return generic(rows, init, maps, {IteratorType::parallel}, body).front();
  }

  AffineMap matrixMap() {
    return AffineMap::getMultiDimIdentityMap(2, b.getContext());
  }
  AffineMap rowMap() {
    return AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, b.getContext());
  }

  ValueRange generic(ValueRange inputs, ValueRange outputs,
                     ArrayRef<AffineMap> maps, ArrayRef<IteratorType> iterators,
                     BodyFn body, StringRef libraryCall = "") {
    auto op = linalg::GenericOp::create(
        b, loc, TypeRange(outputs), inputs, outputs, maps, iterators,
        /*doc=*/"", libraryCall,
        [&](OpBuilder &nb, Location l, ValueRange args) {
          linalg::YieldOp::create(nb, l, body(nb, l, args));
        });
    return op.getResults();
  }

  /// `tensor` with its elements extended to f32 (itself when already f32).
  Value toF32(Value tensor) {
    if (cast<ShapedType>(tensor.getType()).getElementType().isF32())
      return tensor;
    Type f32Type = f32();
    return elementwise(tensor, matrixMap(), emptyLike(tensor, f32Type),
                       [&](OpBuilder &nb, Location l, ValueRange args) {
                         return SmallVector<Value>{
                             extend(nb, l, args[0], f32Type)};
                       })
        .front();
  }

  OpBuilder &b;
  Location loc;
  bool useUkernels;
};

/// A lowering pattern of a nora op; `useUkernels` selects the CPU
/// micro-kernels for contractions and row statistics.
template <typename OpTy> struct LoweringPattern : OpRewritePattern<OpTy> {
  LoweringPattern(MLIRContext *context, bool useUkernels)
      : OpRewritePattern<OpTy>(context), useUkernels(useUkernels) {}
  bool useUkernels;
};

/// Columns per packed tile of x: the wgrad micro-kernel's register tile.
static int64_t ukernelTileCols() { return 16; }

/// g = scale * dy^T x (+ acc): loops (i, k, j) so that the innermost loop
/// runs along rows of x and g; the sum over k is in f32 and in order. With
/// `useUkernels` the contraction is a call of the CPU micro-kernel.
/// `packedCols`: x is the tiled layout of createPackedX, with this many
/// columns.
static Value emitWgrad(OpBuilder &b, Location loc, Value dy, Value x, Value acc,
                       double scale, RankedTensorType gType, bool useUkernels,
                       OpFoldResult packedCols = {}) {
  bool xIsPacked = static_cast<bool>(packedCols);
  LinalgEmitter e(b, loc);
  if (useUkernels) {
    dy = e.toF32(dy);
    x = e.toF32(x);
  }
  MLIRContext *ctx = b.getContext();
  AffineExpr i = b.getAffineDimExpr(0), k = b.getAffineDimExpr(1),
             j = b.getAffineDimExpr(2);
  int64_t tile = ukernelTileCols();
  AffineMap xMap =
      xIsPacked ? AffineMap::get(3, 0, {j.floorDiv(tile), k, j % tile}, ctx)
                : AffineMap::get(3, 0, {k, j}, ctx);
  SmallVector<AffineMap> maps = {AffineMap::get(3, 0, {k, i}, ctx), xMap,
                                 AffineMap::get(3, 0, {i, j}, ctx)};
  OpFoldResult cols =
      xIsPacked ? packedCols : tensor::getMixedSize(b, loc, x, 1);
  SmallVector<OpFoldResult> sizes = {tensor::getMixedSize(b, loc, dy, 1), cols};
  Value init = (acc && scale == 1.0) ? acc : e.zeros(e.empty(sizes, e.f32()));
  Type f32 = e.f32();
  Value product = e.generic(
                       {dy, x}, init, maps,
                       {IteratorType::parallel, IteratorType::reduction,
                        IteratorType::parallel},
                       [&](OpBuilder &nb, Location l, ValueRange args) {
                         Value a = LinalgEmitter::extend(nb, l, args[0], f32);
                         Value c = LinalgEmitter::extend(nb, l, args[1], f32);
                         Value p = arith::MulFOp::create(nb, l, a, c);
                         return SmallVector<Value>{
                             arith::AddFOp::create(nb, l, args[2], p)};
                       },
                       !useUkernels ? ""
                       : xIsPacked  ? kWgradPackedUkernel
                                    : kWgradUkernel)
                      .front();
  if (scale != 1.0) {
    SmallVector<Value> inputs = {product};
    if (acc)
      inputs.push_back(acc);
    SmallVector<AffineMap> inputMaps(inputs.size(), e.matrixMap());
    product = e.elementwise(inputs, inputMaps, e.emptyLike(product, f32),
                            [&](OpBuilder &nb, Location l, ValueRange args) {
                              Value s = arith::ConstantOp::create(
                                  nb, l, f32, nb.getF32FloatAttr(scale));
                              Value r =
                                  arith::MulFOp::create(nb, l, s, args[0]);
                              if (args.size() == 3)
                                r = arith::AddFOp::create(nb, l, r, args[1]);
                              return SmallVector<Value>{r};
                            })
                  .front();
  }
  if (product.getType() != gType)
    product = tensor::CastOp::create(b, loc, gType, product);
  return product;
}

struct LowerWgrad : LoweringPattern<WgradOp> {
  using LoweringPattern::LoweringPattern;
  LogicalResult matchAndRewrite(WgradOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(
        op, emitWgrad(rewriter, op.getLoc(), op.getDy(), op.getX(), op.getAcc(),
                      op.getScale().convertToDouble(),
                      cast<RankedTensorType>(op.getType()), useUkernels));
    return success();
  }
};

struct LowerMomentum : LoweringPattern<MomentumOp> {
  using LoweringPattern::LoweringPattern;
  LogicalResult matchAndRewrite(MomentumOp op,
                                PatternRewriter &rewriter) const override {
    LinalgEmitter e(rewriter, op.getLoc(), useUkernels);
    double emaWeight = 1.0 - op.getBeta().convertToDouble();
    std::optional<double> mu;
    if (std::optional<APFloat> nesterov = op.getNesterov())
      mu = nesterov->convertToDouble();
    Value m = op.getM(), g = op.getG();
    SmallVector<Value> outputs = {e.emptyLike(m, e.f32())};
    if (mu)
      outputs.push_back(e.emptyLike(m, e.f32()));
    ValueRange results = e.elementwise(
        {m, g}, {e.matrixMap(), e.matrixMap()}, outputs,
        [&](OpBuilder &nb, Location l, ValueRange args) {
          Value mNew = createTorchLerp(nb, l, args[0], args[1], emaWeight);
          SmallVector<Value> yielded = {mNew};
          if (mu)
            yielded.push_back(createTorchLerp(nb, l, args[1], mNew, *mu));
          return yielded;
        });
    Value mNew = results[0];
    Value u = mu ? results[1] : results[0];
    Type type = op.getMNew().getType();
    if (mNew.getType() != type) {
      mNew = tensor::CastOp::create(rewriter, op.getLoc(), type, mNew);
      u = mu ? tensor::CastOp::create(rewriter, op.getLoc(), type, u)
                   .getResult()
             : mNew;
    }
    rewriter.replaceOp(op, {mNew, u});
    return success();
  }
};

struct LowerOrthProject : LoweringPattern<OrthProjectOp> {
  using LoweringPattern::LoweringPattern;
  LogicalResult matchAndRewrite(OrthProjectOp op,
                                PatternRewriter &rewriter) const override {
    LinalgEmitter e(rewriter, op.getLoc(), useUkernels);
    Value u = op.getU(), w = op.getW();
    double eps = op.getEps().convertToDouble();
    Value ww = e.rowSumOfProducts({w});
    Value uw = e.rowSumOfProducts({u, w});
    // <u, w^> w^ = (<u, w> / max(||w||, eps)^2) w: one f64 coefficient a row.
    Value coefficient =
        e.perRow({ww, uw}, [&](OpBuilder &nb, Location l, ValueRange args) {
          return SmallVector<Value>{
              createSafeRatio(nb, l, args[1], args[0], eps, /*squared=*/true)};
        });
    Type f32 = e.f32(), f64 = e.f64();
    Value v =
        e.elementwise(
             {u, w, coefficient}, {e.matrixMap(), e.matrixMap(), e.rowMap()},
             e.emptyLike(u, f32),
             [&](OpBuilder &nb, Location l, ValueRange args) {
               Value u64 = LinalgEmitter::extend(nb, l, args[0], f64);
               Value w64 = LinalgEmitter::extend(nb, l, args[1], f64);
               Value along = arith::MulFOp::create(nb, l, args[2], w64);
               Value v64 = arith::SubFOp::create(nb, l, u64, along);
               return SmallVector<Value>{
                   arith::TruncFOp::create(nb, l, f32, v64)};
             })
            .front();
    if (v.getType() != op.getType())
      v = tensor::CastOp::create(rewriter, op.getLoc(), op.getType(), v);
    rewriter.replaceOp(op, v);
    return success();
  }
};

struct LowerRowNormalize : LoweringPattern<RowNormalizeOp> {
  using LoweringPattern::LoweringPattern;
  LogicalResult matchAndRewrite(RowNormalizeOp op,
                                PatternRewriter &rewriter) const override {
    LinalgEmitter e(rewriter, op.getLoc(), useUkernels);
    Value v = op.getV();
    double eps = op.getEps().convertToDouble();
    double scale = op.getScale().convertToDouble();
    Value vv = e.rowSumOfProducts({v});
    Type f32 = e.f32(), f64 = e.f64();
    // scale / max(||v||, eps), one f64 factor a row.
    Value factor =
        e.perRow({vv}, [&](OpBuilder &nb, Location l, ValueRange args) {
          Value s = arith::ConstantOp::create(nb, l, f64,
                                              nb.getFloatAttr(f64, scale));
          return SmallVector<Value>{
              createSafeRatio(nb, l, s, args[0], eps, /*squared=*/false)};
        });
    Value d =
        e.elementwise({v, factor}, {e.matrixMap(), e.rowMap()},
                      e.emptyLike(v, f32),
                      [&](OpBuilder &nb, Location l, ValueRange args) {
                        Value v64 = LinalgEmitter::extend(nb, l, args[0], f64);
                        Value d64 = arith::MulFOp::create(nb, l, v64, args[1]);
                        return SmallVector<Value>{
                            arith::TruncFOp::create(nb, l, f32, d64)};
                      })
            .front();
    if (d.getType() != op.getType())
      d = tensor::CastOp::create(rewriter, op.getLoc(), op.getType(), d);
    rewriter.replaceOp(op, d);
    return success();
  }
};

struct LowerApplyUpdate : LoweringPattern<ApplyUpdateOp> {
  using LoweringPattern::LoweringPattern;
  LogicalResult matchAndRewrite(ApplyUpdateOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LinalgEmitter e(rewriter, loc);
    Type f32 = e.f32();
    Value decay = createDecayFactor(rewriter, loc, op.getLr(), op.getWd());
    Value negLr = arith::NegFOp::create(rewriter, loc, op.getLr());
    Value wNew =
        e.elementwise({op.getW(), op.getD()}, {e.matrixMap(), e.matrixMap()},
                      e.emptyLike(op.getW(), f32),
                      [&](OpBuilder &nb, Location l, ValueRange args) {
                        return SmallVector<Value>{createWeightUpdate(
                            nb, l, args[0], args[1], decay, negLr)};
                      })
            .front();
    if (wNew.getType() != op.getType())
      wNew = tensor::CastOp::create(rewriter, loc, op.getType(), wNew);
    rewriter.replaceOp(op, wNew);
    return success();
  }
};

/// The op-by-op form of the fused step: the contraction, then the epilogue
/// region inlined on the materialized gradient.
struct LowerFusedWgradStep : LoweringPattern<FusedWgradStepOp> {
  using LoweringPattern::LoweringPattern;
  LogicalResult matchAndRewrite(FusedWgradStepOp op,
                                PatternRewriter &rewriter) const override {
    Value g = emitWgrad(rewriter, op.getLoc(), op.getDy(), op.getX(),
                        op.getAcc(), op.getScale().convertToDouble(),
                        op.getGradType(), useUkernels);
    Block &body = op.getEpilogue().front();
    auto yield = cast<YieldOp>(body.getTerminator());
    SmallVector<Value> results(yield.getValues());
    rewriter.inlineBlockBefore(
        &body, op, {g, op.getW(), op.getM(), op.getLr(), op.getWd()});
    rewriter.eraseOp(yield);
    if (std::optional<StringRef> mode = op.getNonfinite()) {
      auto guard = SkipNonfiniteOp::create(
          rewriter, op.getLoc(), results[0].getType(), results[1].getType(),
          rewriter.getI64Type(), g, op.getW(), op.getM(), results[0],
          results[1], rewriter.getStringAttr(*mode));
      results.assign(guard->result_begin(), guard->result_end());
    }
    rewriter.replaceOp(op, results);
    return success();
  }
};

struct ConvertNoraToLinalgPass
    : nora::impl::ConvertNoraToLinalgBase<ConvertNoraToLinalgPass> {
  using Base::Base;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateNoraToLinalgPatterns(patterns, useUkernels);
    ConversionTarget target(getContext());
    target.addIllegalDialect<NoraDialect>();
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

Value mlir::nora::createPackedX(OpBuilder &builder, Location loc, Value x) {
  LinalgEmitter e(builder, loc);
  int64_t tile = ukernelTileCols();
  MLIRContext *ctx = builder.getContext();
  OpFoldResult tokens = tensor::getMixedSize(builder, loc, x, 0);
  OpFoldResult cols = tensor::getMixedSize(builder, loc, x, 1);
  AffineExpr n = builder.getAffineDimExpr(0);
  OpFoldResult tiles = affine::makeComposedFoldedAffineApply(
      builder, loc, n.ceilDiv(tile), {cols});
  Value packed =
      e.zeros(e.empty({tiles, tokens, builder.getIndexAttr(tile)}, e.f32()));
  AffineExpr k = builder.getAffineDimExpr(0), j = builder.getAffineDimExpr(1);
  SmallVector<AffineMap> maps = {
      AffineMap::get(2, 0, {k, j}, ctx),
      AffineMap::get(2, 0, {j.floorDiv(tile), k, j % tile}, ctx)};
  return e
      .generic(x, packed, maps,
               {IteratorType::parallel, IteratorType::parallel},
               [](OpBuilder &, Location, ValueRange args) {
                 return SmallVector<Value>{args[0]};
               })
      .front();
}

Value mlir::nora::createWgradPackedX(OpBuilder &builder, Location loc, Value dy,
                                     Value xPacked, OpFoldResult cols,
                                     Value acc, double scale,
                                     RankedTensorType gType) {
  return emitWgrad(builder, loc, dy, xPacked, acc, scale, gType,
                   /*useUkernels=*/true, cols);
}

Value mlir::nora::createExtendToF32(OpBuilder &builder, Location loc,
                                    Value tensor) {
  return LinalgEmitter(builder, loc).toF32(tensor);
}

void mlir::nora::populateNoraToLinalgPatterns(RewritePatternSet &patterns,
                                              bool useUkernels) {
  MLIRContext *context = patterns.getContext();
  populateNoraDecomposePatterns(patterns);
  populateNonfiniteGuardPatterns(patterns);
  patterns.add<LowerWgrad, LowerMomentum, LowerOrthProject, LowerRowNormalize,
               LowerApplyUpdate, LowerFusedWgradStep>(context, useUkernels);
}
