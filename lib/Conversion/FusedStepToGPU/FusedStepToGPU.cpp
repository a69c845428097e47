//===- FusedStepToGPU.cpp - fused step -> one persistent GPU kernel -*- C++
//-*-//
//
//   %wn, %mn = nora.fused_wgrad_step dy(%dy) x(%x) w(%w) m(%m) lr wd { chain }
//
// becomes, with the kernel added to `gpu.module @nora_kernels`,
//
//   %dyb = bufferization.to_buffer %dy read_only   (x, [acc], w, m alike)
//   %wnb = memref.alloc()  %mnb = memref.alloc()
//   %ws  = memref.alloc() {nora.workspace}  : memref<B x i8>
//   %cnt = memref.view %ws[0] : i32 counters, %st = memref.view %ws[off] : f64
//   gpu.memset %cnt, 0 {nora.zero_once}   (when the workspace is allocated:
//                                          the kernel leaves them at 0)
//   gpu.launch_func @nora_kernels::@nora_fused_step_0
//       blocks in (tiles, 1, 1) threads in (256, 1, 1)
//       args(%dyb, %xb, %wb, %mb, %lr, %wd, %wnb, %mnb, %cnt, %st)
//       {nora.persistent_tiles = tiles, nora.cooperative,
//        nora.operand_roles = ["dy", "x", "w", "m", "lr", "wd", "w_new", ...]}
//   %wn = bufferization.to_tensor %wnb restrict   (and %mn)
//
// The buffers follow the runtime's launch convention (docs/artifact.md): they
// live on the device, and the runtime launches min(tiles, resident CTAs)
// cooperatively. nora-compile turns this form into an artifact.
//
//===----------------------------------------------------------------------===//

#include "FusedStepKernel.h"

#include "nora/Conversion/Passes.h"
#include "nora/Dialect/Nora/IR/NoraOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::nora {
#define GEN_PASS_DEF_NORAFUSEDSTEPTOGPU
#include "nora/Conversion/Passes.h.inc"
} // namespace mlir::nora

using namespace mlir;
using namespace mlir::nora;

namespace {

constexpr StringLiteral kKernelModule = "nora_kernels";

/// The static shapes of `op`, or an error on it.
FailureOr<FusedStepShape> getShape(FusedWgradStepOp op) {
  auto dyType = cast<RankedTensorType>(op.getDy().getType());
  auto xType = cast<RankedTensorType>(op.getX().getType());
  auto wType = cast<RankedTensorType>(op.getW().getType());
  for (RankedTensorType type : {dyType, xType, wType})
    if (!type.hasStaticShape())
      return op.emitOpError("cannot be lowered to the GPU: dynamic shape ")
             << type << " (a GPU step is compiled for static shapes)";
  // Each size below 2^31 (a CUDA grid dimension's range): then every count
  // the kernel and its workspace derive from them fits in 64 bits.
  for (RankedTensorType type : {dyType, xType, wType})
    for (int64_t size : type.getShape())
      if (size > std::numeric_limits<int32_t>::max())
        return op.emitOpError("cannot be lowered to the GPU: size ")
               << size << " of " << type << " is 2^31 or more";
  FusedStepShape shape;
  shape.rows = wType.getDimSize(0);
  shape.cols = wType.getDimSize(1);
  shape.tokens = dyType.getDimSize(0);
  if (shape.rows == 0 || shape.cols == 0)
    return op.emitOpError("cannot be lowered to the GPU: the weight ")
           << wType << " is empty";
  shape.dyElem = dyType.getElementType();
  shape.xElem = xType.getElementType();
  shape.hasAcc = static_cast<bool>(op.getAcc());
  shape.gradScale = op.getScale().convertToDouble();
  return shape;
}

gpu::GPUModuleOp getOrCreateKernelModule(ModuleOp module) {
  if (auto existing = module.lookupSymbol<gpu::GPUModuleOp>(kKernelModule))
    return existing;
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  b.getUnitAttr());
  return gpu::GPUModuleOp::create(b, module.getLoc(), kKernelModule);
}

/// The option value of `--nora-fused-step-to-gpu=mainloop=...`.
enum class MainloopChoice {
  Auto,
  Simt,
  MmaSync,
  Wgmma,
  WgmmaWs,
  WgmmaPingPong,
  WgmmaTall,
  WgmmaWide
};

/// Each choice's option value, in kGpuMainloopNames's order.
constexpr std::pair<StringLiteral, MainloopChoice> kMainloopChoices[] = {
    {"auto", MainloopChoice::Auto},
    {"simt", MainloopChoice::Simt},
    {"mma-sync", MainloopChoice::MmaSync},
    {"wgmma", MainloopChoice::Wgmma},
    {"wgmma-ws", MainloopChoice::WgmmaWs},
    {"wgmma-pingpong", MainloopChoice::WgmmaPingPong},
    {"wgmma-tall", MainloopChoice::WgmmaTall},
    {"wgmma-wide", MainloopChoice::WgmmaWide},
};

/// The value of option value `name` in `table` (none when it has none).
template <typename T, size_t N>
std::optional<T> parseOptionValue(const std::pair<StringLiteral, T> (&table)[N],
                                  StringRef name) {
  for (auto [value, choice] : table)
    if (value == name)
      return choice;
  return std::nullopt;
}

std::optional<MainloopChoice> parseMainloopChoice(StringRef name) {
  return parseOptionValue(kMainloopChoices, name);
}

/// The mainloop of a warp-specialized choice (wgmma-ws, wgmma-pingpong,
/// wgmma-tall, wgmma-wide); none for the others.
std::optional<FusedStepMainloop>
warpSpecializedMainloop(std::optional<MainloopChoice> choice) {
  if (!choice)
    return std::nullopt;
  switch (*choice) {
  case MainloopChoice::WgmmaWs:
    return FusedStepMainloop::WgmmaWarpSpecialized;
  case MainloopChoice::WgmmaPingPong:
    return FusedStepMainloop::WgmmaPingPong;
  case MainloopChoice::WgmmaTall:
    return FusedStepMainloop::WgmmaTall;
  case MainloopChoice::WgmmaWide:
    return FusedStepMainloop::WgmmaWide;
  default:
    return std::nullopt;
  }
}

StringRef mainloopChoiceName(MainloopChoice choice) {
  for (auto [value, c] : kMainloopChoices)
    if (c == choice)
      return value;
  llvm_unreachable("every choice has a name");
}

/// The pass's options, as the steps' lowering uses them.
struct KernelOptions {
  MainloopChoice choice = MainloopChoice::Auto;
  bool allowTf32 = false;
  WgmmaRingOptions ring;
  int64_t l2PrefetchTokens = FusedStepTiling::kDefaultL2PrefetchTokens;
  RowExchange exchange = RowExchange::Workspace;
};

/// Each row-exchange option value.
constexpr std::pair<StringLiteral, RowExchange> kRowExchanges[] = {
    {"workspace", RowExchange::Workspace},
    {"cluster", RowExchange::Cluster},
};

std::optional<RowExchange> parseRowExchange(StringRef name) {
  return parseOptionValue(kRowExchanges, name);
}

/// The kernel of one step and its launch, in place of `op` (whose two
/// first results are W' and M'). `inputs` are the kernel's tensor and scalar
/// operands before the results, with their roles.
void emitLaunch(Operation *op, gpu::GPUModuleOp kernels, unsigned &counter,
                const FusedStepShape &shape, const RowUpdateChain &chain,
                const FusedStepTiling &tiling,
                ArrayRef<std::pair<Value, StringRef>> inputs,
                ValueRange replaced, Value skippedResult = Value()) {
  // The kernel, with a name unique in the kernel module.
  Location loc = op->getLoc();
  SymbolTable symbols(kernels);
  std::string name;
  do
    name = (shape.wgradOnly ? "nora_wgrad_" : "nora_fused_step_") +
           std::to_string(counter++);
  while (symbols.lookup(name));
  OpBuilder kb = OpBuilder::atBlockEnd(kernels.getBody());
  gpu::GPUFuncOp kernel =
      buildFusedStepKernel(kb, loc, name, shape, chain, tiling);

  // The host side: buffers in the launch convention, one launch.
  OpBuilder b(op);
  auto kernelArgs = kernel.getArgumentTypes();
  unsigned argIndex = 0;
  SmallVector<Value> operands;
  // What each kernel operand is (artifacts name their arguments by it).
  SmallVector<Attribute> roles;
  auto add = [&](Value operand, StringRef role) {
    operands.push_back(operand);
    roles.push_back(b.getStringAttr(role));
  };
  for (auto [value, role] : inputs) {
    Type type = kernelArgs[argIndex++];
    if (isa<MemRefType>(type))
      value = bufferization::ToBufferOp::create(b, loc, type, value,
                                                /*read_only=*/true);
    add(value, role);
  }
  SmallVector<Value> results;
  SmallVector<StringRef> resultRoles = {"w_new", "m_new"};
  if (shape.wgradOnly)
    resultRoles = {"g"};
  for (StringRef role : resultRoles) {
    auto type = cast<MemRefType>(kernelArgs[argIndex++]);
    results.push_back(memref::AllocOp::create(b, loc, type));
    add(results.back(), role);
  }
  memref::AllocOp workspace;
  if (tiling.workspaceBytes > 0) {
    workspace = memref::AllocOp::create(
        b, loc, MemRefType::get({tiling.workspaceBytes}, b.getI8Type()));
    workspace->setAttr("nora.workspace", b.getUnitAttr());
  }
  auto view = [&](int64_t offset, StringRef role) -> Value {
    Value shift = arith::ConstantIndexOp::create(b, loc, offset);
    Value v = memref::ViewOp::create(b, loc, kernelArgs[argIndex++], workspace,
                                     shift, ValueRange{});
    add(v, role);
    return v;
  };
  // Only the arrival counters start at zero (and end at zero): every
  // statistics slot is written before any CTA reads it.
  Value counters;
  if (tiling.hasCounters()) {
    counters = view(0, "counters");
    view(tiling.statsOffset, "row_stats");
  }
  // The TMA descriptors of dy and x, which the runtime encodes for the
  // operands' device addresses and writes here before the launch.
  SmallVector<Attribute> tensorMaps;
  if (tiling.hasTensorMaps()) {
    const StringRef tensorRoles[] = {"dy", "x"};
    for (auto [k, tensorRole] : llvm::enumerate(tensorRoles)) {
      std::string role = (tensorRole + "_map").str();
      view(tiling.tensorMapOffset + int64_t(k) * tiling.kTensorMapBytes, role);
      int64_t tensor =
          llvm::find(roles, b.getStringAttr(tensorRole)) - roles.begin();
      tensorMaps.push_back(b.getDictionaryAttr({
          b.getNamedAttr("operand",
                         b.getI64IntegerAttr(int64_t(operands.size()) - 1)),
          b.getNamedAttr("tensor", b.getI64IntegerAttr(tensor)),
          b.getNamedAttr(
              "box", b.getDenseI64ArrayAttr(
                         {tiling.blockTokens, FusedStepTiling::kTmaBoxCols})),
          b.getNamedAttr("swizzle", b.getI64IntegerAttr(128)),
      }));
    }
  }
  if (counters) {
    Value zero = arith::ConstantOp::create(b, loc, b.getI32Type(),
                                           b.getI32IntegerAttr(0));
    // Once: the kernels leave every counter at 0 (see emitArriveAndWait), so
    // the runtime zero-fills them when it allocates the workspace, not every
    // call ("workspace_zero_once").
    auto memset =
        gpu::MemsetOp::create(b, loc, Type(), ValueRange{}, counters, zero);
    memset->setAttr("nora.zero_once", b.getUnitAttr());
  }

  auto dim = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  Value dynamicShared;
  if (tiling.dynamicSharedBytes)
    dynamicShared = arith::ConstantOp::create(
        b, loc, b.getI32IntegerAttr(int32_t(tiling.dynamicSharedBytes)));
  // Cluster exchange: clusters of a row block's column tiles (the grid, a
  // multiple of them, is the runtime's; the one here covers every tile).
  std::optional<gpu::KernelDim3> cluster;
  if (tiling.clusterExchange())
    cluster = gpu::KernelDim3{dim(tiling.clusterCtas()), dim(1), dim(1)};
  auto launch = gpu::LaunchFuncOp::create(
      b, loc, kernel, gpu::KernelDim3{dim(tiling.ctaTiles), dim(1), dim(1)},
      gpu::KernelDim3{dim(tiling.blockThreads()), dim(1), dim(1)},
      dynamicShared, operands, /*asyncTokenType=*/nullptr,
      /*asyncDependencies=*/{}, cluster);
  launch->setAttr("nora.persistent_tiles",
                  b.getI64IntegerAttr(tiling.ctaTiles));
  // The row-block waits need every CTA resident; a gradient alone does
  // not, nor does a cluster exchange (a cluster's CTAs are co-scheduled).
  if (!shape.wgradOnly && !tiling.clusterExchange())
    launch->setAttr("nora.cooperative", b.getUnitAttr());
  launch->setAttr("nora.operand_roles", b.getArrayAttr(roles));
  if (!tensorMaps.empty())
    launch->setAttr("nora.tensor_maps", b.getArrayAttr(tensorMaps));

  for (auto [buffer, result] : llvm::zip(results, replaced))
    result.replaceAllUsesWith(bufferization::ToTensorOp::create(
        b, loc, result.getType(), buffer, /*restrict=*/b.getUnitAttr(),
        /*writable=*/b.getUnitAttr()));
  if (chain.guard == NonfiniteGuard::None)
    return;

  // A guarded step: the finish kernel turns the flagged rows' count into
  // `skipped` (and with skip_step puts W and M back when it is not 0).
  std::string finishName;
  do
    finishName = "nora_nonfinite_" + std::to_string(counter++);
  while (symbols.lookup(finishName));
  gpu::GPUFuncOp finish =
      buildNonfiniteFinishKernel(kb, loc, finishName, shape, chain, tiling);
  auto operandOf = [&](StringRef role) {
    return operands[llvm::find(roles, b.getStringAttr(role)) - roles.begin()];
  };
  auto skippedBuffer =
      memref::AllocOp::create(b, loc, MemRefType::get({}, b.getI64Type()));
  SmallVector<Value> finishOperands = {operandOf("counters"),
                                       operandOf("w"),
                                       operandOf("m"),
                                       results[0],
                                       results[1],
                                       skippedBuffer};
  const char *finishRoles[] = {"counters", "w",     "m",
                               "w_new",    "m_new", "skipped"};
  // skip_row only writes the count: one CTA. skip_step copies rows.
  int64_t finishTiles = chain.guard == NonfiniteGuard::SkipRow ? 1 : shape.rows;
  auto finishLaunch = gpu::LaunchFuncOp::create(
      b, loc, finish, gpu::KernelDim3{dim(finishTiles), dim(1), dim(1)},
      gpu::KernelDim3{dim(FusedStepTiling::kThreads), dim(1), dim(1)},
      /*dynamicSharedMemorySize=*/Value(), finishOperands);
  finishLaunch->setAttr("nora.persistent_tiles",
                        b.getI64IntegerAttr(finishTiles));
  SmallVector<Attribute> finishRoleAttrs;
  for (const char *role : finishRoles)
    finishRoleAttrs.push_back(b.getStringAttr(role));
  finishLaunch->setAttr("nora.operand_roles", b.getArrayAttr(finishRoleAttrs));
  auto skippedTensor = bufferization::ToTensorOp::create(
      b, loc, RankedTensorType::get({}, b.getI64Type()), skippedBuffer,
      /*restrict=*/b.getUnitAttr(), /*writable=*/b.getUnitAttr());
  skippedResult.replaceAllUsesWith(
      tensor::ExtractOp::create(b, loc, skippedTensor, ValueRange{}));
}

/// Checks the tile count of `tiling` against the grid; errors on `op`.
LogicalResult checkTiles(Operation *op, const FusedStepTiling &tiling) {
  if (tiling.tiles > std::numeric_limits<int32_t>::max())
    return op->emitOpError("cannot be lowered to the GPU: ")
           << tiling.tiles << " tiles exceed the 32-bit grid";
  return success();
}

/// The mainloop of a step (or a gradient alone) of `shape` under `choice`;
/// an error on `op` when the choice cannot take it.
FailureOr<FusedStepMainloop> chooseMainloop(Operation *op,
                                            const FusedStepShape &shape,
                                            MainloopChoice choice,
                                            bool allowTf32) {
  std::string noTensorCores = tensorCoreIneligibility(shape);
  // f32 inputs on tf32 tensor cores only when asked (allow-tf32), with auto
  // or mma-sync.
  std::optional<FusedStepMainloop> warpSpecialized =
      warpSpecializedMainloop(choice);
  bool wgmma = choice == MainloopChoice::Wgmma || warpSpecialized;
  bool tf32 = allowTf32 && choice != MainloopChoice::Simt && !wgmma &&
              shape.dyElem.isF32();
  std::string noTf32 = tf32 ? tf32Ineligibility(shape) : "";
  if (tf32 && choice == MainloopChoice::MmaSync && !noTf32.empty())
    return op->emitOpError("cannot be lowered with mainloop=mma-sync: ")
           << noTf32;
  if (!tf32 && (choice == MainloopChoice::MmaSync || wgmma) &&
      !noTensorCores.empty())
    return op->emitOpError("cannot be lowered with mainloop=")
           << (wgmma ? mainloopChoiceName(choice) : "mma-sync") << ": "
           << noTensorCores
           << (shape.dyElem.isF32() && shape.xElem.isF32() &&
                       choice == MainloopChoice::MmaSync
                   ? " (f32 inputs: allow-tf32)"
                   : "");
  FusedStepMainloop mainloop = FusedStepMainloop::MmaSync;
  if (tf32 && noTf32.empty())
    mainloop = FusedStepMainloop::MmaSyncTf32;
  else if (choice == MainloopChoice::Simt || !noTensorCores.empty())
    mainloop = FusedStepMainloop::Simt;
  else if (choice == MainloopChoice::Wgmma)
    mainloop = FusedStepMainloop::Wgmma;
  else if (warpSpecialized)
    mainloop = *warpSpecialized;
  return mainloop;
}

/// The kernel inputs of a gradient dy^T x (+ acc), with their roles.
SmallVector<std::pair<Value, StringRef>> gradientInputs(Value dy, Value x,
                                                        Value acc) {
  SmallVector<std::pair<Value, StringRef>> inputs = {{dy, "dy"}, {x, "x"}};
  if (acc)
    inputs.push_back({acc, "acc"});
  return inputs;
}

/// The tiling of a step (or a gradient alone) of `shape` under the pass's
/// options; an error on `op` when no mainloop can take it.
FailureOr<FusedStepTiling> tileStep(Operation *op, const FusedStepShape &shape,
                                    const RowUpdateChain &chain,
                                    const KernelOptions &options) {
  FailureOr<FusedStepMainloop> mainloop =
      chooseMainloop(op, shape, options.choice, options.allowTf32);
  if (failed(mainloop))
    return failure();
  // The consumers of ping-pong and of paired tiles hold a whole tile (128
  // accumulators a thread in 200 registers): the range predicates of
  // partial tiles made ptxas spill (bench/RESULTS.md), so they take whole
  // tiles only. (wgmma-tall's last row pair may have one row block,
  // wgmma-wide's last column pair one column tile.)
  if (*mainloop == FusedStepMainloop::WgmmaPingPong ||
      FusedStepTiling::pairedTiles(*mainloop)) {
    int64_t tile = FusedStepTiling::kTensorCoreTile;
    if (shape.rows % tile != 0 || shape.cols % tile != 0)
      return op->emitOpError("cannot be lowered with mainloop=")
             << mainloopChoiceName(options.choice)
             << ": it needs rows and columns that are multiples of 128, "
                "whole tiles ("
             << shape.rows << " x " << shape.cols
             << " has partial ones; wgmma-ws takes them)";
  }
  FusedStepTiling tiling =
      FusedStepTiling::get(shape, chain, *mainloop, options.ring);
  // A gradient alone has no rows to exchange.
  if (options.exchange == RowExchange::Cluster && !shape.wgradOnly) {
    std::string why = clusterExchangeIneligibility(shape, chain, tiling);
    if (!why.empty())
      return op->emitOpError("cannot be lowered with row-exchange=cluster: ")
             << why;
    tiling = FusedStepTiling::get(shape, chain, *mainloop, options.ring,
                                  RowExchange::Cluster);
  }
  tiling.l2PrefetchTokens = options.l2PrefetchTokens;
  if (failed(checkTiles(op, tiling)))
    return failure();
  return tiling;
}

LogicalResult lowerStep(FusedWgradStepOp op, gpu::GPUModuleOp kernels,
                        const KernelOptions &options, unsigned &counter) {
  FailureOr<FusedStepShape> shape = getShape(op);
  if (failed(shape))
    return failure();
  FailureOr<RowUpdateChain> chain = matchRowUpdateChain(op);
  if (failed(chain))
    return failure();
  chain->guard = parseNonfiniteGuard(op.getNonfinite());
  FailureOr<FusedStepTiling> tiling = tileStep(op, *shape, *chain, options);
  if (failed(tiling))
    return failure();
  SmallVector<std::pair<Value, StringRef>> inputs =
      gradientInputs(op.getDy(), op.getX(), op.getAcc());
  inputs.append({{op.getW(), "w"},
                 {op.getM(), "m"},
                 {op.getLr(), "lr"},
                 {op.getWd(), "wd"}});
  emitLaunch(op, kernels, counter, *shape, *chain, *tiling, inputs,
             op.getResults().take_front(2),
             op.getNumResults() > 2 ? op.getResult(2) : Value());
  op->erase();
  return success();
}

/// A nora.wgrad that no step fused (its g is used elsewhere too): the same
/// mainloops with an epilogue that stores g. Dynamic, empty or too large
/// shapes are left alone.
LogicalResult lowerWgrad(WgradOp op, gpu::GPUModuleOp kernels,
                         const KernelOptions &options, unsigned &counter) {
  auto dyType = dyn_cast<RankedTensorType>(op.getDy().getType());
  auto xType = dyn_cast<RankedTensorType>(op.getX().getType());
  auto gType = dyn_cast<RankedTensorType>(op.getG().getType());
  for (RankedTensorType type : {dyType, xType, gType}) {
    if (!type || !type.hasStaticShape() || type.getNumElements() == 0)
      return success();
    for (int64_t size : type.getShape())
      if (size > std::numeric_limits<int32_t>::max())
        return success();
  }
  FusedStepShape shape;
  shape.rows = gType.getDimSize(0);
  shape.cols = gType.getDimSize(1);
  shape.tokens = dyType.getDimSize(0);
  shape.dyElem = dyType.getElementType();
  shape.xElem = xType.getElementType();
  shape.hasAcc = static_cast<bool>(op.getAcc());
  shape.gradScale = op.getScale().convertToDouble();
  shape.wgradOnly = true;
  FailureOr<FusedStepTiling> tiling =
      tileStep(op, shape, RowUpdateChain(), options);
  if (failed(tiling))
    return failure();
  SmallVector<std::pair<Value, StringRef>> inputs =
      gradientInputs(op.getDy(), op.getX(), op.getAcc());
  emitLaunch(op, kernels, counter, shape, RowUpdateChain(), *tiling, inputs,
             op->getResults());
  op->erase();
  return success();
}

/// A row-update chain on a given gradient: the same kernel without the
/// matmul. A chain at shapes the kernel cannot take (dynamic, empty, too
/// large) is left alone, as every op that is no such chain.
LogicalResult lowerFreeChain(const FreeRowUpdateChain &found,
                             gpu::GPUModuleOp kernels, unsigned &counter) {
  MomentumOp momentum = found.momentum;
  ApplyUpdateOp update = found.update;
  auto gType = dyn_cast<RankedTensorType>(momentum.getG().getType());
  if (!gType || !gType.hasStaticShape() || gType.getNumElements() == 0 ||
      !gType.getElementType().isF32() || gType.getRank() != 2 ||
      gType.getDimSize(0) > std::numeric_limits<int32_t>::max() ||
      gType.getDimSize(1) > std::numeric_limits<int32_t>::max())
    return success();
  FusedStepShape shape;
  shape.rows = gType.getDimSize(0);
  shape.cols = gType.getDimSize(1);
  shape.gradGiven = true;
  FusedStepTiling tiling =
      FusedStepTiling::get(shape, found.chain, FusedStepMainloop::LoadGradient);
  if (tiling.tiles > std::numeric_limits<int32_t>::max())
    return success();
  // The launch goes where the chain's last op is: every operand is defined
  // there, and every use of M' (the momentum's first result) comes after
  // the chain or is moved there with it.
  for (Operation *user : momentum.getMNew().getUsers())
    if (user->getBlock() != update->getBlock() || user->isBeforeInBlock(update))
      return success();
  SmallVector<std::pair<Value, StringRef>> inputs = {{momentum.getG(), "g"},
                                                     {update.getW(), "w"},
                                                     {momentum.getM(), "m"},
                                                     {update.getLr(), "lr"},
                                                     {update.getWd(), "wd"}};
  Value replaced[2] = {update.getWNew(), momentum.getMNew()};
  Operation *last = update;
  Value skipped;
  if (SkipNonfiniteOp skip = found.skip) {
    // The guard's results are the kernels'.
    replaced[0] = skip.getWOut();
    replaced[1] = skip.getMOut();
    skipped = skip.getSkipped();
    last = skip;
  }
  emitLaunch(last, kernels, counter, shape, found.chain, tiling, inputs,
             replaced, skipped);
  if (found.skip)
    found.skip->erase();
  update->erase();
  found.normalize->erase();
  if (found.project)
    found.project->erase();
  momentum->erase();
  return success();
}

struct NoraFusedStepToGPUPass
    : nora::impl::NoraFusedStepToGPUBase<NoraFusedStepToGPUPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<MainloopChoice> choice = parseMainloopChoice(mainloop);
    if (!choice) {
      module.emitError("nora-fused-step-to-gpu: unknown mainloop '")
          << mainloop << "' (expected " << kGpuMainloopNames << ")";
      return signalPassFailure();
    }
    KernelOptions options;
    options.choice = *choice;
    options.allowTf32 = allowTf32;
    options.ring = WgmmaRingOptions{ringStages, stageTokens};
    options.l2PrefetchTokens = l2PrefetchTokens;
    std::string optionsError = kernelOptionsError(
        mainloop, options.ring, options.l2PrefetchTokens, rowExchange);
    if (!optionsError.empty()) {
      module.emitError("nora-fused-step-to-gpu: ") << optionsError;
      return signalPassFailure();
    }
    options.exchange = *parseRowExchange(rowExchange);
    SmallVector<FusedWgradStepOp> steps;
    module.walk([&](FusedWgradStepOp op) { steps.push_back(op); });
    // Chains on a given gradient, outside fused steps.
    SmallVector<FreeRowUpdateChain> chains;
    module.walk([&](MomentumOp op) {
      if (op->getParentOfType<FusedWgradStepOp>())
        return;
      if (std::optional<FreeRowUpdateChain> found = matchFreeRowUpdateChain(op))
        chains.push_back(*found);
    });
    // What no step fused: a gradient alone.
    SmallVector<WgradOp> wgrads;
    module.walk([&](WgradOp op) { wgrads.push_back(op); });
    if (steps.empty() && chains.empty() && wgrads.empty())
      return;
    gpu::GPUModuleOp kernels = getOrCreateKernelModule(module);
    unsigned counter = 0;
    bool failedAny = false;
    for (FusedWgradStepOp op : steps)
      failedAny |= failed(lowerStep(op, kernels, options, counter));
    for (const FreeRowUpdateChain &found : chains)
      failedAny |= failed(lowerFreeChain(found, kernels, counter));
    for (WgradOp op : wgrads)
      failedAny |= failed(lowerWgrad(op, kernels, options, counter));
    if (failedAny)
      signalPassFailure();
  }
};

} // namespace

bool mlir::nora::isGpuMainloop(StringRef name) {
  return parseMainloopChoice(name).has_value();
}

std::string mlir::nora::kernelOptionsError(StringRef mainloop,
                                           const WgmmaRingOptions &ring,
                                           int64_t l2PrefetchTokens,
                                           StringRef rowExchange) {
  if (l2PrefetchTokens < 0)
    return "l2-prefetch-tokens=" + std::to_string(l2PrefetchTokens) +
           " (expected 0, no prefetch, or more)";
  std::optional<RowExchange> exchange = parseRowExchange(rowExchange);
  if (!exchange)
    return "unknown row-exchange '" + rowExchange.str() +
           "' (expected workspace or cluster)";
  std::optional<MainloopChoice> choice = parseMainloopChoice(mainloop);
  std::optional<FusedStepMainloop> kind = warpSpecializedMainloop(choice);
  if (*exchange == RowExchange::Cluster &&
      (kind == FusedStepMainloop::WgmmaPingPong ||
       kind == FusedStepMainloop::WgmmaTall))
    return "row-exchange=cluster takes mainloop=auto, simt, mma-sync, wgmma, "
           "wgmma-ws or wgmma-wide (the cluster barrier needs all of a CTA's "
           "threads on one row block at each tile, and the consumers of "
           "mainloop=" +
           mainloop.str() + " work on two at once)";
  if (!kind) {
    if (ring.stages != 0)
      return "ring-stages is an option of mainloop=wgmma-ws, wgmma-pingpong, "
             "wgmma-tall and wgmma-wide";
    if (ring.stageTokens != 0)
      return "stage-tokens is an option of mainloop=wgmma-ws, "
             "wgmma-pingpong, wgmma-tall and wgmma-wide";
    return "";
  }
  using T = FusedStepTiling;
  int64_t defaultStages = T::defaultRingStages(*kind, *exchange);
  int64_t defaultTokens = T::defaultStageTokens(*kind, *exchange);
  if (ring.stages < 0 || ring.stages == 1)
    return "ring-stages=" + std::to_string(ring.stages) +
           " (expected 2 or more, or 0 for " + std::to_string(defaultStages) +
           ")";
  if (ring.stageTokens < 0 || ring.stageTokens % 16 != 0 ||
      ring.stageTokens > 256)
    return "stage-tokens=" + std::to_string(ring.stageTokens) +
           " (expected a multiple of 16 up to 256, or 0 for " +
           std::to_string(defaultTokens) + ")";
  int64_t stages = ring.stages ? ring.stages : defaultStages;
  int64_t tokens = ring.stageTokens ? ring.stageTokens : defaultTokens;
  bool tall = *kind == FusedStepMainloop::WgmmaTall;
  bool wide = *kind == FusedStepMainloop::WgmmaWide;
  int64_t bytes = T::ringBytes(stages, tokens, tall ? 2 : 1, wide ? 2 : 1);
  int64_t most = T::maxRingBytes(*kind, *exchange);
  bool wideCluster = T::wideCluster(*kind, *exchange);
  if (bytes > most)
    return std::to_string(stages) + " stages of " + std::to_string(tokens) +
           " tokens take " + std::to_string(bytes / 1024) +
           " KiB of shared memory (at most " + std::to_string(most / 1024) +
           (tall ? " KiB with wgmma-tall, whose stages hold 256 rows of dy and "
                   "whose parked U takes 64: 12 stages of 16 tokens, 6 of 32, "
                   "3 of 64)"
            : wideCluster
                ? " KiB with wgmma-wide and row-exchange=cluster, whose "
                  "stages hold 256 columns of x, whose parked U takes 64 and "
                  "whose slots 12: 11 stages of 16 tokens, 5 of 32, 2 of 64)"
            : wide ? " KiB with wgmma-wide, whose stages hold 256 columns of "
                     "x and whose parked U takes 64: 12 stages of 16 tokens, "
                     "6 of 32, 3 of 64)"
            : *kind == FusedStepMainloop::WgmmaPingPong
                ? " KiB with wgmma-pingpong, whose parked U takes 64: "
                  "16 stages of 16 tokens, 8 of 32, 4 of 64)"
                : " KiB: 24 stages of 16 tokens, 12 of 32, 6 of 64)");
  return "";
}
