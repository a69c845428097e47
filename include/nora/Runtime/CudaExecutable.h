//===- CudaExecutable.h - load and launch an artifact (no LLVM) -*- C++ -*-===//
//
// Runs a compiled step (CudaArtifact.h) on a GPU through the driver layer
// (CudaDriver.h): loads the cubins, computes the launch grids, allocates the
// device buffers, and launches the kernels in order on one stream. Every
// function returns an error message ("" on success); nothing aborts.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_RUNTIME_CUDAEXECUTABLE_H
#define NORA_RUNTIME_CUDAEXECUTABLE_H

#include "nora/Runtime/CudaArtifact.h"
#include "nora/Runtime/CudaDriver.h"

#include <memory>

namespace mlir::nora::runtime {

/// One argument's host value: the raw element bytes of a tensor (row-major,
/// in the plan's dtype) or an f32 scalar.
struct HostArgument {
  bool isTensor = false;
  std::vector<uint8_t> bytes;
  float scalar = 0;
};

/// Times of `runs` calls measured with CUDA events, in milliseconds.
struct Timing {
  double medianMs = 0, minMs = 0;
  unsigned runs = 0;
};

/// The CTAs of a persistent launch: min(tiles, coResidentCtas), rounded down
/// to a multiple of `clusterWidth`. An error when not one cluster (or CTA) can
/// be resident. Separate from Executable so it can be tested without a GPU.
std::string persistentGridSize(int64_t tiles, int64_t coResidentCtas,
                               unsigned clusterWidth, unsigned &ctas);

/// Whether a cubin for the plan's chip runs on a device of compute capability
/// major.minor: "sm_NNa" needs exactly that chip, "sm_NN" the same major and
/// at least that minor. "" when it does, else a message.
std::string checkChip(const Plan &plan, int major, int minor,
                      const std::string &deviceName);

/// A loaded artifact with its device buffers.
class Executable {
public:
  /// Opens CUDA device `ordinal`, checks the chip, loads every cubin,
  /// resolves the kernels, computes their grids and allocates the buffers.
  /// `maxPersistentCtas` > 0 caps the grid of persistent kernels below what
  /// the occupancy allows (to exercise a kernel's small-grid path).
  static std::string load(const Plan &plan, int ordinal,
                          std::unique_ptr<Executable> &out,
                          int64_t maxPersistentCtas = 0);
  ~Executable();
  Executable(const Executable &) = delete;
  Executable &operator=(const Executable &) = delete;

  /// Copies the arguments to the device; their count, kinds and byte sizes
  /// must match the plan.
  std::string setArguments(const std::vector<HostArgument> &arguments);
  /// One call of the step: zero-fills what the plan zeroes every call (and,
  /// on the first call or after a failed one, the zero-once ranges),
  /// launches every kernel in order, waits for them.
  std::string run();
  /// One call on the caller's device memory, asynchronous on `stream` (0:
  /// the default stream), nothing copied: `arguments[i]` is the
  /// CUdeviceptr of tensor argument i (0 for a scalar, whose value is
  /// `scalars[i]`), `results[k]` that of result k. The tensors must have the
  /// plan's types and sizes, start 16-byte aligned, live on this
  /// executable's device and stay valid until the stream reaches the call;
  /// results must not alias arguments.
  /// Calls share the executable's workspace: they must be ordered (one
  /// stream, or synchronized).
  std::string runOnDevice(const std::vector<cuda::CUdeviceptr> &arguments,
                          const std::vector<float> &scalars,
                          const std::vector<cuda::CUdeviceptr> &results,
                          cuda::CUstream stream);
  /// `repeats` calls, each timed with a pair of events around it.
  std::string time(unsigned repeats, Timing &out);
  /// Copies every result back to the host: its bytes (f32 elements, or one
  /// int64 for an i64 count).
  std::string getResults(std::vector<std::vector<uint8_t>> &results);

  const cuda::Device &getDevice() const { return device; }
  /// The grid kernel `index` is launched with.
  const std::array<unsigned, 3> &getGrid(size_t index) const {
    return kernels[index].grid;
  }

private:
  struct LoadedKernel {
    cuda::CUmodule module = nullptr;
    cuda::CUfunction function = nullptr;
    std::array<unsigned, 3> grid = {1, 1, 1};
    /// One 8-byte slot per parameter, and pointers to them for the launch.
    std::vector<uint64_t> slots;
    std::vector<void *> pointers;
  };

  Executable() = default;
  std::string loadKernel(size_t index);
  /// Points every kernel parameter at `arguments`, `scalars` and `results`.
  void bindParams(const std::vector<cuda::CUdeviceptr> &arguments,
                  const std::vector<cuda::CUdeviceptr> &results);
  std::string launchAll(cuda::CUstream stream);
  /// Encodes the plan's tensor maps for the bound arguments and writes them
  /// into the workspace, unless they are there already for these pointers.
  std::string writeTensorMaps(cuda::CUstream stream);
  int64_t maxPersistentCtas = 0;
  std::string allocate(cuda::CUdeviceptr &pointer, int64_t bytes);

  Plan plan;
  cuda::Device device;
  std::vector<LoadedKernel> kernels;
  std::vector<cuda::CUdeviceptr> argumentBuffers; ///< 0 for scalars.
  std::vector<float> scalars;
  std::vector<cuda::CUdeviceptr> resultBuffers;
  cuda::CUdeviceptr workspace = 0;
  /// The zero-once ranges must be zero-filled before the next launch: the
  /// workspace is new, or a call failed (it may have stopped between a
  /// kernel that raised a counter and the one that clears it).
  bool zeroOncePending = true;
  bool argumentsSet = false;
  /// The argument pointers the parameters are bound to, and those the
  /// tensor maps in the workspace describe (empty: none written yet).
  std::vector<cuda::CUdeviceptr> boundArguments, mappedArguments;
};

} // namespace mlir::nora::runtime

#endif // NORA_RUNTIME_CUDAEXECUTABLE_H
