// A persistent, cooperative test kernel for nora-exec (compiled at test time
// with nvcc -cubin). Tile t of `tiles` covers elements [t * 256, t * 256 +
// 256) of out = a * x + y; the grid may have fewer CTAs than tiles.
extern "C" __global__ void axpy(float *out, const float *x, const float *y,
                                float a, int n, int tiles) {
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    int i = tile * 256 + threadIdx.x;
    if (i < n)
      out[i] = a * x[i] + y[i];
  }
}
