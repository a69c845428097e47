/*===- nora-c/Runtime.h - the C API of the LLVM-free GPU runtime --*- C -*-===*\
|*                                                                            *|
|* Loads a step artifact (nora-compile's plan.json + cubin, docs/artifact.md) *|
|* and runs it through the CUDA driver, which is opened at run time: what a   *|
|* training process (the Python package, through ctypes) needs on a GPU       *|
|* machine with no LLVM/MLIR. Functions that can fail return 0 on success or  *|
|* NULL / non-zero and, when `error` is not NULL, a message in *error that    *|
|* the caller frees with nora_runtime_string_free.                            *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef NORA_C_RUNTIME_H
#define NORA_C_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NORA_RUNTIME_C_API_VERSION 4
int nora_runtime_api_version(void);

typedef struct nora_step_artifact nora_step_artifact;

/** Reads and validates the artifact directory `dir` (no GPU needed). */
nora_step_artifact *nora_artifact_open(const char *dir, char **error);
void nora_artifact_close(nora_step_artifact *artifact);

/** The plan: the step's name, its arguments (`*is_tensor`, `*dtype`: 0 f32,
 *  1 bf16, 2 f16, `*rank`, `dims` with 8 entries) and results (f32). */
const char *nora_artifact_entry(const nora_step_artifact *artifact);
int nora_artifact_num_arguments(const nora_step_artifact *artifact);
int nora_artifact_argument(const nora_step_artifact *artifact, int index,
                           int *is_tensor, int *dtype, int *rank,
                           int64_t *dims);
int nora_artifact_num_results(const nora_step_artifact *artifact);
int nora_artifact_result(const nora_step_artifact *artifact, int index,
                         int *rank, int64_t *dims);
/** Whether result `index` is an i64 count (a guarded step's `skipped`, one
 *  int64_t, rank 0) rather than an f32 tensor: 1 or 0 (-1 for no such
 *  result). Since API version 4. */
int nora_artifact_result_is_count(const nora_step_artifact *artifact,
                                  int index);
/** The --print-plan text (owned by the artifact). */
const char *nora_artifact_describe(const nora_step_artifact *artifact);

/** Opens CUDA device `device` and loads the kernels (once; later calls
 *  reuse them). Fails with the runtime's message when there is no driver or
 *  GPU. */
int nora_artifact_load(nora_step_artifact *artifact, int device,
                       char **error);
/** The loaded device's name ("" before nora_artifact_load). */
const char *nora_artifact_device_name(const nora_step_artifact *artifact);

/** One call on host memory: copies `tensors[i]` (row-major, in the
 *  argument's element type; NULL for a scalar, whose value is `scalars[i]`)
 *  to the device, runs every kernel, copies result k into `results[k]`
 *  (f32 elements, or one int64_t for a count). With `repeats` > 0 the call runs that many times, each timed, and
 *  *median_ms / *min_ms are set (may be NULL). Loads the kernels on device 0
 *  first if nora_artifact_load was not called. */
int nora_artifact_call(nora_step_artifact *artifact,
                       const void *const *tensors, const float *scalars,
                       float *const *results, unsigned repeats,
                       double *median_ms, double *min_ms, char **error);

/** One call on device memory the caller owns (e.g. PyTorch CUDA tensors),
 *  nothing copied, asynchronous on `stream` (a CUstream; NULL: the default
 *  stream): `tensors[i]` is the CUdeviceptr of tensor argument i (0 for a
 *  scalar, whose value is `scalars[i]`), `results[k]` that of result k
 *  (f32). The memory must have the plan's sizes, be on the loaded device
 *  (nora_artifact_load) and stay valid until the stream reaches the call;
 *  results must not alias arguments. Calls share the artifact's workspace,
 *  so they must be ordered (one stream). Since API version 2. */
int nora_artifact_call_device(nora_step_artifact *artifact,
                              const uint64_t *tensors, const float *scalars,
                              const uint64_t *results, void *stream,
                              char **error);
void nora_runtime_string_free(char *string);

/** The entry point of host code that nora's GPU pipeline lowered to LLVM
 *  (`--nora-gpu-host-to-runtime`, docs/passes/nora-gpu-host-to-runtime.md):
 *  one call of an artifact embedded in the program, on device memory, as
 *  nora_artifact_call_device. `plan_json` is its plan.json (NUL-terminated),
 *  `cubin` the cubin every kernel of the plan names. `*cache` (a
 *  pointer-sized global of the program, NULL at first) keeps the validated
 *  and loaded artifact for later calls; it is loaded on the device of the
 *  current CUDA context, or device 0. Returns 0 on success, else non-zero
 *  with the message in nora_runtime_last_error. Since API version 3. */
int nora_embedded_call(void **cache, const char *plan_json, const void *cubin,
                       uint64_t cubin_size, const uint64_t *tensors,
                       const float *scalars, const uint64_t *results,
                       void *stream);
/** The message of this thread's last failed nora_embedded_call ("" if
 *  none); valid until its next call. Since API version 3. */
const char *nora_runtime_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* NORA_C_RUNTIME_H */
