//===- FuzzCommon.h - shared set-up of the fuzz targets ---------*- C++ -*-===//

#ifndef NORA_TOOLS_FUZZ_FUZZCOMMON_H
#define NORA_TOOLS_FUZZ_FUZZCOMMON_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "nora/InitAllNora.h"
#include "llvm/Support/SourceMgr.h"

#include <string>

namespace nora::fuzz {

/// One context for the whole run (creating one per input would dominate the
/// time); diagnostics are swallowed: producing them is the expected outcome.
inline mlir::MLIRContext &context() {
  static mlir::MLIRContext *ctx = [] {
    mlir::DialectRegistry registry;
    mlir::registerAllDialects(registry);
    mlir::registerAllExtensions(registry);
    mlir::nora::registerNoraDialect(registry);
    auto *c = new mlir::MLIRContext(registry);
    c->loadAllAvailableDialects();
    c->getDiagEngine().registerHandler(
        [](mlir::Diagnostic &) { return mlir::success(); });
    return c;
  }();
  return *ctx;
}

/// Parses the input as a module. MLIR's lexer reads its buffer up to a
/// terminating NUL (as files and nora-opt's inputs have), so the bytes are
/// copied into a std::string first; libFuzzer's buffer has none.
inline mlir::OwningOpRef<mlir::ModuleOp>
parse(mlir::MLIRContext &context, const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  return mlir::parseSourceString<mlir::ModuleOp>(text, &context);
}

} // namespace nora::fuzz

#endif // NORA_TOOLS_FUZZ_FUZZCOMMON_H
