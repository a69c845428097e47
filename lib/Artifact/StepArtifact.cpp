//===- StepArtifact.cpp - compile a step into a GPU artifact ---*- C++ -*-===//
//
// After the GPU pipeline, the entry function holds only what
// nora-fused-step-to-gpu writes:
//
//   %b  = bufferization.to_buffer %arg_i        -> {"argument": i}
//   %r  = memref.alloc()                        -> {"result": k} when
//         %t = bufferization.to_tensor %r          result k of the function
//   %ws = memref.alloc() {nora.workspace}          (placed in the plan's
//         %v = memref.view %ws[off]             -> {"workspace": base + off}
//         gpu.memset %v (or %ws), 0             -> "workspace_zero": the
//                                                  ranges zeroed every call
//         gpu.memset %v, 0 {nora.zero_once}     -> "workspace_zero_once":
//                                                  zeroed at allocation (the
//                                                  kernels leave them at 0)
//   gpu.launch_func @nora_kernels::@k ... {nora.persistent_tiles = K}
//       [clusters in (%c, 1, 1)]                -> "cluster": [c, 1, 1]
//
// and each launch becomes one kernel of plan.json. The kernels' cubin is the
// gpu.binary @nora_kernels.
//
//===----------------------------------------------------------------------===//

#include "nora/Artifact/StepArtifact.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::nora;
namespace json = llvm::json;

namespace {

constexpr StringLiteral kCubinFile = "kernel0.cubin";

/// "f32", "bf16", "f16", or "" for anything else.
StringRef dtypeName(Type type) {
  if (type.isF32())
    return "f32";
  if (type.isBF16())
    return "bf16";
  if (type.isF16())
    return "f16";
  return "";
}

json::Value tensorSpec(StringRef name, RankedTensorType type) {
  json::Array shape;
  for (int64_t d : type.getShape())
    shape.push_back(d);
  return json::Object{{"name", name.str()},
                      {"kind", "tensor"},
                      {"dtype", dtypeName(type.getElementType())},
                      {"shape", std::move(shape)}};
}

class PlanBuilder {
public:
  PlanBuilder(func::FuncOp func) : func(func) {}

  LogicalResult build(StringRef chip, json::Object &plan);

private:
  LogicalResult checkBody();
  /// The workspace ranges the function's gpu.memset ops zero: every call,
  /// or (nora.zero_once) when the runtime allocates the workspace.
  LogicalResult zeroRanges(json::Array &ranges, json::Array &onceRanges);
  FailureOr<json::Value> param(gpu::LaunchFuncOp launch, Value operand);
  FailureOr<json::Value> kernel(gpu::LaunchFuncOp launch);

  func::FuncOp func;
  /// The function result each result buffer becomes.
  DenseMap<Value, unsigned> resultOfBuffer;
  /// Byte offsets of workspace allocations in the plan's workspace.
  DenseMap<Value, int64_t> workspaceBase;
  int64_t workspaceBytes = 0;
  /// The launches' TMA descriptors ("tensor_maps", plan version 2).
  json::Array tensorMaps;
  SmallVector<std::string> argumentNames, resultNames;
  llvm::StringSet<> usedNames;
};

} // namespace

LogicalResult PlanBuilder::checkBody() {
  if (!func.getBody().hasOneBlock())
    return func.emitError("GPU artifact: the entry function must have one "
                          "block (no control flow runs on the host)");
  for (Operation &op : func.getBody().front()) {
    if (isa<bufferization::ToBufferOp, bufferization::ToTensorOp,
            memref::AllocOp, memref::ViewOp, gpu::MemsetOp, gpu::LaunchFuncOp,
            func::ReturnOp>(op) ||
        op.hasTrait<OpTrait::ConstantLike>())
      continue;
    // A 0-d result read back (a guarded step's i64 count): the runtime
    // copies the buffer.
    if (auto extract = dyn_cast<tensor::ExtractOp>(op))
      if (extract.getIndices().empty() &&
          extract.getTensor().getDefiningOp<bufferization::ToTensorOp>())
        continue;
    return op.emitError("GPU artifact: '")
           << op.getName()
           << "' cannot run in a GPU artifact: only optimizer steps (fused "
              "with their weight gradient or on a given one) and weight "
              "gradients run on the GPU";
  }
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  for (auto [index, value] : llvm::enumerate(ret.getOperands())) {
    if (auto extract = value.getDefiningOp<tensor::ExtractOp>())
      value = extract.getTensor();
    auto toTensor = value.getDefiningOp<bufferization::ToTensorOp>();
    auto alloc = toTensor
                     ? toTensor.getBuffer().getDefiningOp<memref::AllocOp>()
                     : memref::AllocOp();
    if (!alloc || alloc->hasAttr("nora.workspace"))
      return ret.emitError("GPU artifact: result #")
             << index
             << " is not written by a GPU kernel (a result must be the "
                "new weight or momentum of a step, or a gradient)";
    if (resultOfBuffer.count(alloc))
      return ret.emitError("GPU artifact: result #")
             << index << " repeats an earlier result (results get distinct "
             << "buffers)";
    resultOfBuffer[alloc] = index;
  }
  for (Operation &op : func.getBody().front())
    if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
      // The workspace allocations, and the buffers between kernels that
      // are no result (a gradient that a later kernel reads), are placed in
      // the plan's workspace. Each is written by a kernel before it is read.
      if (alloc->hasAttr("nora.workspace") || !resultOfBuffer.count(alloc)) {
        MemRefType type = alloc.getType();
        if (!type.hasStaticShape())
          return alloc.emitError("GPU artifact: a buffer of dynamic shape");
        int64_t bytes = type.getNumElements() *
                        llvm::divideCeil(type.getElementTypeBitWidth(), 8);
        workspaceBase[alloc] = workspaceBytes;
        workspaceBytes += llvm::alignTo(bytes, 256);
      }
    }
  return success();
}

FailureOr<json::Value> PlanBuilder::param(gpu::LaunchFuncOp launch,
                                          Value operand) {
  if (auto arg = dyn_cast<BlockArgument>(operand))
    return json::Value(json::Object{{"argument", arg.getArgNumber()}});
  Operation *def = operand.getDefiningOp();
  if (auto toBuffer = dyn_cast<bufferization::ToBufferOp>(def))
    if (auto arg = dyn_cast<BlockArgument>(toBuffer.getTensor()))
      return json::Value(json::Object{{"argument", arg.getArgNumber()}});
  if (auto alloc = dyn_cast<memref::AllocOp>(def)) {
    auto it = resultOfBuffer.find(alloc);
    if (it != resultOfBuffer.end())
      return json::Value(json::Object{{"result", it->second}});
    auto inWorkspace = workspaceBase.find(alloc);
    if (inWorkspace != workspaceBase.end())
      return json::Value(json::Object{{"workspace", inWorkspace->second}});
  }
  if (auto view = dyn_cast<memref::ViewOp>(def)) {
    auto it = workspaceBase.find(view.getSource());
    std::optional<int64_t> shift = getConstantIntValue(view.getByteShift());
    if (it != workspaceBase.end() && shift && *shift % 16 == 0)
      return json::Value(json::Object{{"workspace", it->second + *shift}});
  }
  if (auto constant = dyn_cast<arith::ConstantIntOp>(def)) {
    unsigned width = constant.getType().getIntOrFloatBitWidth();
    if (width == 32 || width == 64)
      return json::Value(
          json::Object{{width == 32 ? "i32" : "i64", constant.value()}});
  }
  return launch.emitError("GPU artifact: kernel operand ")
         << operand << " cannot be passed by the runtime";
}

LogicalResult PlanBuilder::zeroRanges(json::Array &ranges,
                                      json::Array &onceRanges) {
  for (auto memset : func.getBody().front().getOps<gpu::MemsetOp>()) {
    std::optional<int64_t> value = getConstantIntValue(memset.getValue());
    if (!value || *value != 0)
      return memset.emitError("GPU artifact: the runtime zero-fills, a "
                              "gpu.memset must write 0");
    Value dst = memset.getDst();
    int64_t offset = 0;
    if (auto view = dst.getDefiningOp<memref::ViewOp>()) {
      std::optional<int64_t> shift = getConstantIntValue(view.getByteShift());
      if (!shift)
        return memset.emitError("GPU artifact: a gpu.memset of a view at a "
                                "dynamic offset");
      offset = *shift;
      dst = view.getSource();
    }
    auto it = workspaceBase.find(dst);
    if (it == workspaceBase.end())
      return memset.emitError("GPU artifact: only the workspace is zero-"
                              "filled by the runtime (a gpu.memset of another "
                              "buffer)");
    auto type = cast<MemRefType>(memset.getDst().getType());
    int64_t bytes = type.getNumElements() *
                    llvm::divideCeil(type.getElementTypeBitWidth(), 8);
    (memset->hasAttr("nora.zero_once") ? onceRanges : ranges)
        .push_back(json::Array{it->second + offset, bytes});
  }
  return success();
}

FailureOr<json::Value> PlanBuilder::kernel(gpu::LaunchFuncOp launch) {
  auto tiles = launch->getAttrOfType<IntegerAttr>("nora.persistent_tiles");
  if (!tiles)
    return launch.emitError("GPU artifact: a launch without "
                            "nora.persistent_tiles (not written by "
                            "nora-fused-step-to-gpu)");
  json::Array block;
  for (Value size : {launch.getBlockSizeX(), launch.getBlockSizeY(),
                     launch.getBlockSizeZ()}) {
    std::optional<int64_t> v = getConstantIntValue(size);
    if (!v)
      return launch.emitError("GPU artifact: the block size must be constant");
    block.push_back(*v);
  }
  // Thread-block clusters (the cluster row exchange): [x, 1, 1].
  json::Array cluster{1, 1, 1};
  if (launch.hasClusterSize()) {
    int64_t k = 0;
    for (Value size : {launch.getClusterSizeX(), launch.getClusterSizeY(),
                       launch.getClusterSizeZ()}) {
      std::optional<int64_t> v = getConstantIntValue(size);
      if (!v || *v < 1)
        return launch.emitError("GPU artifact: the cluster size must be "
                                "constant and positive");
      cluster[k++] = *v;
    }
  }
  int64_t dynamicShared = 0;
  if (Value size = launch.getDynamicSharedMemorySize()) {
    std::optional<int64_t> v = getConstantIntValue(size);
    if (!v || *v < 0)
      return launch.emitError("GPU artifact: the dynamic shared memory size "
                              "must be a constant");
    dynamicShared = *v;
  }
  json::Array params;
  for (Value operand : launch.getKernelOperands()) {
    FailureOr<json::Value> p = param(launch, operand);
    if (failed(p))
      return failure();
    params.push_back(std::move(*p));
  }
  // TMA descriptors: the runtime encodes each for a function argument and
  // writes it where a workspace operand of the launch points.
  if (Attribute attr = launch->getAttr("nora.tensor_maps")) {
    auto maps = dyn_cast<ArrayAttr>(attr);
    if (!maps)
      return launch.emitError("GPU artifact: nora.tensor_maps must be an "
                              "array of dictionaries");
    for (Attribute entry : maps) {
      auto dict = dyn_cast<DictionaryAttr>(entry);
      auto operand = dict ? dict.getAs<IntegerAttr>("operand") : nullptr;
      auto tensor = dict ? dict.getAs<IntegerAttr>("tensor") : nullptr;
      auto box = dict ? dict.getAs<DenseI64ArrayAttr>("box") : nullptr;
      auto swizzle = dict ? dict.getAs<IntegerAttr>("swizzle") : nullptr;
      int64_t count = int64_t(params.size());
      if (!operand || !tensor || !box || !swizzle || operand.getInt() < 0 ||
          operand.getInt() >= count || tensor.getInt() < 0 ||
          tensor.getInt() >= count)
        return launch.emitError("GPU artifact: a nora.tensor_maps entry "
                                "needs operand, tensor (operand indices), "
                                "box and swizzle");
      const json::Object *at = params[size_t(operand.getInt())].getAsObject();
      const json::Object *of = params[size_t(tensor.getInt())].getAsObject();
      std::optional<int64_t> offset = at->getInteger("workspace");
      std::optional<int64_t> argument = of->getInteger("argument");
      if (!offset || !argument)
        return launch.emitError("GPU artifact: a tensor map must be a "
                                "workspace view and describe a function "
                                "argument");
      json::Array boxDims;
      for (int64_t d : box.asArrayRef())
        boxDims.push_back(d);
      tensorMaps.push_back(json::Object{{"workspace", *offset},
                                        {"argument", *argument},
                                        {"box", std::move(boxDims)},
                                        {"swizzle", swizzle.getInt()}});
    }
  }
  // Name the function's arguments and results after their role in the
  // first step that uses them (dy, x, w, ..., w_new; dy_1, ... for the
  // second step).
  auto roles = launch->getAttrOfType<ArrayAttr>("nora.operand_roles");
  if (!roles || roles.size() != launch.getKernelOperands().size() ||
      !llvm::all_of(roles, [](Attribute a) { return isa<StringAttr>(a); }))
    return launch.emitError("GPU artifact: a launch without one "
                            "nora.operand_roles string per operand (not "
                            "written by nora-fused-step-to-gpu)");
  for (auto [operand, roleAttr] :
       llvm::zip(launch.getKernelOperands(), roles)) {
    StringRef role = cast<StringAttr>(roleAttr).getValue();
    Value source = operand;
    if (auto toBuffer = source.getDefiningOp<bufferization::ToBufferOp>())
      source = toBuffer.getTensor();
    std::string *slot = nullptr;
    if (auto arg = dyn_cast<BlockArgument>(source))
      slot = &argumentNames[arg.getArgNumber()];
    else if (resultOfBuffer.count(source))
      slot = &resultNames[resultOfBuffer[source]];
    if (!slot || !slot->empty())
      continue;
    std::string name = role.str();
    for (int k = 1; usedNames.count(name); ++k)
      name = role.str() + "_" + std::to_string(k);
    usedNames.insert(name);
    *slot = name;
  }
  return json::Value(
      json::Object{{"name", launch.getKernelName().getValue().str()},
                   {"cubin", kCubinFile},
                   {"block", std::move(block)},
                   {"grid", json::Object{{"persistent", tiles.getInt()}}},
                   {"dynamic_shared_bytes", dynamicShared},
                   {"cooperative", launch->hasAttr("nora.cooperative")},
                   {"cluster", std::move(cluster)},
                   {"params", std::move(params)}});
}

LogicalResult PlanBuilder::build(StringRef chip, json::Object &plan) {
  if (failed(checkBody()))
    return failure();
  argumentNames.assign(func.getNumArguments(), "");
  resultNames.assign(func.getNumResults(), "");
  json::Array kernels;
  for (auto launch : func.getBody().front().getOps<gpu::LaunchFuncOp>()) {
    FailureOr<json::Value> k = kernel(launch);
    if (failed(k))
      return failure();
    kernels.push_back(std::move(*k));
  }
  if (kernels.empty())
    return func.emitError("GPU artifact: @")
           << func.getSymName() << " has no fused optimizer step to run";

  json::Array arguments;
  for (auto [index, type] : llvm::enumerate(func.getArgumentTypes())) {
    std::string name = argumentNames[index].empty()
                           ? "arg" + std::to_string(index)
                           : argumentNames[index];
    if (type.isF32()) {
      arguments.push_back(json::Object{
          {"name", std::string(name)}, {"kind", "scalar"}, {"dtype", "f32"}});
      continue;
    }
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor || !tensor.hasStaticShape() ||
        dtypeName(tensor.getElementType()).empty())
      return func.emitError("GPU artifact: argument #")
             << index << " has type " << type
             << " (an artifact takes static f32/bf16/f16 tensors and f32 "
                "scalars)";
    arguments.push_back(tensorSpec(name, tensor));
  }
  json::Array results;
  bool scalarResults = false;
  for (auto [index, type] : llvm::enumerate(func.getResultTypes())) {
    std::string name = resultNames[index];
    // An i64 scalar: a guarded step's count (plan version 3).
    if (type.isInteger(64)) {
      results.push_back(
          json::Object{{"name", name}, {"kind", "scalar"}, {"dtype", "i64"}});
      scalarResults = true;
      continue;
    }
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor || !tensor.getElementType().isF32())
      return func.emitError("GPU artifact: result #")
             << index << " has type " << type
             << " (results are f32 tensors and i64 counts)";
    results.push_back(tensorSpec(name, tensor));
  }
  json::Array zero, zeroOnce;
  if (failed(zeroRanges(zero, zeroOnce)))
    return failure();
  // The oldest version that reads every key of the plan: 2 tensor maps,
  // 3 i64 results, 4 zero-once ranges.
  int64_t version = !zeroOnce.empty()     ? 4
                    : scalarResults       ? 3
                    : !tensorMaps.empty() ? 2
                                          : 1;
  plan = json::Object{
      {"format", "nora-artifact"},         {"version", version},
      {"entry", func.getSymName().str()},  {"chip", chip.str()},
      {"arguments", std::move(arguments)}, {"results", std::move(results)},
      {"workspace_bytes", workspaceBytes}, {"kernels", std::move(kernels)}};
  plan["workspace_zero"] = std::move(zero);
  if (!zeroOnce.empty())
    plan["workspace_zero_once"] = std::move(zeroOnce);
  if (!tensorMaps.empty())
    plan["tensor_maps"] = std::move(tensorMaps);
  return success();
}

FailureOr<StepArtifact> mlir::nora::extractStepArtifact(ModuleOp module,
                                                        StringRef entry,
                                                        StringRef chip) {
  auto func = module.lookupSymbol<func::FuncOp>(entry);
  if (!func || func.isExternal())
    return module.emitError("GPU artifact: no function @") << entry;
  StepArtifact artifact;
  json::Object plan;
  if (failed(PlanBuilder(func).build(chip, plan)))
    return failure();
  artifact.numKernels = plan.getArray("kernels")->size();
  llvm::raw_string_ostream os(artifact.planJson);
  os << llvm::formatv("{0:2}", json::Value(std::move(plan))) << "\n";

  auto binary = module.lookupSymbol<gpu::BinaryOp>("nora_kernels");
  if (!binary || binary.getObjects().size() != 1)
    return module.emitError("GPU artifact: no gpu.binary @nora_kernels with "
                            "one object (run the GPU pipeline with "
                            "format=bin)");
  auto object = cast<gpu::ObjectAttr>(binary.getObjects()[0]);
  if (object.getFormat() != gpu::CompilationTarget::Binary)
    return binary.emitError("GPU artifact: the kernels are not a cubin");
  artifact.cubin = object.getObject().getValue().str();
  return artifact;
}

LogicalResult mlir::nora::writeStepArtifact(const StepArtifact &artifact,
                                            StringRef dir, std::string &error) {
  namespace fs = llvm::sys::fs;
  auto fail = [&](const Twine &what, std::error_code ec = {}) {
    error = what.str();
    if (ec)
      error += ": " + ec.message();
    return failure();
  };
  SmallString<256> target(dir);
  llvm::sys::path::remove_dots(target, /*remove_dot_dot=*/true);
  if (target.empty())
    return fail("no output directory");
  if (fs::exists(target)) {
    if (!fs::is_directory(target))
      return fail("'" + target + "' exists and is not a directory");
    SmallString<256> oldPlan(target);
    llvm::sys::path::append(oldPlan, "plan.json");
    std::error_code ec;
    bool empty = fs::directory_iterator(target, ec) == fs::directory_iterator();
    if (!empty && !fs::exists(oldPlan))
      return fail("'" + target +
                  "' exists and is not an artifact (no plan.json); not "
                  "replacing it");
  }
  // A fresh directory beside the target, renamed over it when complete.
  SmallString<256> staging;
  std::error_code ec = fs::createUniqueDirectory(target + ".partial", staging);
  if (ec)
    return fail("cannot create a directory beside '" + target + "'", ec);
  llvm::scope_exit cleanup([&] { fs::remove_directories(staging); });
  auto writeFile = [&](StringRef name, StringRef bytes) -> LogicalResult {
    SmallString<256> path(staging);
    llvm::sys::path::append(path, name);
    std::error_code fileEc;
    llvm::raw_fd_ostream os(path, fileEc, fs::OF_None);
    if (fileEc)
      return fail("cannot write '" + path + "'", fileEc);
    os << bytes;
    os.close();
    if (os.has_error())
      return fail("cannot write '" + path + "'", os.error());
    return success();
  };
  if (failed(writeFile("plan.json", artifact.planJson)) ||
      failed(writeFile(kCubinFile, artifact.cubin)))
    return failure();
  if (fs::exists(target) && (ec = fs::remove_directories(target)))
    return fail("cannot replace '" + target + "'", ec);
  if ((ec = fs::rename(staging, target)))
    return fail("cannot move the artifact to '" + target + "'", ec);
  cleanup.release();
  return success();
}
