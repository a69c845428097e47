//===- DistinctResultBuffers.cpp - one fresh buffer per result --*- C++ -*-===//

#include "nora/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::nora {
#define GEN_PASS_DEF_NORADISTINCTRESULTBUFFERS
#include "nora/Conversion/Passes.h.inc"
} // namespace mlir::nora

using namespace mlir;

namespace {

struct NoraDistinctResultBuffersPass
    : nora::impl::NoraDistinctResultBuffersBase<NoraDistinctResultBuffersPass> {
  void runOnOperation() override {
    getOperation().walk([](func::ReturnOp ret) {
      llvm::SmallPtrSet<Value, 4> seen;
      OpBuilder builder(ret);
      for (OpOperand &operand : ret->getOpOperands()) {
        Value value = operand.get();
        auto type = dyn_cast<MemRefType>(value.getType());
        if (!type)
          continue;
        bool fresh = value.getDefiningOp<memref::AllocOp>() != nullptr;
        if (fresh && seen.insert(value).second)
          continue;
        // An argument, a view, or a buffer already returned: copy it into a
        // buffer of its own.
        SmallVector<Value> sizes;
        for (int64_t d = 0; d < type.getRank(); ++d)
          if (type.isDynamicDim(d))
            sizes.push_back(
                memref::DimOp::create(builder, ret.getLoc(), value, d));
        auto own = MemRefType::get(type.getShape(), type.getElementType());
        Value copy = memref::AllocOp::create(builder, ret.getLoc(), own, sizes);
        memref::CopyOp::create(builder, ret.getLoc(), value, copy);
        Value result = copy;
        if (own != type)
          result = memref::CastOp::create(builder, ret.getLoc(), type, copy);
        operand.set(result);
        seen.insert(copy);
      }
    });
  }
};

} // namespace
