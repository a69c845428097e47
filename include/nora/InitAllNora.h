//===- InitAllNora.h - register nora's dialects and passes ------*- C++ -*-===//

#ifndef NORA_INITALLNORA_H
#define NORA_INITALLNORA_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace mlir::nora {

/// Inserts the nora dialect into `registry`.
void registerNoraDialect(DialectRegistry &registry);

/// Registers every nora pass and pipeline with the global pass registry, so
/// that they are available on the command line (`--nora-*`).
void registerAllNoraPasses();

} // namespace mlir::nora

#endif // NORA_INITALLNORA_H
