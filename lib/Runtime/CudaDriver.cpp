//===- CudaDriver.cpp - the CUDA driver API, loaded at run time -----------===//

#include "nora/Runtime/CudaDriver.h"

#include <cstdlib>
#include <dlfcn.h>
#include <mutex>

using namespace mlir::nora::runtime::cuda;

namespace {

/// Names of the errors a driver that cannot name them (a stub) returns.
struct KnownError {
  CUresult code;
  const char *name;
  const char *description;
};
constexpr KnownError kKnownErrors[] = {
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {34, "CUDA_ERROR_STUB_LIBRARY",
     "the CUDA driver is a stub library, not a real driver"},
    {35, "CUDA_ERROR_INSUFFICIENT_DRIVER",
     "the CUDA driver is older than the CUDA runtime"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
};

/// The loaded driver, or the reason there is none (computed once).
struct LoadedDriver {
  Driver driver = {};
  std::string error;
};

/// Resolves `names` in order (the versioned name first) into `slot`.
template <typename Fn>
bool resolve(void *library, Fn &slot, std::initializer_list<const char *> names,
             std::string &error, bool optional = false) {
  for (const char *name : names) {
    if (void *symbol = dlsym(library, name)) {
      slot = reinterpret_cast<Fn>(symbol);
      return true;
    }
  }
  slot = nullptr;
  if (optional)
    return true;
  error = std::string("no CUDA driver: the CUDA driver library lacks ") +
          *names.begin() + " (a driver for CUDA 12.0 or newer is needed)";
  return false;
}

LoadedDriver load() {
  LoadedDriver loaded;
  const char *override = std::getenv("NORA_CUDA_DRIVER");
  const char *path = override && *override ? override : "libcuda.so.1";
  void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *reason = dlerror();
    loaded.error = std::string("no CUDA driver: ") + path +
                   " could not be loaded (" +
                   (reason ? reason : "unknown reason") + ")";
    return loaded;
  }
  Driver &d = loaded.driver;
  std::string &e = loaded.error;
  bool ok =
      resolve(library, d.cuInit, {"cuInit"}, e) &&
      resolve(library, d.cuDriverGetVersion, {"cuDriverGetVersion"}, e) &&
      resolve(library, d.cuDeviceGetCount, {"cuDeviceGetCount"}, e) &&
      resolve(library, d.cuDeviceGet, {"cuDeviceGet"}, e) &&
      resolve(library, d.cuDeviceGetName, {"cuDeviceGetName"}, e) &&
      resolve(library, d.cuDeviceGetAttribute, {"cuDeviceGetAttribute"}, e) &&
      resolve(library, d.cuDevicePrimaryCtxRetain, {"cuDevicePrimaryCtxRetain"},
              e) &&
      resolve(library, d.cuDevicePrimaryCtxRelease,
              {"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"},
              e) &&
      resolve(library, d.cuCtxSetCurrent, {"cuCtxSetCurrent"}, e) &&
      resolve(library, d.cuCtxSynchronize, {"cuCtxSynchronize"}, e) &&
      resolve(library, d.cuCtxGetDevice, {"cuCtxGetDevice"}, e,
              /*optional=*/true) &&
      resolve(library, d.cuMemAlloc, {"cuMemAlloc_v2"}, e) &&
      resolve(library, d.cuMemFree, {"cuMemFree_v2"}, e) &&
      resolve(library, d.cuMemcpyHtoD, {"cuMemcpyHtoD_v2"}, e) &&
      resolve(library, d.cuMemcpyDtoH, {"cuMemcpyDtoH_v2"}, e) &&
      resolve(library, d.cuMemsetD8, {"cuMemsetD8_v2"}, e) &&
      resolve(library, d.cuMemsetD8Async, {"cuMemsetD8Async"}, e,
              /*optional=*/true) &&
      resolve(library, d.cuMemcpyHtoDAsync, {"cuMemcpyHtoDAsync_v2"}, e,
              /*optional=*/true) &&
      resolve(library, d.cuTensorMapEncodeTiled, {"cuTensorMapEncodeTiled"}, e,
              /*optional=*/true) &&
      resolve(library, d.cuModuleLoadData, {"cuModuleLoadData"}, e) &&
      resolve(library, d.cuModuleUnload, {"cuModuleUnload"}, e) &&
      resolve(library, d.cuModuleGetFunction, {"cuModuleGetFunction"}, e) &&
      resolve(library, d.cuFuncSetAttribute, {"cuFuncSetAttribute"}, e) &&
      resolve(library, d.cuFuncGetAttribute, {"cuFuncGetAttribute"}, e) &&
      resolve(library, d.cuOccupancyMaxActiveBlocksPerMultiprocessor,
              {"cuOccupancyMaxActiveBlocksPerMultiprocessor"}, e) &&
      resolve(library, d.cuOccupancyMaxActiveClusters,
              {"cuOccupancyMaxActiveClusters"}, e, /*optional=*/true) &&
      resolve(library, d.cuLaunchKernelEx, {"cuLaunchKernelEx"}, e) &&
      resolve(library, d.cuEventCreate, {"cuEventCreate"}, e) &&
      resolve(library, d.cuEventRecord, {"cuEventRecord"}, e) &&
      resolve(library, d.cuEventSynchronize, {"cuEventSynchronize"}, e) &&
      resolve(library, d.cuEventElapsedTime,
              {"cuEventElapsedTime_v2", "cuEventElapsedTime"}, e) &&
      resolve(library, d.cuEventDestroy,
              {"cuEventDestroy_v2", "cuEventDestroy"}, e) &&
      resolve(library, d.cuGetErrorName, {"cuGetErrorName"}, e) &&
      resolve(library, d.cuGetErrorString, {"cuGetErrorString"}, e);
  // The library stays loaded for the life of the process: the driver does
  // not support being unloaded.
  (void)ok;
  return loaded;
}

} // namespace

const Driver *Driver::get(std::string &error) {
  static LoadedDriver loaded = load();
  if (!loaded.error.empty()) {
    error = loaded.error;
    return nullptr;
  }
  return &loaded.driver;
}

std::string Driver::check(CUresult result, const char *call) const {
  if (result == CUDA_SUCCESS)
    return "";
  const char *name = nullptr;
  const char *description = nullptr;
  if (cuGetErrorName(result, &name) != CUDA_SUCCESS || !name ||
      cuGetErrorString(result, &description) != CUDA_SUCCESS || !description) {
    // Stub drivers (the toolkit's libcuda.so) know no error names.
    name = "CUDA_ERROR_UNKNOWN";
    description = "unrecognized error code";
    for (const auto &known : kKnownErrors)
      if (known.code == result) {
        name = known.name;
        description = known.description;
      }
  }
  return std::string(call) + " failed: " + name + ": " + description;
}

std::string Device::open(int ordinal, Device &out) {
  out = Device();
  std::string error;
  const Driver *driver = Driver::get(error);
  if (!driver)
    return error;
  out.driver = driver;
  if (!(error = driver->check(driver->cuInit(0), "cuInit")).empty())
    return "no CUDA device: " + error;
  int count = 0;
  if (!(error =
            driver->check(driver->cuDeviceGetCount(&count), "cuDeviceGetCount"))
           .empty())
    return "no CUDA device: " + error;
  if (count == 0)
    return "no CUDA device: the CUDA driver reports no GPU";
  if (ordinal < 0 || ordinal >= count)
    return "no CUDA device " + std::to_string(ordinal) + ": the driver has " +
           std::to_string(count) + " device(s)";
  auto call = [&](CUresult result, const char *name) {
    if (error.empty())
      error = driver->check(result, name);
    return error.empty();
  };
  char name[256] = {};
  int cooperative = 0;
  call(driver->cuDriverGetVersion(&out.driverVersion), "cuDriverGetVersion");
  call(driver->cuDeviceGet(&out.device, ordinal), "cuDeviceGet");
  call(driver->cuDeviceGetName(name, sizeof(name) - 1, out.device),
       "cuDeviceGetName");
  auto attribute = [&](int *value, int attr) {
    call(driver->cuDeviceGetAttribute(value, attr, out.device),
         "cuDeviceGetAttribute");
  };
  attribute(&out.computeMajor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  attribute(&out.computeMinor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  attribute(&out.multiprocessors, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  attribute(&out.maxSharedPerBlockOptin,
            CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
  attribute(&cooperative, CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH);
  out.cooperativeLaunch = cooperative != 0;
  out.name = name;
  if (call(driver->cuDevicePrimaryCtxRetain(&out.context, out.device),
           "cuDevicePrimaryCtxRetain") &&
      !call(driver->cuCtxSetCurrent(out.context), "cuCtxSetCurrent"))
    out.close();
  return error;
}

void Device::close() {
  if (driver && context) {
    driver->cuDevicePrimaryCtxRelease(device);
    context = nullptr;
  }
}

std::string Device::describe() const {
  return name + " (sm_" + std::to_string(computeMajor) +
         std::to_string(computeMinor) + ", " + std::to_string(multiprocessors) +
         " SMs, driver " + std::to_string(driverVersion / 1000) + "." +
         std::to_string(driverVersion % 1000 / 10) + ")";
}
