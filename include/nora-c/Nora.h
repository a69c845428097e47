/*===- nora-c/Nora.h - the C API of nora ---------------------------*- C -*-===*\
|*                                                                            *|
|* What bindings (the Python package, through ctypes) need: compile a nora    *|
|* function for the CPU JIT, describe and call it on caller memory (no copy), *|
|* and lower IR through any pass pipeline to read it back. Every function     *|
|* that can fail returns a status (0: success) or NULL and, when `error` is   *|
|* not NULL, a message in *error that the caller frees with                   *|
|* nora_string_free. Nothing here aborts on bad input.                        *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef NORA_C_NORA_H
#define NORA_C_NORA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The version of this API (bumped on any incompatible change). */
#define NORA_C_API_VERSION 1
int nora_api_version(void);

typedef struct nora_function nora_function;

/** Element types of arguments. */
enum { NORA_F32 = 0, NORA_BF16 = 1, NORA_F16 = 2 };
/** The most dimensions an argument or result has. */
#define NORA_MAX_RANK 8

/** Flags of nora_compile_cpu. */
enum {
  /** Fuse the weight gradient with its optimizer step. */
  NORA_COMPILE_FUSE = 1,
  /** Run row panels on OpenMP threads (loads LLVM's libomp into the
   *  process, globally: keep it off in processes that use another OpenMP
   *  runtime or import a library that bundles LLVM after the first call). */
  NORA_COMPILE_THREADS = 2
};

/** Parses `ir` (MLIR text, nora and upstream dialects), lowers function
 *  `entry` through the CPU pipeline (`flags`: NORA_COMPILE_*; `nonfinite`:
 *  NULL, "", "skip_step" or "skip_row") and JIT-compiles it. */
nora_function *nora_compile_cpu(const char *ir, size_t ir_size,
                                const char *entry, int flags,
                                const char *nonfinite, char **error);
void nora_function_destroy(nora_function *function);

/** Arguments: `*is_tensor`, `*dtype` (NORA_F32/BF16/F16), `*rank` and
 *  `dims` (NORA_MAX_RANK entries; -1 for a dynamic size). */
int nora_function_num_arguments(const nora_function *function);
int nora_function_argument(const nora_function *function, int index,
                           int *is_tensor, int *dtype, int *rank,
                           int64_t *dims);
/** Results: f32 (or int64 when `*is_int64`) with static `dims`; rank 0 for a
 *  scalar (one element). */
int nora_function_num_results(const nora_function *function);
int nora_function_result(const nora_function *function, int index,
                         int *is_int64, int *rank, int64_t *dims);

/** Calls the function. `tensors[i]`: the dense row-major data of tensor
 *  argument i in its element type (bf16/f16 as 16-bit patterns), NULL for a
 *  scalar; `shapes[i]`: its sizes (rank of the argument), NULL for a scalar;
 *  `scalars[i]`: the value of scalar argument i; `results[k]`: a buffer for
 *  result k. Shapes are checked against the function's types. */
int nora_function_call(nora_function *function, const void *const *tensors,
                       const int64_t *const *shapes, const float *scalars,
                       void *const *results, char **error);

/** Parses `ir`, runs the textual pass pipeline `pipeline` (as mlir-opt's
 *  --pass-pipeline, e.g. "builtin.module(nora-decompose)"; every nora and
 *  upstream pass is available) and returns the IR it gives, or NULL. */
char *nora_lower(const char *ir, size_t ir_size, const char *pipeline,
                 char **error);

void nora_string_free(char *string);

#ifdef __cplusplus
}
#endif

#endif /* NORA_C_NORA_H */
