//===- StepArtifact.h - compile a step into a GPU artifact ------*- C++ -*-===//
//
// "Compile here, run there": the compiling machine runs the GPU pipeline and
// writes a self-contained artifact directory (plan.json + the cubin,
// docs/artifact.md) that nora-exec and the runtime library load with no
// LLVM/MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_ARTIFACT_STEPARTIFACT_H
#define NORA_ARTIFACT_STEPARTIFACT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"
#include "mlir/Support/LogicalResult.h"

#include <string>

namespace mlir::nora {

/// What an artifact holds besides its plan: the kernels' cubin (one ELF for
/// all kernels of the step).
struct StepArtifact {
  std::string planJson;
  /// The number of kernels in the plan (one a fused step).
  size_t numKernels = 0;
  std::string cubin;
};

/// Reads the launch plan of function `entry` from `module` after
/// buildGpuPipeline (format=bin): the function's arguments and results, and
/// one kernel entry per gpu.launch_func with its parameters in the runtime's
/// bare-pointer convention. Anything the runtime cannot express (an op other
/// than the buffers and launches the GPU lowering writes) is an error
/// reported on that op.
FailureOr<StepArtifact> extractStepArtifact(ModuleOp module, StringRef entry,
                                            StringRef chip);

/// Writes `artifact` to the directory `dir` as plan.json and kernel0.cubin,
/// atomically: into a fresh directory beside it, renamed over `dir` at the
/// end. An existing `dir` is replaced only if it is an artifact (it holds a
/// plan.json) or empty. On failure, `error` says why and nothing is left.
LogicalResult writeStepArtifact(const StepArtifact &artifact, StringRef dir,
                                std::string &error);

} // namespace mlir::nora

#endif // NORA_ARTIFACT_STEPARTIFACT_H
