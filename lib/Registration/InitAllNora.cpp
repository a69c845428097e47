//===- InitAllNora.cpp - register nora's dialects and passes ---*- C++ -*-===//

#include "nora/InitAllNora.h"

#include "mlir/IR/DialectRegistry.h"
#include "nora/Conversion/Passes.h"
#include "nora/Dialect/Nora/IR/NoraDialect.h"
#include "nora/Dialect/Nora/Transforms/Passes.h"
#include "nora/Pipelines/Pipelines.h"

void mlir::nora::registerNoraDialect(DialectRegistry &registry) {
  registry.insert<NoraDialect>();
}

void mlir::nora::registerAllNoraPasses() {
  registerNoraPasses();
  registerNoraConversionPasses();
  registerCpuPipeline();
  registerGpuPipeline();
}
