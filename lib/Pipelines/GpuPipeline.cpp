//===- GpuPipeline.cpp - nora ops -> one persistent kernel a step -*- C++
//-*-===//

#include "nora/Pipelines/Pipelines.h"

#include "nora/Conversion/Passes.h"
#include "nora/Dialect/Nora/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

LogicalResult mlir::nora::checkGpuPipelineOptions(
    const GpuPipelineOptions &options,
    function_ref<LogicalResult(const Twine &)> error) {
  const std::string &chip = options.chip;
  if (chip != "sm_80" && chip != "sm_90a")
    return error("nora-gpu-pipeline: unsupported chip '" + chip +
                 "' (supported: sm_80, sm_90a)");
  const std::string &format = options.format;
  if (format != "bin" && format != "isa" && format != "fatbin" &&
      format != "none")
    return error("nora-gpu-pipeline: unsupported format '" + format +
                 "' (bin: cubin, isa: PTX, fatbin, none: stop at NVVM)");
  const std::string &mainloop = options.mainloop;
  if (!isGpuMainloop(mainloop))
    return error("nora-gpu-pipeline: unsupported mainloop '" + mainloop +
                 "' (" + kGpuMainloopNames + ")");
  const std::string &host = options.host;
  if (host != "launch" && host != "runtime")
    return error("nora-gpu-pipeline: unsupported host '" + host +
                 "' (launch or runtime)");
  if (host == "runtime" && format != "bin")
    return error("nora-gpu-pipeline: host=runtime embeds the cubin and needs "
                 "format=bin");
  // The pass checks the ring too; here nora-compile reports it before any
  // IR is built.
  std::string optionsError = kernelOptionsError(
      mainloop, WgmmaRingOptions{options.ringStages, options.stageTokens},
      options.l2PrefetchTokens, options.rowExchange);
  if (!optionsError.empty())
    return error("nora-gpu-pipeline: " + optionsError);
  if (mainloop.rfind("wgmma", 0) == 0 && chip != "sm_90a")
    return error("nora-gpu-pipeline: mainloop=" + mainloop +
                 " needs chip=sm_90a (wgmma is a Hopper instruction)");
  if (options.rowExchange == "cluster" && chip != "sm_90a")
    return error("nora-gpu-pipeline: row-exchange=cluster needs chip=sm_90a "
                 "(thread-block clusters are Hopper's)");
  return success();
}

void mlir::nora::buildGpuPipeline(OpPassManager &pm,
                                  const GpuPipelineOptions &options) {
  // 1. Composite steps -> primitive nora ops -> one fused step per weight.
  pm.addPass(createNoraDecompose());
  if (options.fuse)
    pm.addPass(createNoraFuseWgradEpilogue());
  // 2. Each fused step -> a persistent gpu.func in @nora_kernels and one
  //    cooperative gpu.launch_func on buffers.
  NoraFusedStepToGPUOptions toGPU;
  toGPU.mainloop = options.mainloop;
  toGPU.allowTf32 = options.allowTf32;
  toGPU.ringStages = options.ringStages;
  toGPU.stageTokens = options.stageTokens;
  toGPU.l2PrefetchTokens = options.l2PrefetchTokens;
  toGPU.rowExchange = options.rowExchange;
  pm.addPass(createNoraFusedStepToGPU(toGPU));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // 3. The kernels -> NVVM (bare pointers: one pointer per static memref,
  //    the runtime's launch convention).
  GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.features = "+ptx80";
  target.optLevel = 3;
  pm.addPass(createGpuNVVMAttachTarget(target));
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  kernels.addPass(createSCFToControlFlowPass());
  kernels.addPass(memref::createExpandStridedMetadataPass());
  kernels.addPass(createLowerAffinePass());
  ConvertGpuOpsToNVVMOpsOptions toNVVM;
  toNVVM.useBarePtrCallConv = true;
  toNVVM.indexBitwidth = 64;
  kernels.addPass(createConvertGpuOpsToNVVMOps(toNVVM));
  kernels.addPass(createConvertNVVMToLLVMPass());
  // gpu.dynamic_shared_memory as CUDA's extern __shared__ array (internal,
  // ptxas lays it out among the static buffers).
  kernels.addPass(createNoraExternDynamicShared());
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createCSEPass());
  kernels.addPass(createReconcileUnrealizedCastsPass());

  // 4. ptxas: a gpu.binary with the cubin (or the PTX, for inspection).
  if (options.format == "none")
    return;
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = options.format;
  binary.cmdOptions = options.ptxasOptions;
  // libdevice (math.sqrt is __nv_sqrt) is linked from the CUDA toolkit.
  binary.toolkitPath = options.cudaPath;
  pm.addPass(createGpuModuleToBinaryPass(binary));

  // 5. Optionally, the host side as LLVM calls into the runtime.
  if (options.host == "runtime")
    pm.addPass(createNoraGpuHostToRuntime());
}

void mlir::nora::registerGpuPipeline() {
  registerPassPipeline(
      "nora-gpu-pipeline",
      "Lower nora ops (and composite steps) to one persistent GPU kernel and "
      "one launch per fused step, assembled by ptxas",
      [](OpPassManager &pm, StringRef text,
         function_ref<LogicalResult(const Twine &)> error) {
        GpuPipelineOptions options;
        if (failed(options.parseFromString(text)) ||
            failed(checkGpuPipelineOptions(options, error)))
          return failure();
        buildGpuPipeline(pm, options);
        return success();
      },
      [](function_ref<void(const mlir::detail::PassOptions &)> print) {
        print(GpuPipelineOptions());
      });
}
