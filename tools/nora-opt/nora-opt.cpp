//===- nora-opt.cpp - mlir-opt with the nora dialect and passes -*- C++ -*-===//

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "nora/InitAllNora.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::nora::registerAllNoraPasses();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  // gpu-module-to-binary translates kernels to LLVM IR.
  mlir::registerAllToLLVMIRTranslations(registry);
  mlir::nora::registerNoraDialect(registry);

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv,
      "nora optimizer driver: the nora dialect, its passes and "
      "pipelines, and upstream MLIR\n",
      registry));
}
