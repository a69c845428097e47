//===- FakeCuda.cpp - a host-only stand-in for libcuda.so.1 (tests) -------===//
//
// Implements the driver entry points the runtime resolves, on the host, so
// that nora-exec's execution path (buffers, parameter marshalling, grid
// sizing, workspace zero-fill, kernel order, launch attributes, result copy,
// timing, error propagation) is tested on machines without a GPU:
//
//   NORA_CUDA_DRIVER=libnora-fake-cuda.so nora-exec ...
//
// "Device memory" is host memory. Modules are any ELF bytes; the functions
// are host versions of the kernels in Inputs/*.cu, run thread by thread.
// Each launch is logged on stderr ("fake-cuda: launch ..."). The device has
// 4 SMs and 2 resident blocks per SM (3 for blocks of <= 128 threads).
// $FAKE_CUDA_FAIL=<entry point> makes that entry point fail with
// CUDA_ERROR_ILLEGAL_ADDRESS; with $FAKE_CUDA_ANY_KERNEL a kernel of any
// other name resolves to one that does nothing.
//
//===----------------------------------------------------------------------===//

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

using CUresult = int;
constexpr CUresult kSuccess = 0, kInvalidValue = 1, kNotFound = 500,
                   kIllegalAddress = 700;

bool failing(const char *call) {
  const char *fail = std::getenv("FAKE_CUDA_FAIL");
  return fail && std::strcmp(fail, call) == 0;
}

struct Dim3 {
  unsigned x, y, z;
};

using HostKernel = void (*)(void **params, Dim3 block, Dim3 thread,
                            Dim3 gridDim, Dim3 blockDim);

template <typename T> T param(void **params, int i) {
  T value;
  std::memcpy(&value, params[i], sizeof(T));
  return value;
}

void axpy(void **p, Dim3 block, Dim3 thread, Dim3 grid, Dim3) {
  auto *out = param<float *>(p, 0);
  auto *x = param<const float *>(p, 1);
  auto *y = param<const float *>(p, 2);
  auto a = param<float>(p, 3);
  auto n = param<int32_t>(p, 4);
  auto tiles = param<int32_t>(p, 5);
  for (int tile = int(block.x); tile < tiles; tile += int(grid.x)) {
    int i = tile * 256 + int(thread.x);
    if (i < n)
      out[i] = a * x[i] + y[i];
  }
}

void count(void **p, Dim3 block, Dim3 thread, Dim3, Dim3 blockDim) {
  auto *counter = param<unsigned *>(p, 0);
  auto n = param<int64_t>(p, 1);
  if (int64_t(block.x) * blockDim.x + thread.x < n)
    ++*counter;
}

void scale(void **p, Dim3 block, Dim3 thread, Dim3, Dim3 blockDim) {
  auto *out = param<float *>(p, 0);
  auto *x = param<const uint16_t *>(p, 1);
  auto *counter = param<const unsigned *>(p, 2);
  auto n = param<int32_t>(p, 3);
  int i = int(block.x * blockDim.x + thread.x);
  if (i >= n)
    return;
  uint32_t bits = uint32_t(x[i]) << 16;
  float value;
  std::memcpy(&value, &bits, 4);
  out[i] = value * float(*counter);
}

/// The fake driver's tensor map (128 bytes): what cuTensorMapEncodeTiled
/// was given, so that a fake kernel can use it as TMA would.
struct FakeTensorMap {
  uint64_t magic; // kTensorMapMagic
  uint64_t address;
  uint32_t dataType, rank, swizzle, pad;
  uint64_t dims[5], strides[4];
  uint16_t box[5];
};
static_assert(sizeof(FakeTensorMap) <= 128, "a CUtensorMap has 128 bytes");
constexpr uint64_t kTensorMapMagic = 0x50414d54524f4e; // "NORTMAP"

/// tmap_box(map, out, rows, cols): one CTA copies the box at coordinates
/// (0, 0) of an f32 rank-2 tensor map into out (box rows x box cols, f32),
/// out-of-bounds elements as zeros, as a TMA load would (no swizzle).
void tmapBox(void **p, Dim3 block, Dim3 thread, Dim3, Dim3) {
  auto *map = param<const FakeTensorMap *>(p, 0);
  auto *out = param<float *>(p, 1);
  if (block.x != 0 || thread.x != 0)
    return;
  if (map->magic != kTensorMapMagic || map->rank != 2 || map->dataType != 7) {
    std::fprintf(stderr, "fake-cuda: tmap_box: not an f32 rank-2 map\n");
    return;
  }
  const auto *base = reinterpret_cast<const char *>(uintptr_t(map->address));
  for (unsigned r = 0; r < map->box[1]; ++r)
    for (unsigned c = 0; c < map->box[0]; ++c) {
      float v = 0;
      if (r < map->dims[1] && c < map->dims[0])
        std::memcpy(&v, base + r * map->strides[0] + c * 4, 4);
      out[r * map->box[0] + c] = v;
    }
}

struct Function {
  const char *name;
  HostKernel kernel;
};
Function functions[] = {
    {"axpy", axpy}, {"count", count}, {"scale", scale}, {"tmap_box", tmapBox}};

struct LaunchAttribute {
  int id;
  char pad[4];
  union {
    char pad[64];
    int cooperative;
    Dim3 clusterDim;
  } value;
};

struct LaunchConfig {
  unsigned gridDimX, gridDimY, gridDimZ;
  unsigned blockDimX, blockDimY, blockDimZ;
  unsigned sharedMemBytes;
  void *hStream;
  LaunchAttribute *attrs;
  unsigned numAttrs;
};

int ctx, module;

/// $FAKE_CUDA_ANY_KERNEL: a kernel of any other name does nothing (the
/// launch is still logged), for tests of what happens around a launch.
void noKernel(void **, Dim3, Dim3, Dim3, Dim3) {}
char anyKernelNames[16][256];
Function anyKernels[16];
int numAnyKernels = 0;

} // namespace

#define CALL(NAME)                                                             \
  if (failing(#NAME))                                                          \
  return kIllegalAddress

extern "C" {
CUresult cuInit(unsigned) {
  CALL(cuInit);
  return kSuccess;
}
CUresult cuDriverGetVersion(int *v) {
  *v = 13000;
  return kSuccess;
}
CUresult cuDeviceGetCount(int *n) {
  *n = 1;
  return kSuccess;
}
CUresult cuDeviceGet(int *d, int ordinal) {
  *d = ordinal;
  return kSuccess;
}
CUresult cuDeviceGetName(char *name, int size, int) {
  std::snprintf(name, size_t(size), "Fake GPU");
  return kSuccess;
}
CUresult cuDeviceGetAttribute(int *value, int attribute, int) {
  switch (attribute) {
  case 16:
    *value = 4;
    break;   // multiprocessors
  case 75:   // compute capability major ($FAKE_CUDA_CC, e.g. 80; default 90)
  case 76: { // minor
    const char *cc = std::getenv("FAKE_CUDA_CC");
    int both = cc ? std::atoi(cc) : 90;
    *value = attribute == 75 ? both / 10 : both % 10;
    break;
  }
  case 95:
    *value = 1;
    break; // cooperative launch
  case 97:
    *value = 232448;
    break; // opt-in shared memory per block
  default:
    return kInvalidValue;
  }
  return kSuccess;
}
CUresult cuDevicePrimaryCtxRetain(void **c, int) {
  *c = &ctx;
  return kSuccess;
}
CUresult cuDevicePrimaryCtxRelease_v2(int) { return kSuccess; }
CUresult cuCtxSetCurrent(void *) { return kSuccess; }
CUresult cuCtxSynchronize() {
  CALL(cuCtxSynchronize);
  return kSuccess;
}
CUresult cuMemAlloc_v2(uint64_t *p, size_t size) {
  CALL(cuMemAlloc_v2);
  // Not zeroed: garbage that the runtime's zero-fill must clear.
  void *memory = std::malloc(size);
  if (!memory)
    return 2; // CUDA_ERROR_OUT_OF_MEMORY
  std::memset(memory, 0xA5, size);
  *p = uint64_t(uintptr_t(memory));
  return kSuccess;
}
CUresult cuMemFree_v2(uint64_t p) {
  std::free(reinterpret_cast<void *>(uintptr_t(p)));
  return kSuccess;
}
CUresult cuMemcpyHtoD_v2(uint64_t d, const void *h, size_t n) {
  std::memcpy(reinterpret_cast<void *>(uintptr_t(d)), h, n);
  return kSuccess;
}
CUresult cuMemcpyDtoH_v2(void *h, uint64_t d, size_t n) {
  CALL(cuMemcpyDtoH_v2);
  std::memcpy(h, reinterpret_cast<void *>(uintptr_t(d)), n);
  return kSuccess;
}
CUresult cuMemsetD8_v2(uint64_t d, unsigned char v, size_t n) {
  std::fprintf(stderr, "fake-cuda: memset %zu bytes to %d\n", n, int(v));
  std::memset(reinterpret_cast<void *>(uintptr_t(d)), v, n);
  return kSuccess;
}
CUresult cuMemsetD8Async(uint64_t d, unsigned char v, size_t n, void *stream) {
  std::fprintf(stderr, "fake-cuda: memset %zu bytes to %d on stream %p\n", n,
               int(v), stream);
  std::memset(reinterpret_cast<void *>(uintptr_t(d)), v, n);
  return kSuccess;
}
CUresult cuMemcpyHtoDAsync_v2(uint64_t d, const void *h, size_t n,
                              void *stream) {
  std::fprintf(stderr, "fake-cuda: copy %zu bytes to the device on stream %p\n",
               n, stream);
  std::memcpy(reinterpret_cast<void *>(uintptr_t(d)), h, n);
  return kSuccess;
}
#ifndef FAKE_CUDA_NO_TMA
/// Checks what the real driver checks (CUDA 13 cuda.h) and logs the map.
CUresult cuTensorMapEncodeTiled(void *tensorMap, int dataType, unsigned rank,
                                void *address, const uint64_t *dims,
                                const uint64_t *strides, const unsigned *box,
                                const unsigned *elementStrides, int interleave,
                                int swizzle, int l2Promotion, int oobFill) {
  CALL(cuTensorMapEncodeTiled);
  uint64_t elem = dataType == 7 ? 4 : 2;
  bool ok = rank >= 1 && rank <= 5 && uintptr_t(address) % 16 == 0 &&
            uintptr_t(tensorMap) % 64 == 0 && interleave == 0 && swizzle >= 0 &&
            swizzle <= 3 && (box[0] * elem) % 16 == 0 &&
            (swizzle == 0 || box[0] * elem <= (16u << swizzle));
  for (unsigned d = 0; ok && d < rank; ++d)
    ok = dims[d] >= 1 && box[d] >= 1 && box[d] <= 256 &&
         elementStrides[d] == 1 && (d == 0 || strides[d - 1] % 16 == 0);
  std::fprintf(stderr, "fake-cuda: tensor map dtype %d dims [", dataType);
  for (unsigned d = 0; d < rank; ++d)
    std::fprintf(stderr, "%s%llu", d ? ", " : "", (unsigned long long)dims[d]);
  std::fprintf(stderr, "] strides [");
  for (unsigned d = 0; d + 1 < rank; ++d)
    std::fprintf(stderr, "%s%llu", d ? ", " : "",
                 (unsigned long long)strides[d]);
  std::fprintf(stderr, "] box [");
  for (unsigned d = 0; d < rank; ++d)
    std::fprintf(stderr, "%s%u", d ? ", " : "", box[d]);
  std::fprintf(stderr, "] swizzle %d l2 %d oob %d%s\n", swizzle, l2Promotion,
               oobFill, ok ? "" : " (invalid)");
  if (!ok)
    return kInvalidValue;
  FakeTensorMap map = {};
  map.magic = kTensorMapMagic;
  map.address = uint64_t(uintptr_t(address));
  map.dataType = uint32_t(dataType);
  map.rank = rank;
  map.swizzle = uint32_t(swizzle);
  for (unsigned d = 0; d < rank; ++d) {
    map.dims[d] = dims[d];
    map.box[d] = uint16_t(box[d]);
    if (d + 1 < rank)
      map.strides[d] = strides[d];
  }
  std::memset(tensorMap, 0, 128);
  std::memcpy(tensorMap, &map, sizeof(map));
  return kSuccess;
}
#endif // FAKE_CUDA_NO_TMA
CUresult cuModuleLoadData(void **m, const void *image) {
  CALL(cuModuleLoadData);
  if (std::memcmp(image,
                  "\x7f"
                  "ELF",
                  4) != 0)
    return 200; // CUDA_ERROR_INVALID_IMAGE
  *m = &module;
  return kSuccess;
}
CUresult cuModuleUnload(void *) { return kSuccess; }
CUresult cuModuleGetFunction(void **f, void *, const char *name) {
  for (Function &function : functions)
    if (std::strcmp(function.name, name) == 0) {
      *f = &function;
      return kSuccess;
    }
  if (std::getenv("FAKE_CUDA_ANY_KERNEL")) {
    for (int i = 0; i < numAnyKernels; ++i)
      if (std::strcmp(anyKernels[i].name, name) == 0) {
        *f = &anyKernels[i];
        return kSuccess;
      }
    if (numAnyKernels == 16)
      return kNotFound;
    char *slot = anyKernelNames[numAnyKernels];
    std::snprintf(slot, sizeof(anyKernelNames[0]), "%s", name);
    anyKernels[numAnyKernels] = {slot, noKernel};
    *f = &anyKernels[numAnyKernels++];
    return kSuccess;
  }
  return kNotFound;
}
CUresult cuFuncSetAttribute(void *, int attribute, int value) {
  std::fprintf(stderr, "fake-cuda: set attribute %d to %d\n", attribute, value);
  return kSuccess;
}
CUresult cuFuncGetAttribute(int *value, int attribute, void *) {
  // A kernel's static shared memory (CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES):
  // 6 KiB, as the fused step's partials take.
  *value = attribute == 1 ? 6144 : 0;
  return kSuccess;
}
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *n, void *,
                                                     int threads, size_t) {
  *n = threads <= 128 ? 3 : 2;
  return kSuccess;
}
CUresult cuOccupancyMaxActiveClusters(int *n, void *, const LaunchConfig *) {
  *n = 3;
  return kSuccess;
}
CUresult cuLaunchKernelEx(const LaunchConfig *config, void *f, void **params,
                          void **) {
  CALL(cuLaunchKernelEx);
  auto *function = static_cast<Function *>(f);
  int cooperative = 0;
  Dim3 cluster = {1, 1, 1};
  for (unsigned i = 0; i < config->numAttrs; ++i) {
    if (config->attrs[i].id == 2)
      cooperative = config->attrs[i].value.cooperative;
    else if (config->attrs[i].id == 4)
      cluster = config->attrs[i].value.clusterDim;
  }
  std::fprintf(stderr,
               "fake-cuda: launch %s grid [%u, %u, %u] block [%u, %u, %u] "
               "smem %u cooperative %d cluster [%u, %u, %u]",
               function->name, config->gridDimX, config->gridDimY,
               config->gridDimZ, config->blockDimX, config->blockDimY,
               config->blockDimZ, config->sharedMemBytes, cooperative,
               cluster.x, cluster.y, cluster.z);
  if (config->hStream)
    std::fprintf(stderr, " on stream %p", config->hStream);
  std::fprintf(stderr, "\n");
  Dim3 grid = {config->gridDimX, config->gridDimY, config->gridDimZ};
  Dim3 block = {config->blockDimX, config->blockDimY, config->blockDimZ};
  for (unsigned b = 0; b < grid.x; ++b)
    for (unsigned t = 0; t < block.x; ++t)
      function->kernel(params, {b, 0, 0}, {t, 0, 0}, grid, block);
  return kSuccess;
}
CUresult cuEventCreate(void **e, unsigned) {
  *e = new std::chrono::steady_clock::time_point();
  return kSuccess;
}
CUresult cuEventRecord(void *e, void *) {
  *static_cast<std::chrono::steady_clock::time_point *>(e) =
      std::chrono::steady_clock::now();
  return kSuccess;
}
CUresult cuEventSynchronize(void *) { return kSuccess; }
CUresult cuEventElapsedTime(float *ms, void *start, void *stop) {
  using Point = std::chrono::steady_clock::time_point;
  *ms = std::chrono::duration<float, std::milli>(*static_cast<Point *>(stop) -
                                                 *static_cast<Point *>(start))
            .count();
  return kSuccess;
}
CUresult cuEventDestroy_v2(void *e) {
  delete static_cast<std::chrono::steady_clock::time_point *>(e);
  return kSuccess;
}
CUresult cuGetErrorName(CUresult error, const char **name) {
  *name = error == kIllegalAddress ? "CUDA_ERROR_ILLEGAL_ADDRESS"
          : error == kNotFound     ? "CUDA_ERROR_NOT_FOUND"
                                   : "CUDA_ERROR_INVALID_VALUE";
  return kSuccess;
}
CUresult cuGetErrorString(CUresult error, const char **text) {
  *text = error == kIllegalAddress ? "an illegal memory access was encountered"
          : error == kNotFound     ? "named symbol not found"
                                   : "invalid argument";
  return kSuccess;
}
}
