//===- CpuJit.cpp - compile a nora function and run it on the CPU -*- C++
//-*-===//

#include "nora/Runtime/CpuJit.h"

#include "nora/InitAllNora.h"
#include "nora/Pipelines/Pipelines.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "nora/Dialect/Nora/Transforms/Passes.h"
#include "nora/Runtime/Ukernels.h"
#include "llvm/ExecutionEngine/Orc/Mangling.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/TargetSelect.h"

#include <cstring>

using namespace mlir;
using namespace mlir::nora::runtime;

void mlir::nora::runtime::registerDialects(MLIRContext &context) {
  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerNoraDialect(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerOpenMPDialectTranslation(registry);
  context.appendDialectRegistry(registry);
}

static std::string typeString(Type type) {
  std::string str;
  llvm::raw_string_ostream os(str);
  os << type;
  return str;
}

std::string mlir::nora::runtime::checkSignature(func::FuncOp func) {
  FunctionType type = func.getFunctionType();
  for (auto [i, arg] : llvm::enumerate(type.getInputs())) {
    if (arg.isF32())
      continue;
    auto tensor = dyn_cast<RankedTensorType>(arg);
    Type elem = tensor ? tensor.getElementType() : Type();
    if (!tensor || !(elem.isF32() || elem.isBF16() || elem.isF16()))
      return "argument #" + std::to_string(i) + " of @" +
             func.getSymName().str() + " has type " + typeString(arg) +
             ": nora-run passes ranked tensors of f32, bf16 or f16 and f32 "
             "scalars";
  }
  auto isReturnable = [](Type t) { return t.isF32() || t.isInteger(64); };
  for (auto [i, result] : llvm::enumerate(type.getResults())) {
    if (isReturnable(result))
      continue;
    auto tensor = dyn_cast<RankedTensorType>(result);
    if (!tensor || !isReturnable(tensor.getElementType()))
      return "result #" + std::to_string(i) + " of @" +
             func.getSymName().str() + " has type " + typeString(result) +
             ": nora-run returns ranked f32 or i64 tensors and f32 or i64 "
             "scalars";
    if (!tensor.hasStaticShape())
      return "result #" + std::to_string(i) + " of @" +
             func.getSymName().str() + " has the dynamic type " +
             typeString(result) + ": nora-run needs static result shapes";
  }
  return "";
}

CompiledFunction::CompiledFunction(std::unique_ptr<ExecutionEngine> engine,
                                   std::string entry,
                                   std::vector<ResultLayout> results,
                                   std::vector<size_t> argumentElementSizes)
    : engine(std::move(engine)), entry(std::move(entry)),
      resultLayouts(std::move(results)),
      argumentElementSizes(std::move(argumentElementSizes)) {}

CompiledFunction::~CompiledFunction() = default;

namespace {
/// The memref descriptor the C interface expects, for any rank:
/// {allocated, aligned, offset, sizes[rank], strides[rank]}.
struct Descriptor {
  explicit Descriptor(void *data, const std::vector<int64_t> &shape)
      : fields(3 + 2 * shape.size()) {
    fields[0] = reinterpret_cast<int64_t>(data);
    fields[1] = reinterpret_cast<int64_t>(data);
    fields[2] = 0;
    int64_t stride = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      fields[3 + d] = shape[d];
      fields[3 + shape.size() + d] = stride;
      stride *= shape[d];
    }
    pointer = fields.data();
  }
  std::vector<int64_t> fields;
  void *pointer; ///< What the packed call receives a pointer to.
};
} // namespace

bool CompiledFunction::run(const std::vector<Argument> &arguments,
                           std::vector<Buffer> &results, std::string &error) {
  if (arguments.size() != argumentElementSizes.size()) {
    error = "@" + entry + " takes " +
            std::to_string(argumentElementSizes.size()) + " arguments, got " +
            std::to_string(arguments.size());
    return false;
  }
  std::vector<const void *> tensors(arguments.size(), nullptr);
  std::vector<std::vector<int64_t>> shapes(arguments.size());
  std::vector<float> scalars(arguments.size(), 0.0f);
  for (auto [i, argument] : llvm::enumerate(arguments)) {
    bool expectsTensor = argumentElementSizes[i] != 0;
    if (argument.isTensor != expectsTensor) {
      error = "argument #" + std::to_string(i) + " must be " +
              (expectsTensor ? "a tensor" : "an f32 scalar");
      return false;
    }
    if (!expectsTensor) {
      scalars[i] = argument.scalar;
      continue;
    }
    int64_t count = 1;
    for (int64_t d : argument.tensor.shape)
      count *= d;
    if (argument.tensor.data.size() !=
        size_t(count) * argumentElementSizes[i]) {
      error = "argument #" + std::to_string(i) +
              ": buffer size does not "
              "match its shape";
      return false;
    }
    tensors[i] = argument.tensor.data.data();
    shapes[i] = argument.tensor.shape;
  }
  results.resize(resultLayouts.size());
  std::vector<void *> resultData;
  for (auto [i, layout] : llvm::enumerate(resultLayouts)) {
    results[i].shape = layout.shape;
    results[i].isInteger = layout.isInteger;
    results[i].data.assign(resultByteSize(i), 0);
    resultData.push_back(results[i].data.data());
  }
  return runOnPointers(tensors, shapes, scalars, resultData, error);
}

size_t CompiledFunction::resultByteSize(size_t index) const {
  const ResultLayout &layout = resultLayouts[index];
  int64_t count = 1;
  for (int64_t d : layout.shape)
    count *= d;
  return size_t(count) * (layout.isInteger ? sizeof(int64_t) : sizeof(float));
}

bool CompiledFunction::runOnPointers(
    const std::vector<const void *> &tensors,
    const std::vector<std::vector<int64_t>> &shapes,
    const std::vector<float> &scalarValues,
    const std::vector<void *> &resultData, std::string &error) {
  size_t numArgs = argumentElementSizes.size();
  if (tensors.size() != numArgs || shapes.size() != numArgs ||
      scalarValues.size() != numArgs ||
      resultData.size() != resultLayouts.size()) {
    error = "@" + entry + " takes " + std::to_string(numArgs) +
            " arguments and " + std::to_string(resultLayouts.size()) +
            " results";
    return false;
  }
  std::vector<Descriptor> descriptors;
  descriptors.reserve(numArgs + resultLayouts.size());
  std::vector<float> scalars(scalarValues);
  std::vector<void *> packed;
  for (size_t i = 0; i < numArgs; ++i) {
    if (argumentElementSizes[i] == 0) {
      packed.push_back(&scalars[i]);
      continue;
    }
    if (!tensors[i]) {
      error = "argument #" + std::to_string(i) + " must be a tensor";
      return false;
    }
    descriptors.emplace_back(const_cast<void *>(tensors[i]), shapes[i]);
    packed.push_back(&descriptors.back().pointer);
  }
  for (auto [i, layout] : llvm::enumerate(resultLayouts)) {
    // A scalar result was wrapped into a 1-element tensor (see compile()).
    std::vector<int64_t> shape = layout.shape;
    if (shape.empty())
      shape = {1};
    descriptors.emplace_back(resultData[i], shape);
    packed.push_back(&descriptors.back().pointer);
  }
  if (llvm::Error err = engine->invokePacked("_mlir_ciface_" + entry, packed)) {
    error = "running @" + entry + " failed: " + llvm::toString(std::move(err));
    return false;
  }
  return true;
}

/// Returns the layout of each result of `func`, and makes each scalar result
/// a tensor<1xT> (tensor.from_elements before the return), so that every
/// result comes back through a caller-allocated buffer.
static std::vector<CompiledFunction::ResultLayout>
wrapScalarResults(func::FuncOp func) {
  std::vector<CompiledFunction::ResultLayout> layouts;
  SmallVector<Type> types;
  for (Type result : func.getFunctionType().getResults()) {
    CompiledFunction::ResultLayout layout;
    auto tensor = dyn_cast<RankedTensorType>(result);
    layout.isInteger = getElementTypeOrSelf(result).isInteger(64);
    if (tensor)
      layout.shape.assign(tensor.getShape().begin(), tensor.getShape().end());
    layouts.push_back(std::move(layout));
    types.push_back(tensor ? result : RankedTensorType::get({1}, result));
  }
  func.walk([&](func::ReturnOp ret) {
    OpBuilder builder(ret);
    for (OpOperand &operand : ret->getOpOperands())
      if (!isa<RankedTensorType>(operand.get().getType()))
        operand.set(tensor::FromElementsOp::create(builder, ret.getLoc(),
                                                   operand.get()));
  });
  func.setFunctionType(FunctionType::get(
      func.getContext(), func.getFunctionType().getInputs(), types));
  return layouts;
}

namespace {
/// An unranked memref as the lowered code passes it: its rank and a pointer
/// to the ranked descriptor {allocated, aligned, offset, sizes, strides}.
struct UnrankedMemref {
  int64_t rank;
  int64_t *descriptor;
};

void copyStrided(int64_t elemSize, int64_t rank, const int64_t *sizes,
                 const int64_t *srcStrides, const int64_t *dstStrides,
                 const char *src, char *dst) {
  if (rank == 0) {
    std::memcpy(dst, src, size_t(elemSize));
    return;
  }
  for (int64_t i = 0; i < sizes[0]; ++i)
    copyStrided(elemSize, rank - 1, sizes + 1, srcStrides + 1, dstStrides + 1,
                src + i * srcStrides[0] * elemSize,
                dst + i * dstStrides[0] * elemSize);
}

/// memref.copy of non-identity layouts (what MLIR's C runner utilities'
/// memrefCopy does).
extern "C" void noraMemrefCopy(int64_t elemSize, UnrankedMemref *src,
                               UnrankedMemref *dst) {
  int64_t rank = src->rank;
  const int64_t *s = src->descriptor, *d = dst->descriptor;
  const char *srcData = reinterpret_cast<const char *>(s[1]) + s[2] * elemSize;
  char *dstData = reinterpret_cast<char *>(d[1]) + d[2] * elemSize;
  copyStrided(elemSize, rank, s + 3, s + 3 + rank, d + 3 + rank, srcData,
              dstData);
}
} // namespace

std::unique_ptr<CompiledFunction>
mlir::nora::runtime::compile(ModuleOp module, llvm::StringRef entry,
                             const CompileOptions &options,
                             std::string &error) {
  auto func = module.lookupSymbol<func::FuncOp>(entry);
  if (!func) {
    error = "no function '" + entry.str() + "'";
    return nullptr;
  }
  error = checkSignature(func);
  if (!error.empty())
    return nullptr;

  if (!options.nonfinite.empty()) {
    PassManager guard(module.getContext());
    mlir::nora::NoraGuardNonfiniteOptions guardOptions;
    guardOptions.mode = options.nonfinite;
    guardOptions.appendCount = true;
    guard.addNestedPass<func::FuncOp>(
        mlir::nora::createNoraGuardNonfinite(guardOptions));
    if (failed(guard.run(module))) {
      error = "guarding @" + entry.str() +
              " against non-finite gradients failed (see the diagnostics "
              "above)";
      return nullptr;
    }
  }
  std::vector<CompiledFunction::ResultLayout> resultLayouts =
      wrapScalarResults(func);

  FunctionType type = func.getFunctionType();
  std::vector<size_t> elementSizes;
  OpBuilder builder(module.getContext());
  for (auto [i, arg] : llvm::enumerate(type.getInputs())) {
    auto tensor = dyn_cast<RankedTensorType>(arg);
    elementSizes.push_back(
        tensor ? tensor.getElementType().getIntOrFloatBitWidth() / 8 : 0);
    // Inputs are read-only: results go to their own buffers, so that the
    // same call can be repeated on the same inputs.
    if (tensor)
      func.setArgAttr(i, bufferization::BufferizationDialect::kWritableAttrName,
                      builder.getBoolAttr(false));
  }
  func->setAttr("llvm.emit_c_interface", builder.getUnitAttr());

  PassManager pm(module.getContext());
  mlir::nora::CpuPipelineOptions pipelineOptions;
  pipelineOptions.fuse = options.fuse;
  pipelineOptions.rowsPerPanel = options.rowsPerPanel;
  pipelineOptions.threads = options.threads;
  mlir::nora::buildCpuPipeline(pm, pipelineOptions);
  if (failed(pm.run(module))) {
    error = "lowering @" + entry.str() +
            " for the CPU failed (see the diagnostics above)";
    return nullptr;
  }

  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  std::function<llvm::Error(llvm::Module *)> optimize =
      makeOptimizingTransformer(/*optLevel=*/3, /*sizeLevel=*/0,
                                /*targetMachine=*/nullptr);
  ExecutionEngineOptions engineOptions;
  engineOptions.transformer = optimize;
  engineOptions.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Aggressive;
  // The OpenMP runtime (row panels on threads) comes from Debian's LLVM 22;
  // memrefCopy is ours (below), not libmlir_c_runner_utils.so, which would
  // load libMLIR and libLLVM into the global symbol scope, where a library
  // that bundles its own LLVM (triton, in a PyTorch process) binds to them.
  static const std::string libDir = NORA_LLVM_LIBDIR;
  std::vector<std::string> libraries;
  if (options.threads)
    libraries.push_back(libDir + "/libomp.so");
  SmallVector<StringRef> libraryRefs(libraries.begin(), libraries.end());
  engineOptions.sharedLibPaths = libraryRefs;
  auto engine = ExecutionEngine::create(module, engineOptions);
  if (!engine) {
    error = "JIT compilation of @" + entry.str() +
            " failed: " + llvm::toString(engine.takeError());
    return nullptr;
  }
  // The micro-kernels live in this binary.
  (*engine)->registerSymbols([](llvm::orc::MangleAndInterner interner) {
    llvm::orc::SymbolMap symbols;
    auto add = [&](const char *name, auto *function) {
      symbols[interner(name)] = {llvm::orc::ExecutorAddr::fromPtr(function),
                                 llvm::JITSymbolFlags::Exported};
    };
    add(mlir::nora::ukernel::kWgradSymbol, &_mlir_ciface_nora_wgrad_f32);
    add(mlir::nora::ukernel::kWgradPackedSymbol,
        &_mlir_ciface_nora_wgrad_packed_f32);
    add(mlir::nora::ukernel::kRowDotSymbol, &_mlir_ciface_nora_row_dot_f64);
    add(mlir::nora::ukernel::kRowSumSqSymbol, &_mlir_ciface_nora_row_sumsq_f64);
    add("memrefCopy", &noraMemrefCopy);
    return symbols;
  });
  return std::make_unique<CompiledFunction>(std::move(*engine), entry.str(),
                                            std::move(resultLayouts),
                                            std::move(elementSizes));
}
