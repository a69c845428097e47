//===- FuzzParse.cpp - fuzz: arbitrary bytes as nora IR --------*- C++ -*-===//
//
// Parses the input as MLIR with every dialect nora-opt knows and verifies
// it. Any crash, hang, leak or sanitizer report is a bug: bad IR must only
// ever produce diagnostics.
//
//===----------------------------------------------------------------------===//

#include "FuzzCommon.h"

#include "mlir/IR/Verifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlir::MLIRContext &context = nora::fuzz::context();
  mlir::OwningOpRef<mlir::ModuleOp> module =
      nora::fuzz::parse(context, data, size);
  if (module)
    (void)mlir::verify(*module);
  return 0;
}
