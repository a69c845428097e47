//===- FuzzPasses.cpp - fuzz: nora passes on IR that parses ----*- C++ -*-===//
//
// Runs the nora passes one by one (the GPU lowering up to its gpu.func,
// not ptxas), then the whole CPU pipeline (to the LLVM
// dialect; no JIT), on every input that parses and verifies. A pass may fail
// with a diagnostic; it must never crash or produce IR that does not verify.
//
//===----------------------------------------------------------------------===//

#include "FuzzCommon.h"

#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "nora/Conversion/Passes.h"
#include "nora/Dialect/Nora/Transforms/Passes.h"
#include "nora/Pipelines/Pipelines.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlir::MLIRContext &context = nora::fuzz::context();
  mlir::OwningOpRef<mlir::ModuleOp> module =
      nora::fuzz::parse(context, data, size);
  if (!module || mlir::failed(mlir::verify(*module)))
    return 0;
  // Each pass alone (verifier on after each), on a copy of the input.
  auto runOne = [&](auto createPass) {
    mlir::OwningOpRef<mlir::ModuleOp> copy = module->clone();
    mlir::PassManager pm(&context);
    pm.addPass(createPass());
    (void)pm.run(*copy);
  };
  runOne([] { return mlir::nora::createNoraDecompose(); });
  runOne([] { return mlir::nora::createNoraFuseWgradEpilogue(); });
  runOne([] { return mlir::nora::createConvertNoraToLinalg(); });
  runOne([] { return mlir::nora::createNoraFusedStepToPanels(); });
  runOne([] { return mlir::nora::createNoraFusedStepToGPU(); });
  // The whole CPU pipeline, fused and op by op.
  for (bool fuse : {true, false}) {
    mlir::OwningOpRef<mlir::ModuleOp> copy = module->clone();
    mlir::PassManager pm(&context);
    mlir::nora::CpuPipelineOptions options;
    options.fuse = fuse;
    mlir::nora::buildCpuPipeline(pm, options);
    (void)pm.run(*copy);
  }
  return 0;
}
