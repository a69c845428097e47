//===- CudaDriver.h - the CUDA driver API, loaded at run time ---*- C++ -*-===//
//
// A thin layer over the CUDA driver API. libcuda.so.1 is opened with dlopen
// when first needed, so everything links and runs on machines without a
// driver and builds without the CUDA toolkit: the few types and enum values
// used are declared here (the driver ABI is stable; CudaDriver.cpp checks them
// against cuda.h when the toolkit is present). Every failure is returned as
// a message "<call> failed: <CUDA_ERROR_NAME>: <description>"; nothing here
// aborts.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_RUNTIME_CUDADRIVER_H
#define NORA_RUNTIME_CUDADRIVER_H

#include <cstddef>
#include <string>

namespace mlir::nora::runtime::cuda {

// The driver API's types, as in cuda.h.
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUevent = struct CUevent_st *;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;

// CUdevice_attribute values.
constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH = 95;
constexpr int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

// CUfunction_attribute values.
constexpr int CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0;
constexpr int CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1;
constexpr int CU_FUNC_ATTRIBUTE_NUM_REGS = 4;
constexpr int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
constexpr int CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14;

// CUtensorMap enum values (CUtensorMapDataType, ...Swizzle, ...L2promotion).
constexpr int CU_TENSOR_MAP_DATA_TYPE_FLOAT16 = 6;
constexpr int CU_TENSOR_MAP_DATA_TYPE_FLOAT32 = 7;
constexpr int CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9;
constexpr int CU_TENSOR_MAP_INTERLEAVE_NONE = 0;
constexpr int CU_TENSOR_MAP_SWIZZLE_NONE = 0;
constexpr int CU_TENSOR_MAP_SWIZZLE_32B = 1;
constexpr int CU_TENSOR_MAP_SWIZZLE_64B = 2;
constexpr int CU_TENSOR_MAP_SWIZZLE_128B = 3;
constexpr int CU_TENSOR_MAP_L2_PROMOTION_L2_256B = 3;
constexpr int CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0;

/// CUtensorMap: the 128-byte opaque TMA descriptor.
struct alignas(128) CUtensorMap {
  unsigned long long opaque[16];
};

// CUlaunchAttributeID values.
constexpr int CU_LAUNCH_ATTRIBUTE_COOPERATIVE = 2;
constexpr int CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4;

/// CUlaunchAttribute: an id, padding to 8 bytes, a 64-byte value union.
struct CUlaunchAttribute {
  int id;
  char pad[8 - sizeof(int)];
  union Value {
    char pad[64];
    int cooperative;
    struct {
      unsigned x, y, z;
    } clusterDim;
  } value;
};

/// CUlaunchConfig, the first argument of cuLaunchKernelEx.
struct CUlaunchConfig {
  unsigned gridDimX, gridDimY, gridDimZ;
  unsigned blockDimX, blockDimY, blockDimZ;
  unsigned sharedMemBytes;
  CUstream hStream;
  CUlaunchAttribute *attrs;
  unsigned numAttrs;
};

/// The driver entry points, resolved with dlsym from libcuda.so.1 (the `_v2`
/// names where the driver exports them).
struct Driver {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDriverGetVersion)(int *);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxSynchronize)();
  /// Optional: the device of the current context (an error when none is).
  CUresult (*cuCtxGetDevice)(CUdevice *);
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, size_t);
  /// Optional (null when the driver lacks it): calls on a caller's stream.
  CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
  /// Optional: tensor maps on a caller's stream.
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
  /// Optional (CUDA 12.0+ drivers): the TMA descriptors of sm_90 kernels.
  CUresult (*cuTensorMapEncodeTiled)(CUtensorMap *, int dataType, unsigned rank,
                                     void *globalAddress,
                                     const unsigned long long *globalDim,
                                     const unsigned long long *globalStrides,
                                     const unsigned *boxDim,
                                     const unsigned *elementStrides,
                                     int interleave, int swizzle,
                                     int l2Promotion, int oobFill);
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuFuncSetAttribute)(CUfunction, int, int);
  CUresult (*cuFuncGetAttribute)(int *, int, CUfunction);
  CUresult (*cuOccupancyMaxActiveBlocksPerMultiprocessor)(int *, CUfunction,
                                                          int, size_t);
  /// Optional (null when the driver lacks it): used for cluster launches.
  CUresult (*cuOccupancyMaxActiveClusters)(int *, CUfunction,
                                           const CUlaunchConfig *);
  CUresult (*cuLaunchKernelEx)(const CUlaunchConfig *, CUfunction, void **,
                               void **);
  CUresult (*cuEventCreate)(CUevent *, unsigned);
  CUresult (*cuEventRecord)(CUevent, CUstream);
  CUresult (*cuEventSynchronize)(CUevent);
  CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent);
  CUresult (*cuEventDestroy)(CUevent);
  CUresult (*cuGetErrorName)(CUresult, const char **);
  CUresult (*cuGetErrorString)(CUresult, const char **);

  /// Loads libcuda.so.1 (or the library named by $NORA_CUDA_DRIVER, for
  /// tests) once per process and calls cuInit(0). Returns null and sets
  /// `error` when there is no usable driver:
  ///   "no CUDA driver: libcuda.so.1 could not be loaded (<dlerror>)".
  static const Driver *get(std::string &error);

  /// "" when `result` is CUDA_SUCCESS, else
  /// "<call> failed: <CUDA_ERROR_NAME>: <description>".
  std::string check(CUresult result, const char *call) const;
};

/// A device of a driver, with its primary context current on this thread.
struct Device {
  const Driver *driver = nullptr;
  CUdevice device = 0;
  CUcontext context = nullptr;
  std::string name;
  int computeMajor = 0, computeMinor = 0;
  int multiprocessors = 0;
  int maxSharedPerBlockOptin = 0;
  bool cooperativeLaunch = false;
  int driverVersion = 0;

  /// Opens device `ordinal`: retains its primary context and makes it
  /// current. Errors: "no CUDA driver: ...", "no CUDA device: ...".
  static std::string open(int ordinal, Device &out);
  /// Releases the primary context.
  void close();
  /// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, driver 13.0)".
  std::string describe() const;
};

} // namespace mlir::nora::runtime::cuda

#endif // NORA_RUNTIME_CUDADRIVER_H
