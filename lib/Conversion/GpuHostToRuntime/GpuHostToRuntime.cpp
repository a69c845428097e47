//===- GpuHostToRuntime.cpp - host launches -> calls into the runtime -----===//
//
// The host side of nora-gpu-pipeline's output (buffers, workspace, zero-fill,
// gpu.launch_func) lowered to LLVM: each such function becomes an llvm.func
// on device pointers whose body embeds the step's artifact (plan.json, from
// lib/Artifact as nora-compile writes it, and the cubin) and calls
// nora_embedded_call in the runtime library, the same runtime that runs
// artifacts (nora-exec, Python). See docs/passes/nora-gpu-host-to-runtime.md.
//
//===----------------------------------------------------------------------===//

#include "nora/Artifact/StepArtifact.h"
#include "nora/Conversion/Passes.h"

#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::nora {
#define GEN_PASS_DEF_NORAGPUHOSTTORUNTIME
#include "nora/Conversion/Passes.h.inc"
} // namespace mlir::nora

using namespace mlir;
using namespace mlir::nora;

namespace {

constexpr StringLiteral kEntryPoint = "nora_embedded_call";
constexpr StringLiteral kCubinGlobal = "__nora_kernels_cubin";

/// A constant global holding `bytes` (i8 array), or the existing one.
LLVM::GlobalOp byteGlobal(OpBuilder &b, ModuleOp module, StringRef name,
                          StringRef bytes, uint64_t alignment) {
  if (auto existing = module.lookupSymbol<LLVM::GlobalOp>(name))
    return existing;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(module.getBody());
  auto type = LLVM::LLVMArrayType::get(b.getI8Type(), bytes.size());
  auto global = LLVM::GlobalOp::create(
      b, module.getLoc(), type, /*isConstant=*/true, LLVM::Linkage::Internal,
      name, b.getStringAttr(bytes), alignment);
  return global;
}

/// Declares `i32 nora_embedded_call(ptr cache, ptr plan, ptr cubin, i64
/// size, ptr tensors, ptr scalars, ptr results, ptr stream)`.
LLVM::LLVMFuncOp entryPoint(OpBuilder &b, ModuleOp module) {
  if (auto existing = module.lookupSymbol<LLVM::LLVMFuncOp>(kEntryPoint))
    return existing;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(module.getBody());
  Type ptr = LLVM::LLVMPointerType::get(b.getContext());
  auto type = LLVM::LLVMFunctionType::get(
      b.getI32Type(), {ptr, ptr, ptr, b.getI64Type(), ptr, ptr, ptr, ptr});
  return LLVM::LLVMFuncOp::create(b, module.getLoc(), kEntryPoint, type);
}

/// The chip the kernels were assembled for (the gpu.binary's NVVM target).
FailureOr<std::string> binaryChip(gpu::BinaryOp binary) {
  if (binary.getObjects().size() != 1)
    return binary.emitError("nora-gpu-host-to-runtime: expected one object "
                            "in @nora_kernels");
  auto object = cast<gpu::ObjectAttr>(binary.getObjects()[0]);
  auto target = dyn_cast<NVVM::NVVMTargetAttr>(object.getTarget());
  if (!target)
    return binary.emitError("nora-gpu-host-to-runtime: @nora_kernels is not "
                            "an NVVM object");
  if (object.getFormat() != gpu::CompilationTarget::Binary)
    return binary.emitError("nora-gpu-host-to-runtime: the kernels are not a "
                            "cubin (run nora-gpu-pipeline with format=bin)");
  return target.getChip().str();
}

/// Replaces `func` by the llvm.func that calls the runtime on `artifact`.
void lowerFunction(OpBuilder &b, ModuleOp module, func::FuncOp func,
                   const StepArtifact &artifact, LLVM::GlobalOp cubin) {
  MLIRContext *ctx = b.getContext();
  Location loc = func.getLoc();
  std::string name = func.getSymName().str();
  Type ptr = LLVM::LLVMPointerType::get(ctx);
  Type i64 = b.getI64Type(), f32 = b.getF32Type();

  // The plan (NUL-terminated) and the loaded-artifact cache.
  std::string planText = artifact.planJson;
  planText.push_back('\0');
  LLVM::GlobalOp plan =
      byteGlobal(b, module, "__nora_plan_" + name, planText, 1);
  LLVM::GlobalOp cache;
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(module.getBody());
    cache = LLVM::GlobalOp::create(b, loc, ptr, /*isConstant=*/false,
                                   LLVM::Linkage::Internal,
                                   "__nora_cache_" + name, Attribute());
    Block *init = b.createBlock(&cache.getInitializerRegion());
    b.setInsertionPointToStart(init);
    LLVM::ReturnOp::create(b, loc, LLVM::ZeroOp::create(b, loc, ptr));
  }
  LLVM::LLVMFuncOp callee = entryPoint(b, module);

  // i32 @name(tensors as ptr, scalars as f32, results as ptr, ptr stream).
  ArrayRef<Type> inputs = func.getArgumentTypes();
  SmallVector<Type> params;
  for (Type type : inputs)
    params.push_back(type.isF32() ? f32 : ptr);
  size_t numResults = func.getNumResults();
  params.append(numResults + 1, ptr);
  b.setInsertionPoint(func);
  auto lowered = LLVM::LLVMFuncOp::create(
      b, loc, name + ".nora_lowered",
      LLVM::LLVMFunctionType::get(b.getI32Type(), params));
  Block *body = lowered.addEntryBlock(b);
  b.setInsertionPointToStart(body);

  auto i64Const = [&](int64_t v) -> Value {
    return LLVM::ConstantOp::create(b, loc, i64, b.getI64IntegerAttr(v));
  };
  // Arrays of the call: tensors[i] (device pointer or 0), scalars[i] (value
  // or 0), results[k].
  auto array = [&](Type elem, size_t count) -> Value {
    auto type = LLVM::LLVMArrayType::get(elem, std::max<size_t>(count, 1));
    return LLVM::AllocaOp::create(b, loc, ptr, type, i64Const(1), 8);
  };
  auto store = [&](Value array, Type elem, size_t count, size_t index,
                   Value value) {
    auto type = LLVM::LLVMArrayType::get(elem, std::max<size_t>(count, 1));
    Value slot = LLVM::GEPOp::create(
        b, loc, ptr, type, array,
        ArrayRef<LLVM::GEPArg>{0, static_cast<int32_t>(index)});
    LLVM::StoreOp::create(b, loc, value, slot);
  };
  size_t n = inputs.size();
  Value tensors = array(i64, n), scalars = array(f32, n);
  Value zeroF = LLVM::ConstantOp::create(b, loc, f32, b.getF32FloatAttr(0));
  for (size_t i = 0; i < n; ++i) {
    Value arg = body->getArgument(i);
    bool isScalar = inputs[i].isF32();
    store(tensors, i64, n, i,
          isScalar ? i64Const(0) : LLVM::PtrToIntOp::create(b, loc, i64, arg));
    store(scalars, f32, n, i, isScalar ? arg : zeroF);
  }
  Value results = array(i64, numResults);
  for (size_t k = 0; k < numResults; ++k)
    store(results, i64, numResults, k,
          LLVM::PtrToIntOp::create(b, loc, i64, body->getArgument(n + k)));
  Value stream = body->getArgument(n + numResults);
  auto call =
      LLVM::CallOp::create(b, loc, callee,
                           ValueRange{LLVM::AddressOfOp::create(b, loc, cache),
                                      LLVM::AddressOfOp::create(b, loc, plan),
                                      LLVM::AddressOfOp::create(b, loc, cubin),
                                      i64Const(int64_t(artifact.cubin.size())),
                                      tensors, scalars, results, stream});
  LLVM::ReturnOp::create(b, loc, call.getResult());

  func.erase();
  lowered.setSymName(name);
}

struct NoraGpuHostToRuntimePass
    : public nora::impl::NoraGpuHostToRuntimeBase<NoraGpuHostToRuntimePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> steps;
    for (auto func : module.getOps<func::FuncOp>())
      if (!func.isExternal() &&
          !func.getBody().getOps<gpu::LaunchFuncOp>().empty())
        steps.push_back(func);
    if (steps.empty())
      return;
    auto binary = module.lookupSymbol<gpu::BinaryOp>("nora_kernels");
    if (!binary) {
      module.emitError("nora-gpu-host-to-runtime: no gpu.binary "
                       "@nora_kernels (run nora-gpu-pipeline first)");
      return signalPassFailure();
    }
    FailureOr<std::string> chip = binaryChip(binary);
    if (failed(chip))
      return signalPassFailure();
    // Every plan first: nothing is rewritten unless every step lowers.
    SmallVector<StepArtifact> artifacts;
    for (func::FuncOp func : steps) {
      FailureOr<StepArtifact> artifact =
          extractStepArtifact(module, func.getSymName(), *chip);
      if (failed(artifact))
        return signalPassFailure();
      artifacts.push_back(std::move(*artifact));
    }
    OpBuilder b(module.getContext());
    LLVM::GlobalOp cubin =
        byteGlobal(b, module, kCubinGlobal, artifacts.front().cubin, 64);
    for (auto [func, artifact] : llvm::zip(steps, artifacts))
      lowerFunction(b, module, func, artifact, cubin);
    if (SymbolTable::symbolKnownUseEmpty(binary, module))
      binary.erase();
  }
};

} // namespace
