//===- CudaRun.h - nora-run --device=cuda -----------------------*- C++ -*-===//
//
// nora-run's GPU path: the function is compiled here, in memory, into the
// artifact nora-compile would write (GPU pipeline for the device's chip,
// plan + cubin), and run by the runtime nora-exec uses. One code path for
// the GPU whether the compiler runs in the same process or on another
// machine.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_TOOLS_NORA_RUN_CUDARUN_H
#define NORA_TOOLS_NORA_RUN_CUDARUN_H

#include "nora/Runtime/CpuJit.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace mlir::nora {

/// Registers what the GPU pipeline needs in `context` (LLVM IR translations
/// for gpu-module-to-binary), before the module is parsed.
void registerCudaRunDialects(MLIRContext &context);

struct CudaRunResult {
  std::vector<runtime::Buffer> results;
  /// With repeat > 0: CUDA-event times of the calls.
  double medianMs = 0, minMs = 0;
};

/// Compiles @entry of `module` for CUDA device 0 (sm_90a on Hopper, sm_80 on
/// Ampere) with `mainloop`, `allowTf32` and `fuse` (false: the gradient is
/// its own kernel) and runs it on `arguments`, once or `repeat` times. Returns
/// "" or a message (the diagnostics of a compile error go to the context's
/// handler first).
std::string runOnCuda(ModuleOp module, StringRef entry,
                      const std::vector<runtime::Argument> &arguments,
                      StringRef mainloop, bool allowTf32, bool fuse,
                      unsigned repeat, CudaRunResult &out);

} // namespace mlir::nora

#endif // NORA_TOOLS_NORA_RUN_CUDARUN_H
