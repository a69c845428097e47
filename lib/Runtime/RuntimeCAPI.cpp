//===- RuntimeCAPI.cpp - the C API of the LLVM-free GPU runtime -*- C++ -*-===//

#include "nora-c/Runtime.h"

#include "nora/Runtime/CudaArtifact.h"
#include "nora/Runtime/CudaExecutable.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

using namespace mlir::nora::runtime;

struct nora_step_artifact {
  Plan plan;
  std::string description;
  std::unique_ptr<Executable> executable;
  std::string deviceName;
};

namespace {
int fail(char **error, const std::string &message) {
  if (error) {
    *error = static_cast<char *>(std::malloc(message.size() + 1));
    if (*error)
      std::memcpy(*error, message.c_str(), message.size() + 1);
  }
  return 1;
}

/// This thread's last nora_embedded_call error.
std::string &lastError() {
  thread_local std::string message;
  return message;
}

int failLast(const std::string &message) {
  lastError() = message;
  return 1;
}

/// The device of the calling thread's current CUDA context, else 0.
std::string currentDevice(int &device) {
  std::string error;
  const cuda::Driver *driver = cuda::Driver::get(error);
  if (!driver)
    return error;
  cuda::CUdevice current = 0;
  device = driver->cuCtxGetDevice &&
                   driver->cuCtxGetDevice(&current) == cuda::CUDA_SUCCESS
               ? current
               : 0;
  return "";
}

int dtypeCode(ElementType type) {
  return type == ElementType::F32 ? 0 : type == ElementType::BF16 ? 1 : 2;
}
} // namespace

extern "C" {

int nora_runtime_api_version(void) { return NORA_RUNTIME_C_API_VERSION; }

nora_step_artifact *nora_artifact_open(const char *dir, char **error) {
  if (!dir) {
    fail(error, "nora_artifact_open: no directory given");
    return nullptr;
  }
  auto artifact = std::make_unique<nora_step_artifact>();
  std::string message = loadArtifact(dir, artifact->plan);
  if (!message.empty()) {
    fail(error, message);
    return nullptr;
  }
  artifact->description = describePlan(artifact->plan);
  return artifact.release();
}

void nora_artifact_close(nora_step_artifact *artifact) { delete artifact; }

const char *nora_artifact_entry(const nora_step_artifact *artifact) {
  return artifact ? artifact->plan.entry.c_str() : "";
}

int nora_artifact_num_arguments(const nora_step_artifact *artifact) {
  return artifact ? int(artifact->plan.arguments.size()) : 0;
}

int nora_artifact_argument(const nora_step_artifact *artifact, int index,
                           int *isTensor, int *dtype, int *rank,
                           int64_t *dims) {
  if (!artifact || index < 0 ||
      size_t(index) >= artifact->plan.arguments.size())
    return 1;
  const ValueSpec &spec = artifact->plan.arguments[size_t(index)];
  *isTensor = spec.isTensor;
  *dtype = dtypeCode(spec.dtype);
  *rank = int(spec.shape.size());
  for (size_t d = 0; d < spec.shape.size() && d < 8; ++d)
    dims[d] = spec.shape[d];
  return 0;
}

int nora_artifact_num_results(const nora_step_artifact *artifact) {
  return artifact ? int(artifact->plan.results.size()) : 0;
}

int nora_artifact_result(const nora_step_artifact *artifact, int index,
                         int *rank, int64_t *dims) {
  if (!artifact || index < 0 || size_t(index) >= artifact->plan.results.size())
    return 1;
  const ValueSpec &spec = artifact->plan.results[size_t(index)];
  *rank = int(spec.shape.size());
  for (size_t d = 0; d < spec.shape.size() && d < 8; ++d)
    dims[d] = spec.shape[d];
  return 0;
}

int nora_artifact_result_is_count(const nora_step_artifact *artifact,
                                  int index) {
  if (!artifact || index < 0 || size_t(index) >= artifact->plan.results.size())
    return -1;
  return artifact->plan.results[size_t(index)].dtype == ElementType::I64;
}

const char *nora_artifact_describe(const nora_step_artifact *artifact) {
  return artifact ? artifact->description.c_str() : "";
}

int nora_artifact_load(nora_step_artifact *artifact, int device, char **error) {
  if (!artifact)
    return fail(error, "nora_artifact_load: no artifact");
  if (artifact->executable)
    return 0;
  std::string message =
      Executable::load(artifact->plan, device, artifact->executable);
  if (!message.empty())
    return fail(error, message);
  artifact->deviceName = artifact->executable->getDevice().name;
  return 0;
}

const char *nora_artifact_device_name(const nora_step_artifact *artifact) {
  return artifact ? artifact->deviceName.c_str() : "";
}

int nora_artifact_call(nora_step_artifact *artifact, const void *const *tensors,
                       const float *scalars, float *const *results,
                       unsigned repeats, double *medianMs, double *minMs,
                       char **error) {
  if (!artifact)
    return fail(error, "nora_artifact_call: no artifact");
  const Plan &plan = artifact->plan;
  std::vector<HostArgument> arguments(plan.arguments.size());
  for (size_t i = 0; i < plan.arguments.size(); ++i) {
    const ValueSpec &spec = plan.arguments[i];
    arguments[i].isTensor = spec.isTensor;
    if (!spec.isTensor) {
      if (!scalars)
        return fail(error, "argument #" + std::to_string(i) + " (" + spec.name +
                               ") is a scalar and no scalars "
                               "were given");
      arguments[i].scalar = scalars[i];
      continue;
    }
    if (!tensors || !tensors[i])
      return fail(error, "argument #" + std::to_string(i) + " (" + spec.name +
                             ") is a tensor and got no data");
    const auto *bytes = static_cast<const uint8_t *>(tensors[i]);
    arguments[i].bytes.assign(bytes, bytes + spec.byteSize);
  }
  for (size_t k = 0; k < plan.results.size(); ++k)
    if (!results || !results[k])
      return fail(error, "result #" + std::to_string(k) + " has no buffer");
  if (!artifact->executable && nora_artifact_load(artifact, 0, error) != 0)
    return 1;
  Executable &executable = *artifact->executable;
  std::string message = executable.setArguments(arguments);
  Timing timing;
  if (message.empty())
    message = repeats > 0 ? executable.time(repeats, timing) : executable.run();
  std::vector<std::vector<uint8_t>> out;
  if (message.empty())
    message = executable.getResults(out);
  if (!message.empty())
    return fail(error, message);
  for (size_t k = 0; k < out.size(); ++k)
    std::memcpy(results[k], out[k].data(), out[k].size());
  if (medianMs)
    *medianMs = timing.medianMs;
  if (minMs)
    *minMs = timing.minMs;
  return 0;
}

int nora_artifact_call_device(nora_step_artifact *artifact,
                              const uint64_t *tensors, const float *scalars,
                              const uint64_t *results, void *stream,
                              char **error) {
  if (!artifact)
    return fail(error, "nora_artifact_call_device: no artifact");
  if (!artifact->executable)
    return fail(error, "nora_artifact_call_device: load the artifact on the "
                       "tensors' device first (nora_artifact_load)");
  const Plan &plan = artifact->plan;
  size_t n = plan.arguments.size();
  std::vector<cuda::CUdeviceptr> arguments(n, 0), outs(plan.results.size());
  std::vector<float> values(n, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    if (plan.arguments[i].isTensor) {
      if (!tensors)
        return fail(error, "nora_artifact_call_device: no tensors given");
      arguments[i] = tensors[i];
    } else {
      if (!scalars)
        return fail(error, "argument #" + std::to_string(i) + " (" +
                               plan.arguments[i].name +
                               ") is a scalar and no scalars were given");
      values[i] = scalars[i];
    }
  }
  for (size_t k = 0; k < outs.size(); ++k) {
    if (!results)
      return fail(error, "nora_artifact_call_device: no results given");
    outs[k] = results[k];
  }
  std::string message = artifact->executable->runOnDevice(
      arguments, values, outs, static_cast<cuda::CUstream>(stream));
  if (!message.empty())
    return fail(error, message);
  return 0;
}

void nora_runtime_string_free(char *string) { std::free(string); }

int nora_embedded_call(void **cache, const char *planJson, const void *cubin,
                       uint64_t cubinSize, const uint64_t *tensors,
                       const float *scalars, const uint64_t *results,
                       void *stream) {
  lastError().clear();
  if (!cache || !planJson || !cubin)
    return failLast("nora_embedded_call: no cache, plan or cubin");
  auto *artifact = static_cast<nora_step_artifact *>(
      __atomic_load_n(cache, __ATOMIC_ACQUIRE));
  if (!artifact) {
    static std::mutex loading;
    std::lock_guard<std::mutex> lock(loading);
    artifact = static_cast<nora_step_artifact *>(*cache);
    if (!artifact) {
      auto made = std::make_unique<nora_step_artifact>();
      std::string message = loadArtifactFromMemory(
          planJson, std::string(static_cast<const char *>(cubin), cubinSize),
          made->plan);
      int device = 0;
      if (message.empty())
        message = currentDevice(device);
      if (message.empty())
        message = Executable::load(made->plan, device, made->executable);
      if (!message.empty())
        return failLast(message);
      made->deviceName = made->executable->getDevice().name;
      artifact = made.release();
      __atomic_store_n(cache, artifact, __ATOMIC_RELEASE);
    }
  }
  char *error = nullptr;
  if (nora_artifact_call_device(artifact, tensors, scalars, results, stream,
                                &error) != 0) {
    failLast(error ? error : "nora_embedded_call failed");
    std::free(error);
    return 1;
  }
  return 0;
}

const char *nora_runtime_last_error(void) { return lastError().c_str(); }

} // extern "C"
