//===- CpuPipeline.cpp - nora ops -> LLVM for the CPU JIT ------*- C++ -*-===//

#include "nora/Pipelines/Pipelines.h"

#include "nora/Conversion/Passes.h"
#include "nora/Dialect/Nora/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void mlir::nora::buildCpuPipeline(OpPassManager &pm,
                                  const CpuPipelineOptions &options) {
  // 1. Composite steps -> primitive nora ops.
  pm.addPass(createNoraDecompose());
  // 2. Fusion: the weight-gradient matmul and its optimizer chain -> one
  //    nora.fused_wgrad_step, run as a parallel loop over row panels that
  //    computes each panel of g and its epilogue while the panel is in cache.
  //    Without `fuse`, every op runs on whole tensors (op by op).
  if (options.fuse) {
    pm.addPass(createNoraFuseWgradEpilogue());
    NoraFusedStepToPanelsOptions panels;
    panels.rowsPerPanel = options.rowsPerPanel;
    pm.addPass(createNoraFusedStepToPanels(panels));
  }
  // 3. nora -> linalg on tensors; contractions call the CPU micro-kernel.
  ConvertNoraToLinalgOptions toLinalg;
  toLinalg.useUkernels = true;
  pm.addPass(createConvertNoraToLinalg(toLinalg));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // 4. Tensors -> buffers. Results become caller-allocated out-params, so the
  //    host passes every buffer and the kernel allocates only temporaries.
  //    Panels of W' and M' are written in place into the results.
  pm.addPass(bufferization::createEmptyTensorEliminationPass());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // A skip_step guard's scf.if yields the same W'/M' buffers from both
  // branches (it copies W, M into them only when it skips): fold its results
  // away so that those buffers, not the scf.if, are returned and become the
  // out-params with no copy.
  pm.addPass(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createNoraDistinctResultBuffers());
  bufferization::BufferResultsToOutParamsPassOptions outParams;
  outParams.hoistStaticAllocs = true;
  outParams.modifyPublicFunctions = true;
  pm.addPass(bufferization::createBufferResultsToOutParamsPass(outParams));
  pm.addPass(createCanonicalizerPass());
  bufferization::buildBufferDeallocationPipeline(pm);

  // 5. Micro-kernel calls, linalg -> loops, row panels on OpenMP threads (or
  //    a plain loop). Memrefs go to LLVM before scf -> cf, because the
  //    OpenMP lowering wraps loop bodies in memref.alloca_scope, which must
  //    keep a single block until it is lowered.
  pm.addPass(createNoraLowerUkernelCalls());
  pm.addPass(createForallToParallelLoopPass());
  pm.addPass(createConvertLinalgToLoopsPass());
  if (options.threads)
    pm.addPass(createConvertSCFToOpenMPPass());

  // 6. -> LLVM dialect.
  pm.addPass(createLowerAffinePass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  if (options.threads)
    pm.addPass(createConvertOpenMPToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::nora::registerCpuPipeline() {
  PassPipelineRegistration<CpuPipelineOptions>(
      "nora-cpu-pipeline",
      "Lower nora ops (and composite steps) to the LLVM dialect for the CPU",
      buildCpuPipeline);
}
