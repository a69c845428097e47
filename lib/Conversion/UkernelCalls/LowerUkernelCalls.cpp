//===- LowerUkernelCalls.cpp - library_call generics -> calls --*- C++ -*-===//

#include "nora/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::nora {
#define GEN_PASS_DEF_NORALOWERUKERNELCALLS
#include "nora/Conversion/Passes.h.inc"
} // namespace mlir::nora

using namespace mlir;
using namespace mlir::nora;

namespace {

/// memref<?x?xT, strided<[?, ?], offset: ?>>: what any view of a matrix casts
/// to, and what the micro-kernels take.
MemRefType fullyDynamic(MemRefType type) {
  SmallVector<int64_t> sizes(type.getRank(), ShapedType::kDynamic);
  SmallVector<int64_t> strides(type.getRank(), ShapedType::kDynamic);
  auto layout =
      StridedLayoutAttr::get(type.getContext(), ShapedType::kDynamic, strides);
  return MemRefType::get(sizes, type.getElementType(), layout,
                         type.getMemorySpace());
}

struct NoraLowerUkernelCallsPass
    : nora::impl::NoraLowerUkernelCallsBase<NoraLowerUkernelCallsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<linalg::GenericOp> calls;
    module.walk([&](linalg::GenericOp op) {
      std::optional<StringRef> name = op.getLibraryCall();
      if (name && name->starts_with("nora_") && op.hasPureBufferSemantics())
        calls.push_back(op);
    });
    SymbolTable symbols(module);
    for (linalg::GenericOp op : calls) {
      OpBuilder builder(op);
      Location loc = op.getLoc();
      SmallVector<Value> operands;
      for (Value operand : op->getOperands()) {
        auto type = cast<MemRefType>(operand.getType());
        operands.push_back(
            memref::CastOp::create(builder, loc, fullyDynamic(type), operand));
      }
      StringRef name = *op.getLibraryCall();
      auto fnType =
          builder.getFunctionType(ValueRange(operands).getTypes(), {});
      auto callee = symbols.lookup<func::FuncOp>(name);
      if (!callee) {
        OpBuilder moduleBuilder = OpBuilder::atBlockBegin(module.getBody());
        callee = func::FuncOp::create(moduleBuilder, loc, name, fnType);
        callee.setPrivate();
        callee->setAttr("llvm.emit_c_interface", moduleBuilder.getUnitAttr());
        symbols.insert(callee);
      } else if (callee.getFunctionType() != fnType) {
        op.emitOpError() << "micro-kernel '" << name << "' is declared as "
                         << callee.getFunctionType() << ", not " << fnType;
        return signalPassFailure();
      }
      func::CallOp::create(builder, loc, callee, operands);
      op.erase();
    }
  }
};

} // namespace
