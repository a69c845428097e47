//===- NoraPlugin.cpp - nora as an mlir-opt plugin --------------*- C++ -*-===//
//
// Lets any MLIR 22 tool built on the shared libMLIR.so load the nora dialect
// (`--load-dialect-plugin=libNoraPlugin.so`) and its passes
// (`--load-pass-plugin=libNoraPlugin.so`).
//
//===----------------------------------------------------------------------===//

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/Plugins/DialectPlugin.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "nora/InitAllNora.h"

#include "llvm/Config/llvm-config.h"

using namespace mlir;

extern "C" LLVM_ATTRIBUTE_WEAK DialectPluginLibraryInfo
mlirGetDialectPluginInfo() {
  return {
      MLIR_PLUGIN_API_VERSION, "NoraDialect", LLVM_VERSION_STRING,
      [](DialectRegistry *registry) { nora::registerNoraDialect(*registry); }};
}

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "NoraPasses", LLVM_VERSION_STRING,
          []() { nora::registerAllNoraPasses(); }};
}
