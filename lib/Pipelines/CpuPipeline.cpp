//===- CpuPipeline.cpp - nora ops -> LLVM for the CPU JIT ------*- C++ -*-===//

#include "nora/Pipelines/Pipelines.h"

#include "nora/Conversion/Passes.h"
#include "nora/Dialect/Nora/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void mlir::nora::buildCpuPipeline(OpPassManager &pm,
                                  const CpuPipelineOptions &options) {
  // 1. Composite steps -> primitive nora ops.
  pm.addPass(createNoraDecompose());
  // 2. The weight-gradient matmul and its optimizer chain -> one
  //    nora.fused_wgrad_step (unless op by op is asked for).
  if (options.fuse)
    pm.addPass(createNoraFuseWgradEpilogue());
  // 3. nora -> linalg on tensors.
  pm.addPass(createConvertNoraToLinalg());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // 4. Tensors -> buffers. Results become caller-allocated out-params, so the
  //    host passes every buffer and the kernel allocates only temporaries.
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::BufferResultsToOutParamsPassOptions outParams;
  outParams.hoistStaticAllocs = true;
  outParams.modifyPublicFunctions = true;
  pm.addPass(bufferization::createBufferResultsToOutParamsPass(outParams));
  pm.addPass(createCanonicalizerPass());
  bufferization::buildBufferDeallocationPipeline(pm);

  // 5. linalg -> loops -> LLVM dialect.
  pm.addPass(createConvertLinalgToLoopsPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::nora::registerCpuPipeline() {
  PassPipelineRegistration<CpuPipelineOptions>(
      "nora-cpu-pipeline",
      "Lower nora ops (and composite steps) to the LLVM dialect for the CPU",
      buildCpuPipeline);
}
