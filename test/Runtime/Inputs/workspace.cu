// Two test kernels for nora-exec that share a workspace: `count` adds 1 to a
// workspace counter per element, `scale` multiplies the bf16 input by the
// count. The result is x * n only when the workspace is zero-filled before
// every call and the kernels run in order.
#include <stdint.h>

extern "C" __global__ void count(unsigned *counter, long long n) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    atomicAdd(counter, 1u);
}

extern "C" __global__ void scale(float *out, const uint16_t *x,
                                 const unsigned *counter, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    out[i] = __uint_as_float(unsigned(x[i]) << 16) * float(*counter);
}
