//===- CpuJit.h - compile a nora function and run it on the CPU -*- C++ -*-===//
//
// The embedded default backend: lowers one function through the CPU pipeline,
// JIT-compiles it with MLIR's ExecutionEngine and calls it on host buffers.
// Tensor arguments are passed as row-major buffers; results come back as
// row-major f32 buffers (the compiled function writes them into
// caller-allocated out-params).
//
//===----------------------------------------------------------------------===//

#ifndef NORA_RUNTIME_CPUJIT_H
#define NORA_RUNTIME_CPUJIT_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <memory>
#include <string>
#include <vector>

namespace mlir {
class ExecutionEngine;
} // namespace mlir

namespace mlir::nora::runtime {

/// A dense row-major tensor: its shape and the bytes of its elements, in the
/// element type of the function argument it is passed as.
struct Buffer {
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
  /// Results only: int64 elements (an i64 result) instead of f32.
  bool isInteger = false;
};

/// One argument of a call: a tensor or an f32 scalar.
struct Argument {
  bool isTensor = false;
  Buffer tensor;
  float scalar = 0.0f;
};

struct CompileOptions {
  /// Run the fusion pass (false: lower op by op, `--no-fuse`).
  bool fuse = true;
  /// Rows of W per panel of a fused step (0: the pipeline's choice).
  int64_t rowsPerPanel = 0;
  /// Run row panels on OpenMP threads (false: one thread, and LLVM's
  /// OpenMP runtime is not loaded into the process).
  bool threads = true;
  /// When set ("skip_row" or "skip_step"), every unguarded step of the
  /// function gets this non-finite mode (nora-guard-nonfinite), and the
  /// compiled function returns one more result: the int64 total of skipped
  /// rows or steps, shape {1}.
  std::string nonfinite;
};

/// Loads the dialects a nora module may use into `context`.
void registerDialects(mlir::MLIRContext &context);

/// Checks that `func` can be called from the host: ranked tensors of f32,
/// bf16 or f16 and f32 scalars as arguments; statically shaped f32 or i64
/// tensors and f32 or i64 scalars as results (a scalar comes back as a 0-d
/// buffer). Returns an error message or an empty string.
std::string checkSignature(mlir::func::FuncOp func);

/// A JIT-compiled function.
class CompiledFunction {
public:
  /// How one result comes back.
  struct ResultLayout {
    std::vector<int64_t> shape; ///< Empty for a scalar.
    bool isInteger = false;     ///< int64 elements, else f32.
  };

  CompiledFunction(std::unique_ptr<mlir::ExecutionEngine> engine,
                   std::string entry, std::vector<ResultLayout> results,
                   std::vector<size_t> argumentElementSizes);
  ~CompiledFunction();

  /// Calls the function. `results` receives one buffer per result.
  /// Returns false and sets `error` when the arguments do not fit.
  bool run(const std::vector<Argument> &arguments, std::vector<Buffer> &results,
           std::string &error);

  /// Calls the function on caller memory, with no copy: `tensors[i]` points
  /// to the row-major elements of tensor argument i (of shape `shapes[i]`,
  /// in the argument's element type), nullptr for an f32 scalar argument
  /// (whose value is `scalars[i]`); `results[k]` to a buffer of
  /// resultByteSize(k) bytes that result k is written into. Buffers must not
  /// overlap. Returns false and sets `error` when the counts do not fit.
  bool runOnPointers(const std::vector<const void *> &tensors,
                     const std::vector<std::vector<int64_t>> &shapes,
                     const std::vector<float> &scalars,
                     const std::vector<void *> &results, std::string &error);

  /// Bytes of result `index`: its elements times 4 (f32) or 8 (i64).
  size_t resultByteSize(size_t index) const;
  const std::vector<ResultLayout> &getResultLayouts() const {
    return resultLayouts;
  }
  /// Element bytes of each argument, 0 for an f32 scalar.
  const std::vector<size_t> &getArgumentElementSizes() const {
    return argumentElementSizes;
  }

private:
  std::unique_ptr<mlir::ExecutionEngine> engine;
  std::string entry;
  std::vector<ResultLayout> resultLayouts;
  std::vector<size_t> argumentElementSizes; ///< 0 for scalars.
};

/// Lowers `module` (modified in place) for the CPU and JIT-compiles it.
/// Diagnostics go to the context's handler; on failure returns null and sets
/// `error`.
std::unique_ptr<CompiledFunction> compile(mlir::ModuleOp module,
                                          llvm::StringRef entry,
                                          const CompileOptions &options,
                                          std::string &error);

} // namespace mlir::nora::runtime

#endif // NORA_RUNTIME_CPUJIT_H
