//===- Pipelines.h - nora's pass pipelines ----------------------*- C++ -*-===//
//
// The pipelines read as the table of contents of the compiler: each one is
// the list of passes that takes what a front end writes to what runs.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_PIPELINES_PIPELINES_H
#define NORA_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassOptions.h"

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::nora {

struct CpuPipelineOptions : public PassPipelineOptions<CpuPipelineOptions> {
  PassOptions::Option<bool> fuse{
      *this, "fuse",
      llvm::cl::desc("Fuse the weight-gradient matmul with the optimizer "
                     "chain (false: lower op by op)"),
      llvm::cl::init(true)};
  PassOptions::Option<int64_t> rowsPerPanel{
      *this, "rows-per-panel",
      llvm::cl::desc("Rows of W per panel of the fused CPU step (0: chosen "
                     "from the shapes)"),
      llvm::cl::init(0)};
  PassOptions::Option<bool> threads{
      *this, "threads",
      llvm::cl::desc("Run the row panels of fused steps on OpenMP threads"),
      llvm::cl::init(true)};
};

/// nora ops on tensors -> LLVM dialect for the CPU JIT. Functions take their
/// results as caller-allocated out-params (memrefs) after their arguments.
void buildCpuPipeline(OpPassManager &pm, const CpuPipelineOptions &options);

/// Registers `--nora-cpu-pipeline`.
void registerCpuPipeline();

} // namespace mlir::nora

#endif // NORA_PIPELINES_PIPELINES_H
