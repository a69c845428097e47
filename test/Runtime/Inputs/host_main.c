/* A host program that calls a step lowered by --nora-gpu-host-to-runtime
 * (test/Runtime/host-to-runtime.test): the step of
 * test/Pipelines/gpu-pipeline.mlir (dy 32x128 bf16, x 32x96 bf16, w and m
 * 128x96 f32). Under the fake driver, device memory is host memory. Calls
 * the step on the default stream, on stream 0x1234, then with a misaligned
 * pointer, with a launch that fails and once more, then nora_embedded_call
 * with no plan and with a bad one; prints each return code and the
 * runtime's message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nora_step(void *dy, void *x, void *w, void *m, float lr, float wd,
              void *w_new, void *m_new, void *stream);
const char *nora_runtime_last_error(void);
int nora_embedded_call(void **cache, const char *plan_json, const void *cubin,
                       uint64_t cubin_size, const uint64_t *tensors,
                       const float *scalars, const uint64_t *results,
                       void *stream);

static void *buffer(size_t bytes) {
  void *p = aligned_alloc(256, bytes);
  memset(p, 0, bytes);
  return p;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0); /* in order with the driver log */
  char *dy = buffer(32 * 128 * 2 + 256), *x = buffer(32 * 96 * 2);
  void *w = buffer(128 * 96 * 4), *m = buffer(128 * 96 * 4);
  void *wn = buffer(128 * 96 * 4), *mn = buffer(128 * 96 * 4);
  void *streams[2] = {NULL, (void *)0x1234};
  for (int i = 0; i < 2; ++i) {
    int rc = nora_step(dy, x, w, m, 0.1f, 0.01f, wn, mn, streams[i]);
    printf("call %d: rc %d%s%s\n", i, rc, rc ? ": " : "",
           rc ? nora_runtime_last_error() : "");
  }
  int rc = nora_step(dy + 4, x, w, m, 0.1f, 0.01f, wn, mn, NULL);
  printf("misaligned: rc %d: %s\n", rc, nora_runtime_last_error());
  /* A launch that fails: the next call zero-fills the counters again. */
  setenv("FAKE_CUDA_FAIL", "cuLaunchKernelEx", 1);
  rc = nora_step(dy, x, w, m, 0.1f, 0.01f, wn, mn, NULL);
  printf("failed launch: rc %d: %s\n", rc, nora_runtime_last_error());
  unsetenv("FAKE_CUDA_FAIL");
  rc = nora_step(dy, x, w, m, 0.1f, 0.01f, wn, mn, NULL);
  printf("after the failure: rc %d\n", rc);
  /* The entry point itself, called badly: no plan; a plan that is no
   * artifact's (the cache stays empty, so each call says so again). */
  void *cache = NULL;
  rc = nora_embedded_call(&cache, NULL, NULL, 0, NULL, NULL, NULL, NULL);
  printf("no plan: rc %d: %s\n", rc, nora_runtime_last_error());
  for (int i = 0; i < 2; ++i) {
    rc = nora_embedded_call(&cache, "{\"format\": 1}", "", 0, NULL, NULL,
                            NULL, NULL);
    printf("bad plan: rc %d, cache %s: %s\n", rc, cache ? "set" : "empty",
           nora_runtime_last_error());
  }
  return 0;
}
