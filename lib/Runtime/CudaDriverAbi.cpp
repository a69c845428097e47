//===- CudaDriverAbi.cpp - CudaDriver.h checked against cuda.h ------------===//
//
// CudaDriver.h declares the driver's types and enum values itself so that the
// runtime builds without the CUDA toolkit. Where the toolkit is present, this
// file checks every one of them against cuda.h at compile time. (A separate
// file: cuda.h #defines names such as cuMemAlloc that CudaDriver.cpp uses as
// member names.)
//
//===----------------------------------------------------------------------===//

#include "nora/Runtime/CudaDriver.h"

#if defined(NORA_HAVE_CUDA_H) && __has_include(<cuda.h>)
#include <cstddef>
#include <cuda.h>

namespace nora_abi = mlir::nora::runtime::cuda;

#define NORA_CHECK_ENUM(NAME)                                                  \
  static_assert(int(nora_abi::NAME) == int(::NAME), #NAME " differs")

NORA_CHECK_ENUM(CUDA_SUCCESS);
NORA_CHECK_ENUM(CUDA_ERROR_NO_DEVICE);
NORA_CHECK_ENUM(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
NORA_CHECK_ENUM(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
NORA_CHECK_ENUM(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
NORA_CHECK_ENUM(CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH);
NORA_CHECK_ENUM(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
NORA_CHECK_ENUM(CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
NORA_CHECK_ENUM(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES);
NORA_CHECK_ENUM(CU_FUNC_ATTRIBUTE_NUM_REGS);
NORA_CHECK_ENUM(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
NORA_CHECK_ENUM(CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED);
NORA_CHECK_ENUM(CU_TENSOR_MAP_DATA_TYPE_FLOAT16);
NORA_CHECK_ENUM(CU_TENSOR_MAP_DATA_TYPE_FLOAT32);
NORA_CHECK_ENUM(CU_TENSOR_MAP_DATA_TYPE_BFLOAT16);
NORA_CHECK_ENUM(CU_TENSOR_MAP_INTERLEAVE_NONE);
NORA_CHECK_ENUM(CU_TENSOR_MAP_SWIZZLE_NONE);
NORA_CHECK_ENUM(CU_TENSOR_MAP_SWIZZLE_32B);
NORA_CHECK_ENUM(CU_TENSOR_MAP_SWIZZLE_64B);
NORA_CHECK_ENUM(CU_TENSOR_MAP_SWIZZLE_128B);
NORA_CHECK_ENUM(CU_TENSOR_MAP_L2_PROMOTION_L2_256B);
NORA_CHECK_ENUM(CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
static_assert(sizeof(nora_abi::CUtensorMap) == sizeof(::CUtensorMap), "");
NORA_CHECK_ENUM(CU_LAUNCH_ATTRIBUTE_COOPERATIVE);
NORA_CHECK_ENUM(CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION);

static_assert(sizeof(nora_abi::CUdeviceptr) == sizeof(::CUdeviceptr), "");
static_assert(sizeof(nora_abi::CUresult) == sizeof(::CUresult), "");
static_assert(sizeof(nora_abi::CUdevice) == sizeof(::CUdevice), "");

#define NORA_CHECK_FIELD(TYPE, FIELD)                                          \
  static_assert(offsetof(nora_abi::TYPE, FIELD) == offsetof(::TYPE, FIELD),    \
                #TYPE "::" #FIELD " is misplaced")

static_assert(sizeof(nora_abi::CUlaunchAttribute) ==
                  sizeof(::CUlaunchAttribute),
              "");
NORA_CHECK_FIELD(CUlaunchAttribute, id);
NORA_CHECK_FIELD(CUlaunchAttribute, value);
NORA_CHECK_FIELD(CUlaunchAttribute, value.cooperative);
NORA_CHECK_FIELD(CUlaunchAttribute, value.clusterDim.x);
NORA_CHECK_FIELD(CUlaunchAttribute, value.clusterDim.z);
static_assert(sizeof(nora_abi::CUlaunchConfig) == sizeof(::CUlaunchConfig), "");
NORA_CHECK_FIELD(CUlaunchConfig, gridDimX);
NORA_CHECK_FIELD(CUlaunchConfig, blockDimZ);
NORA_CHECK_FIELD(CUlaunchConfig, sharedMemBytes);
NORA_CHECK_FIELD(CUlaunchConfig, hStream);
NORA_CHECK_FIELD(CUlaunchConfig, attrs);
NORA_CHECK_FIELD(CUlaunchConfig, numAttrs);

/// Whether this file was compiled against cuda.h (see the unit tests).
extern "C" int noraCudaAbiChecked() { return 1; }
#else
extern "C" int noraCudaAbiChecked() { return 0; }
#endif
