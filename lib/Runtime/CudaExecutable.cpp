//===- CudaExecutable.cpp - load and launch an artifact -------------------===//
//
// A call of the step, on the one (null) stream of the primary context:
//
//   cuMemsetD8(workspace ranges, 0)    "workspace_zero", every call; the
//                                      "workspace_zero_once" counters on the
//                                      first call and after a failed one
//                                      (the kernels leave them at 0)
//   cuMemcpyHtoD(tensor maps)          TMA descriptors of the arguments, when
//                                      their pointers changed
//   cuLaunchKernelEx(kernel 0) ...     in plan order; cooperative and cluster
//   cuLaunchKernelEx(kernel N-1)       launches through launch attributes
//
// Persistent grids are sized here, once, from the occupancy the driver
// reports for the kernel's block and dynamic shared memory, so that a
// cooperative kernel never has more CTAs than can be co-resident.
//
//===----------------------------------------------------------------------===//

#include "nora/Runtime/CudaExecutable.h"

#include <algorithm>
#include <cstring>

using namespace mlir::nora;
using namespace mlir::nora::runtime;
using namespace mlir::nora::runtime::cuda;

/// The launch configuration of `spec` on `grid`, on the default stream.
static CUlaunchConfig launchConfig(const KernelSpec &spec,
                                   const std::array<unsigned, 3> &grid,
                                   CUlaunchAttribute *attributes,
                                   unsigned count) {
  CUlaunchConfig config = {};
  config.gridDimX = grid[0];
  config.gridDimY = grid[1];
  config.gridDimZ = grid[2];
  config.blockDimX = spec.block[0];
  config.blockDimY = spec.block[1];
  config.blockDimZ = spec.block[2];
  config.sharedMemBytes = spec.dynamicSharedBytes;
  config.hStream = nullptr;
  config.attrs = attributes;
  config.numAttrs = count;
  return config;
}

std::string runtime::persistentGridSize(int64_t tiles, int64_t coResidentCtas,
                                        unsigned clusterWidth, unsigned &ctas) {
  if (clusterWidth == 0)
    return "invalid cluster width 0";
  if (coResidentCtas < int64_t(clusterWidth))
    return "no " + std::string(clusterWidth > 1 ? "cluster" : "CTA") +
           " of this kernel can be resident (the block, registers or "
           "dynamic shared memory exceed what one multiprocessor offers)";
  int64_t count = std::min(tiles, coResidentCtas);
  count -= count % clusterWidth;
  ctas = unsigned(std::max<int64_t>(count, clusterWidth));
  return "";
}

std::string runtime::checkChip(const Plan &plan, int major, int minor,
                               const std::string &deviceName) {
  bool runs =
      plan.chipArchSpecific
          ? major == int(plan.chipMajor) && minor == int(plan.chipMinor)
          : major == int(plan.chipMajor) && minor >= int(plan.chipMinor);
  if (runs)
    return "";
  return "the artifact is compiled for " + plan.chip + " but the device (" +
         deviceName + ") is sm_" + std::to_string(major) +
         std::to_string(minor);
}

std::string Executable::allocate(CUdeviceptr &pointer, int64_t bytes) {
  // Empty tensors still get a (small) buffer: kernels may be handed its
  // address.
  size_t size = size_t(std::max<int64_t>(bytes, 256));
  return device.driver->check(device.driver->cuMemAlloc(&pointer, size),
                              "cuMemAlloc");
}

std::string Executable::loadKernel(size_t index) {
  const Driver &cu = *device.driver;
  const KernelSpec &spec = plan.kernels[index];
  LoadedKernel &kernel = kernels[index];
  std::string where = "kernels[" + std::to_string(index) + "] (" + spec.name +
                      " in " + spec.cubinFile + "): ";
  std::string error =
      cu.check(cu.cuModuleLoadData(&kernel.module, spec.cubin.data()),
               "cuModuleLoadData");
  if (error.empty())
    error = cu.check(cu.cuModuleGetFunction(&kernel.function, kernel.module,
                                            spec.name.c_str()),
                     "cuModuleGetFunction");
  if (!error.empty())
    return where + error;

  // A block's static and dynamic shared memory together must fit the
  // device's opt-in maximum (227 KiB on Hopper): the launch would fail.
  int staticShared = 0;
  error = cu.check(cu.cuFuncGetAttribute(&staticShared,
                                         CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
                                         kernel.function),
                   "cuFuncGetAttribute(SHARED_SIZE_BYTES)");
  if (!error.empty())
    return where + error;
  if (int64_t(spec.dynamicSharedBytes) + staticShared >
      device.maxSharedPerBlockOptin)
    return where + "needs " + std::to_string(spec.dynamicSharedBytes) +
           " bytes of dynamic and " + std::to_string(staticShared) +
           " of static shared memory, the device offers " +
           std::to_string(device.maxSharedPerBlockOptin) + " a block";
  if (spec.dynamicSharedBytes > 48 * 1024)
    error = cu.check(
        cu.cuFuncSetAttribute(kernel.function,
                              CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                              int(spec.dynamicSharedBytes)),
        "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
  unsigned clusterSize = spec.cluster[0] * spec.cluster[1] * spec.cluster[2];
  if (error.empty() && clusterSize > 8)
    error =
        cu.check(cu.cuFuncSetAttribute(
                     kernel.function,
                     CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1),
                 "cuFuncSetAttribute(NON_PORTABLE_CLUSTER_SIZE_ALLOWED)");
  if (!error.empty())
    return where + error;
  if (spec.cooperative && !device.cooperativeLaunch)
    return where + "a cooperative kernel, but the device does not support "
                   "cooperative launches";

  // How many CTAs can be resident at once.
  int64_t coResident = 0;
  unsigned threads = spec.block[0] * spec.block[1] * spec.block[2];
  if (clusterSize == 1) {
    int perSM = 0;
    error = cu.check(
        cu.cuOccupancyMaxActiveBlocksPerMultiprocessor(
            &perSM, kernel.function, int(threads), spec.dynamicSharedBytes),
        "cuOccupancyMaxActiveBlocksPerMultiprocessor");
    coResident = int64_t(perSM) * device.multiprocessors;
  } else {
    if (!cu.cuOccupancyMaxActiveClusters)
      return where + "cluster launches need cuOccupancyMaxActiveClusters, "
                     "which this CUDA driver lacks";
    CUlaunchAttribute attribute = {};
    attribute.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    attribute.value.clusterDim = {spec.cluster[0], spec.cluster[1],
                                  spec.cluster[2]};
    CUlaunchConfig config = launchConfig(spec, spec.cluster, &attribute, 1);
    int clusters = 0;
    error = cu.check(
        cu.cuOccupancyMaxActiveClusters(&clusters, kernel.function, &config),
        "cuOccupancyMaxActiveClusters");
    coResident = int64_t(clusters) * clusterSize;
  }
  if (!error.empty())
    return where + error;

  if (spec.persistent) {
    unsigned ctas = 0;
    if (maxPersistentCtas > 0)
      coResident = std::min(coResident, maxPersistentCtas);
    error = persistentGridSize(spec.persistentTiles, coResident,
                               spec.cluster[0], ctas);
    if (!error.empty())
      return where + error;
    kernel.grid = {ctas, 1, 1};
  } else {
    kernel.grid = spec.grid;
    int64_t total = int64_t(spec.grid[0]) * spec.grid[1] * spec.grid[2];
    if (spec.cooperative && total > coResident)
      return where + "a cooperative grid of " + std::to_string(total) +
             " CTAs, but only " + std::to_string(coResident) +
             " can be co-resident on this device";
  }
  kernel.slots.assign(spec.params.size(), 0);
  kernel.pointers.resize(spec.params.size());
  for (size_t i = 0; i < spec.params.size(); ++i)
    kernel.pointers[i] = &kernel.slots[i];
  return "";
}

std::string Executable::load(const Plan &plan, int ordinal,
                             std::unique_ptr<Executable> &out,
                             int64_t maxPersistentCtas) {
  out.reset();
  std::unique_ptr<Executable> executable(new Executable());
  executable->plan = plan;
  executable->maxPersistentCtas = maxPersistentCtas;
  std::string error = cuda::Device::open(ordinal, executable->device);
  if (!error.empty())
    return error;
  const cuda::Device &device = executable->device;
  error =
      checkChip(plan, device.computeMajor, device.computeMinor, device.name);
  if (!error.empty())
    return error;
  executable->kernels.resize(plan.kernels.size());
  for (size_t i = 0; i < plan.kernels.size(); ++i)
    if (!(error = executable->loadKernel(i)).empty())
      return error;

  executable->argumentBuffers.assign(plan.arguments.size(), 0);
  executable->scalars.assign(plan.arguments.size(), 0.0f);
  executable->resultBuffers.assign(plan.results.size(), 0);
  for (size_t i = 0; i < plan.arguments.size(); ++i)
    if (plan.arguments[i].isTensor &&
        !(error = executable->allocate(executable->argumentBuffers[i],
                                       plan.arguments[i].byteSize))
             .empty())
      return "argument #" + std::to_string(i) + ": " + error;
  for (size_t i = 0; i < plan.results.size(); ++i)
    if (!(error = executable->allocate(executable->resultBuffers[i],
                                       plan.results[i].byteSize))
             .empty())
      return "result #" + std::to_string(i) + ": " + error;
  if (!plan.tensorMaps.empty() &&
      !executable->device.driver->cuTensorMapEncodeTiled)
    return "the step's kernels read their inputs through tensor maps (TMA), "
           "and this CUDA driver lacks cuTensorMapEncodeTiled (CUDA 12.0 or "
           "newer is needed)";
  if (plan.workspaceBytes > 0 &&
      !(error =
            executable->allocate(executable->workspace, plan.workspaceBytes))
           .empty())
    return "workspace: " + error;
  out = std::move(executable);
  return "";
}

Executable::~Executable() {
  if (!device.driver)
    return;
  const Driver &cu = *device.driver;
  for (CUdeviceptr pointer : argumentBuffers)
    if (pointer)
      cu.cuMemFree(pointer);
  for (CUdeviceptr pointer : resultBuffers)
    if (pointer)
      cu.cuMemFree(pointer);
  if (workspace)
    cu.cuMemFree(workspace);
  for (LoadedKernel &kernel : kernels)
    if (kernel.module)
      cu.cuModuleUnload(kernel.module);
  device.close();
}

std::string
Executable::setArguments(const std::vector<HostArgument> &arguments) {
  const Driver &cu = *device.driver;
  if (arguments.size() != plan.arguments.size())
    return "the step takes " + std::to_string(plan.arguments.size()) +
           " arguments, got " + std::to_string(arguments.size());
  for (size_t i = 0; i < arguments.size(); ++i) {
    const ValueSpec &spec = plan.arguments[i];
    std::string where = "argument #" + std::to_string(i) + " (" + spec.name +
                        ", " + spec.typeString() + "): ";
    if (arguments[i].isTensor != spec.isTensor)
      return where + "expected a " + (spec.isTensor ? "tensor" : "scalar");
    if (!spec.isTensor) {
      scalars[i] = arguments[i].scalar;
      continue;
    }
    if (int64_t(arguments[i].bytes.size()) != spec.byteSize)
      return where + "expected " + std::to_string(spec.byteSize) +
             " bytes, got " + std::to_string(arguments[i].bytes.size());
    if (spec.byteSize == 0)
      continue;
    std::string error =
        cu.check(cu.cuMemcpyHtoD(argumentBuffers[i], arguments[i].bytes.data(),
                                 arguments[i].bytes.size()),
                 "cuMemcpyHtoD");
    if (!error.empty())
      return where + error;
  }
  bindParams(argumentBuffers, resultBuffers);
  argumentsSet = true;
  return "";
}

void Executable::bindParams(const std::vector<CUdeviceptr> &arguments,
                            const std::vector<CUdeviceptr> &results) {
  boundArguments = arguments;
  // Bind the parameters: pointers, scalars by value, immediates.
  for (size_t k = 0; k < kernels.size(); ++k) {
    const std::vector<KernelParam> &params = plan.kernels[k].params;
    for (size_t i = 0; i < params.size(); ++i) {
      uint64_t &slot = kernels[k].slots[i];
      size_t index = size_t(params[i].value);
      slot = 0;
      switch (params[i].kind) {
      case KernelParam::Kind::Argument:
        if (plan.arguments[index].isTensor)
          slot = arguments[index];
        else
          std::memcpy(&slot, &scalars[index], sizeof(float));
        break;
      case KernelParam::Kind::Result:
        slot = results[index];
        break;
      case KernelParam::Kind::Workspace:
        slot = workspace + uint64_t(params[i].value);
        break;
      case KernelParam::Kind::I32: {
        auto value = int32_t(params[i].value);
        std::memcpy(&slot, &value, sizeof(value));
        break;
      }
      case KernelParam::Kind::I64:
        std::memcpy(&slot, &params[i].value, sizeof(int64_t));
        break;
      }
    }
  }
}

std::string Executable::runOnDevice(const std::vector<CUdeviceptr> &arguments,
                                    const std::vector<float> &values,
                                    const std::vector<CUdeviceptr> &results,
                                    CUstream stream) {
  if (arguments.size() != plan.arguments.size() ||
      values.size() != plan.arguments.size())
    return "the step takes " + std::to_string(plan.arguments.size()) +
           " arguments, got " + std::to_string(arguments.size());
  if (results.size() != plan.results.size())
    return "the step has " + std::to_string(plan.results.size()) +
           " results, got " + std::to_string(results.size());
  for (size_t i = 0; i < arguments.size(); ++i) {
    const ValueSpec &spec = plan.arguments[i];
    if (spec.isTensor && spec.byteSize > 0 && !arguments[i])
      return "argument #" + std::to_string(i) + " (" + spec.name + ", " +
             spec.typeString() + "): a null device pointer";
    // The tensor-core mainloop copies 16-byte chunks (cp.async).
    if (spec.isTensor && arguments[i] % 16 != 0)
      return "argument #" + std::to_string(i) + " (" + spec.name + ", " +
             spec.typeString() +
             "): the device pointer is not 16-byte aligned (the kernels "
             "load 16-byte chunks; pass a tensor that starts its storage)";
    if (!spec.isTensor)
      scalars[i] = values[i];
  }
  for (size_t k = 0; k < results.size(); ++k)
    if (plan.results[k].byteSize > 0 && !results[k])
      return "result #" + std::to_string(k) + " (" + plan.results[k].name +
             "): a null device pointer";
  bindParams(arguments, results);
  argumentsSet = true;
  std::string error = launchAll(stream);
  // The host path binds its own buffers again before its next call.
  argumentsSet = false;
  return error;
}

std::string Executable::launchAll(CUstream stream) {
  const Driver &cu = *device.driver;
  if (!argumentsSet)
    return "the arguments were not set before the launch";
  if (stream && !cu.cuMemsetD8Async)
    return "launches on a stream need cuMemsetD8Async, which this CUDA "
           "driver lacks";
  auto zero = [&](CUdeviceptr at, size_t bytes) {
    return cu.check(stream ? cu.cuMemsetD8Async(at, 0, bytes, stream)
                           : cu.cuMemsetD8(at, 0, bytes),
                    "cuMemsetD8(workspace)");
  };
  std::string error;
  auto zeroRanges = [&](const std::vector<std::pair<int64_t, int64_t>> &list) {
    for (auto [offset, bytes] : list)
      if (error.empty())
        error = zero(workspace + uint64_t(offset), size_t(bytes));
  };
  if (workspace && plan.workspaceZeroAll)
    error = zero(workspace, size_t(plan.workspaceBytes));
  // Only what the kernels need zeroed.
  zeroRanges(plan.workspaceZero);
  if (zeroOncePending && workspace)
    zeroRanges(plan.workspaceZeroOnce);
  if (error.empty())
    error = writeTensorMaps(stream);
  for (size_t k = 0; error.empty() && k < kernels.size(); ++k) {
    const KernelSpec &spec = plan.kernels[k];
    LoadedKernel &kernel = kernels[k];
    CUlaunchAttribute attributes[2] = {};
    unsigned count = 0;
    if (spec.cooperative) {
      attributes[count].id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
      attributes[count++].value.cooperative = 1;
    }
    if (spec.cluster[0] * spec.cluster[1] * spec.cluster[2] > 1) {
      attributes[count].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
      attributes[count++].value.clusterDim = {spec.cluster[0], spec.cluster[1],
                                              spec.cluster[2]};
    }
    CUlaunchConfig config =
        launchConfig(spec, kernel.grid, count ? attributes : nullptr, count);
    config.hStream = stream;
    error = cu.check(cu.cuLaunchKernelEx(&config, kernel.function,
                                         kernel.pointers.data(), nullptr),
                     "cuLaunchKernelEx");
    if (!error.empty())
      error =
          "kernels[" + std::to_string(k) + "] (" + spec.name + "): " + error;
  }
  // A failed call (in the zero-fill or any launch) may leave counters
  // raised: the next call zero-fills them again.
  zeroOncePending = !error.empty();
  return error;
}

/// The CUtensorMapDataType of `type`.
static int tensorMapDataType(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  case ElementType::BF16:
    return CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  case ElementType::F16:
    return CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  case ElementType::I64: // never an argument
    break;
  }
  return CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
}

std::string Executable::writeTensorMaps(CUstream stream) {
  if (plan.tensorMaps.empty() || mappedArguments == boundArguments)
    return "";
  const Driver &cu = *device.driver;
  if (stream && !cu.cuMemcpyHtoDAsync)
    return "launches on a stream need cuMemcpyHtoDAsync, which this CUDA "
           "driver lacks";
  mappedArguments.clear();
  for (size_t i = 0; i < plan.tensorMaps.size(); ++i) {
    const TensorMapSpec &map = plan.tensorMaps[i];
    const ValueSpec &spec = plan.arguments[map.argument];
    // The driver's order is innermost first; the plan's is row-major.
    size_t rank = spec.shape.size();
    unsigned long long dims[5], strides[4];
    unsigned box[5], elementStrides[5];
    unsigned long long stride = elementTypeSize(spec.dtype);
    for (size_t d = 0; d < rank; ++d) {
      size_t from = rank - 1 - d;
      dims[d] = (unsigned long long)spec.shape[from];
      box[d] = unsigned(map.box[from]);
      elementStrides[d] = 1;
      if (d > 0)
        strides[d - 1] = stride;
      stride *= dims[d];
    }
    int swizzle = map.swizzle == 128  ? CU_TENSOR_MAP_SWIZZLE_128B
                  : map.swizzle == 64 ? CU_TENSOR_MAP_SWIZZLE_64B
                  : map.swizzle == 32 ? CU_TENSOR_MAP_SWIZZLE_32B
                                      : CU_TENSOR_MAP_SWIZZLE_NONE;
    CUtensorMap encoded;
    std::string error = cu.check(
        cu.cuTensorMapEncodeTiled(
            &encoded, tensorMapDataType(spec.dtype), unsigned(rank),
            reinterpret_cast<void *>(uintptr_t(boundArguments[map.argument])),
            dims, strides, box, elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
            swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
        "cuTensorMapEncodeTiled");
    if (error.empty()) {
      CUdeviceptr at = workspace + uint64_t(map.workspaceOffset);
      // From pageable memory: the call returns once `encoded` is staged.
      error = cu.check(
          stream ? cu.cuMemcpyHtoDAsync(at, &encoded, sizeof(encoded), stream)
                 : cu.cuMemcpyHtoD(at, &encoded, sizeof(encoded)),
          "cuMemcpyHtoD(tensor map)");
    }
    if (!error.empty())
      return "tensor_maps[" + std::to_string(i) + "] (argument " +
             std::to_string(map.argument) + ", " + spec.name + "): " + error;
  }
  mappedArguments = boundArguments;
  return "";
}

std::string Executable::run() {
  std::string error = launchAll(nullptr);
  if (error.empty())
    error = device.driver->check(device.driver->cuCtxSynchronize(),
                                 "cuCtxSynchronize");
  return error;
}

std::string Executable::time(unsigned repeats, Timing &out) {
  const Driver &cu = *device.driver;
  out = Timing();
  CUevent start = nullptr, stop = nullptr;
  std::string error = cu.check(cu.cuEventCreate(&start, 0), "cuEventCreate");
  if (error.empty())
    error = cu.check(cu.cuEventCreate(&stop, 0), "cuEventCreate");
  std::vector<double> times;
  for (unsigned r = 0; error.empty() && r < repeats; ++r) {
    float ms = 0;
    error = cu.check(cu.cuEventRecord(start, nullptr), "cuEventRecord");
    if (error.empty())
      error = launchAll(nullptr);
    if (error.empty())
      error = cu.check(cu.cuEventRecord(stop, nullptr), "cuEventRecord");
    if (error.empty())
      error = cu.check(cu.cuEventSynchronize(stop), "cuEventSynchronize");
    if (error.empty())
      error = cu.check(cu.cuEventElapsedTime(&ms, start, stop),
                       "cuEventElapsedTime");
    times.push_back(ms);
  }
  if (error.empty())
    error = cu.check(cu.cuCtxSynchronize(), "cuCtxSynchronize");
  if (start)
    cu.cuEventDestroy(start);
  if (stop)
    cu.cuEventDestroy(stop);
  if (!error.empty() || times.empty())
    return error;
  std::sort(times.begin(), times.end());
  size_t n = times.size();
  out.medianMs = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  out.minMs = times[0];
  out.runs = unsigned(n);
  return "";
}

std::string Executable::getResults(std::vector<std::vector<uint8_t>> &results) {
  const Driver &cu = *device.driver;
  results.assign(plan.results.size(), {});
  for (size_t i = 0; i < plan.results.size(); ++i) {
    results[i].resize(size_t(plan.results[i].byteSize));
    if (plan.results[i].byteSize == 0)
      continue;
    std::string error =
        cu.check(cu.cuMemcpyDtoH(results[i].data(), resultBuffers[i],
                                 size_t(plan.results[i].byteSize)),
                 "cuMemcpyDtoH");
    if (!error.empty())
      return "result #" + std::to_string(i) + " (" + plan.results[i].name +
             "): " + error;
  }
  return "";
}
