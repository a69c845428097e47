//===- Ukernels.cpp - hand-written CPU micro-kernels (no LLVM) --*- C++ -*-===//
//
// g += dy^T x, blocked as BLIS does: k in blocks of kKc, a packed 6-row
// micro-panel of dy^T per block, and a 6x16 register tile of g updated by
// 12 FMAs per k (AVX2+FMA; the same order of operations in the portable
// path, so both give the same bits). dy and x are read k-major as they lie in
// memory (rows of dy and x are contiguous), so only dy^T's micro-panels are
// packed.
//
//===----------------------------------------------------------------------===//

#include "nora/Runtime/Ukernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NORA_HAVE_X86 1
#else
#define NORA_HAVE_X86 0
#endif

using mlir::nora::ukernel::MemRef2D;

namespace {

constexpr int64_t kMr = 6;   ///< Rows of the register tile.
constexpr int64_t kNr = 16;  ///< Columns of the register tile.
constexpr int64_t kKc = 256; ///< k block: a 16x256 slab of x is 16 KiB.

/// C[r][j] += sum_k A[k][r] * B[k][j] for a tile of `rows` x `cols`, with A
/// packed as kc x kMr. Portable, and the reference order for the vector path.
void tilePortable(int64_t kc, const float *a, const float *b, int64_t ldb,
                  float *c, int64_t ldc, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      float acc = c[r * ldc + j];
      for (int64_t k = 0; k < kc; ++k)
        acc = std::fma(a[k * kMr + r], b[k * ldb + j], acc);
      c[r * ldc + j] = acc;
    }
}

#if NORA_HAVE_X86
/// The full 6x16 tile, 12 ymm accumulators.
__attribute__((target("avx2,fma"))) void tileAvx2(int64_t kc, const float *a,
                                                  const float *b, int64_t ldb,
                                                  float *c, int64_t ldc) {
  __m256 c0[kMr], c1[kMr];
  for (int64_t r = 0; r < kMr; ++r) {
    c0[r] = _mm256_loadu_ps(c + r * ldc);
    c1[r] = _mm256_loadu_ps(c + r * ldc + 8);
  }
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b0 = _mm256_loadu_ps(b + k * ldb);
    __m256 b1 = _mm256_loadu_ps(b + k * ldb + 8);
    const float *ak = a + k * kMr;
    for (int64_t r = 0; r < kMr; ++r) {
      __m256 ar = _mm256_broadcast_ss(ak + r);
      c0[r] = _mm256_fmadd_ps(ar, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
    }
  }
  for (int64_t r = 0; r < kMr; ++r) {
    _mm256_storeu_ps(c + r * ldc, c0[r]);
    _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
  }
}

bool haveAvx2Fma() {
  static const bool have =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return have;
}
#else
bool haveAvx2Fma() { return false; }
#endif

/// Element (i, j) of a descriptor.
inline const float *at(const MemRef2D *m, int64_t i, int64_t j) {
  return m->aligned + m->offset + i * m->strides[0] + j * m->strides[1];
}

/// The general case (non-unit inner strides): plain loops, same order.
void wgradStrided(const MemRef2D *dy, const MemRef2D *x, MemRef2D *g) {
  int64_t t = dy->sizes[0], rows = dy->sizes[1], cols = x->sizes[1];
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      float *out =
          g->aligned + g->offset + i * g->strides[0] + j * g->strides[1];
      float acc = *out;
      for (int64_t k = 0; k < t; ++k)
        acc = std::fma(*at(dy, k, i), *at(x, k, j), acc);
      *out = acc;
    }
}

} // namespace

namespace {

/// sum_j a[j] * b[j] over one row, in kRowLanes f64 lanes and a fixed
/// pairwise combination. The products are exact in f64, so a fused
/// multiply-add and a multiply then add give the same bits.
double rowDotPortable(const float *a, const float *b, int64_t n,
                      int64_t strideA, int64_t strideB) {
  double lanes[mlir::nora::ukernel::kRowLanes] = {};
  constexpr int64_t L = mlir::nora::ukernel::kRowLanes;
  for (int64_t j = 0; j < n; ++j)
    lanes[j % L] += double(a[j * strideA]) * double(b[j * strideB]);
  for (int64_t width = L / 2; width >= 1; width /= 2)
    for (int64_t l = 0; l < width; ++l)
      lanes[l] = lanes[2 * l] + lanes[2 * l + 1];
  return lanes[0];
}

#if NORA_HAVE_X86
/// The same lanes in four ymm registers of four doubles: lane l is element
/// l % 4 of register l / 4.
__attribute__((target("avx2,fma"))) double
rowDotAvx2(const float *a, const float *b, int64_t n) {
  constexpr int64_t L = mlir::nora::ukernel::kRowLanes;
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd(), _mm256_setzero_pd()};
  int64_t j = 0;
  for (; j + L <= n; j += L)
    for (int r = 0; r < 4; ++r) {
      __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(a + j + 4 * r));
      __m256d y = _mm256_cvtps_pd(_mm_loadu_ps(b + j + 4 * r));
      acc[r] = _mm256_fmadd_pd(x, y, acc[r]);
    }
  double lanes[L];
  for (int r = 0; r < 4; ++r)
    _mm256_storeu_pd(lanes + 4 * r, acc[r]);
  for (; j < n; ++j)
    lanes[j % L] += double(a[j]) * double(b[j]);
  for (int64_t width = L / 2; width >= 1; width /= 2)
    for (int64_t l = 0; l < width; ++l)
      lanes[l] = lanes[2 * l] + lanes[2 * l + 1];
  return lanes[0];
}
#endif

void rowStatistic(MemRef2D *a, MemRef2D *b,
                  mlir::nora::ukernel::MemRef1D *out) {
  int64_t rows = a->sizes[0], cols = a->sizes[1];
  bool unit = a->strides[1] == 1 && b->strides[1] == 1;
  for (int64_t i = 0; i < rows; ++i) {
    const float *ra = a->aligned + a->offset + i * a->strides[0];
    const float *rb = b->aligned + b->offset + i * b->strides[0];
    double sum;
#if NORA_HAVE_X86
    if (unit && haveAvx2Fma())
      sum = rowDotAvx2(ra, rb, cols);
    else
#endif
      sum = rowDotPortable(ra, rb, cols, a->strides[1], b->strides[1]);
    out->aligned[out->offset + i * out->strides[0]] += sum;
  }
  (void)unit;
}

} // namespace

extern "C" void
_mlir_ciface_nora_row_dot_f64(MemRef2D *a, MemRef2D *b,
                              mlir::nora::ukernel::MemRef1D *out) {
  rowStatistic(a, b, out);
}

extern "C" void
_mlir_ciface_nora_row_sumsq_f64(MemRef2D *a,
                                mlir::nora::ukernel::MemRef1D *out) {
  rowStatistic(a, a, out);
}

const char *mlir::nora::ukernel::wgradKernelName() {
  return haveAvx2Fma() ? "avx2+fma" : "portable";
}

namespace {

/// Where the micro-kernel reads x from: x itself (row k at base + k * ld), or
/// x pre-packed as tiles of T x 16 columns (tile t at base + t * tileStride,
/// rows 16 floats apart, zero-padded past column N).
struct XSource {
  const float *base;
  int64_t ld;
  int64_t tileStride; ///< 0 when x is not packed.
};

/// g[rows x cols] += dy^T x for dy rows k (lda apart), columns i0.., x from
/// `src`. The one loop nest of both entry points.
void wgradBlocked(const float *a, int64_t lda, int64_t rows, int64_t t,
                  XSource src, int64_t cols, float *c, int64_t ldc) {
  bool vector = haveAvx2Fma();
  int64_t microPanels = (rows + kMr - 1) / kMr;
  thread_local std::vector<float> packed;
  packed.assign(size_t(microPanels * kKc * kMr), 0.0f);
  alignas(64) static thread_local float packedB[kKc * kNr];
  float edge[kMr * kNr];

  for (int64_t k0 = 0; k0 < t; k0 += kKc) {
    int64_t kc = std::min(kKc, t - k0);
    // Pack dy^T[i0:i0+6][k0:k0+kc] as kc x 6 per micro-panel (zero rows
    // past the end).
    for (int64_t p = 0; p < microPanels; ++p) {
      float *dst = packed.data() + p * kKc * kMr;
      int64_t i0 = p * kMr, valid = std::min(kMr, rows - i0);
      for (int64_t k = 0; k < kc; ++k) {
        const float *row = a + (k0 + k) * lda + i0;
        for (int64_t r = 0; r < kMr; ++r)
          dst[k * kMr + r] = r < valid ? row[r] : 0.0f;
      }
    }
    for (int64_t j0 = 0; j0 < cols; j0 += kNr) {
      int64_t nc = std::min(kNr, cols - j0);
      const float *bp;
      int64_t ldb;
      bool fullWidth; // 16 readable columns (a full or a zero-padded tile)
      if (src.tileStride) {
        bp = src.base + (j0 / kNr) * src.tileStride + k0 * kNr;
        ldb = kNr;
        fullWidth = true;
      } else if (vector && nc == kNr) {
        // Pack x[k0:k0+kc][j0:j0+16] contiguously: rows of x lie N floats
        // apart, and a power-of-two N would map every k of the slab to the
        // same L1 set.
        const float *bk = src.base + k0 * src.ld + j0;
        for (int64_t k = 0; k < kc; ++k)
          std::copy(bk + k * src.ld, bk + k * src.ld + kNr, packedB + k * kNr);
        bp = packedB;
        ldb = kNr;
        fullWidth = true;
      } else {
        bp = src.base + k0 * src.ld + j0;
        ldb = src.ld;
        fullWidth = false;
      }
      for (int64_t p = 0; p < microPanels; ++p) {
        const float *ap = packed.data() + p * kKc * kMr;
        int64_t i0 = p * kMr, mr = std::min(kMr, rows - i0);
        float *ct = c + i0 * ldc + j0;
#if NORA_HAVE_X86
        if (vector && fullWidth) {
          if (mr == kMr && nc == kNr) {
            tileAvx2(kc, ap, bp, ldb, ct, ldc);
            continue;
          }
          // A partial tile: run the full one on a copy (padding rows and
          // columns are zero and their results are dropped).
          for (int64_t r = 0; r < kMr; ++r)
            for (int64_t j = 0; j < kNr; ++j)
              edge[r * kNr + j] = (r < mr && j < nc) ? ct[r * ldc + j] : 0.0f;
          tileAvx2(kc, ap, bp, ldb, edge, kNr);
          for (int64_t r = 0; r < mr; ++r)
            for (int64_t j = 0; j < nc; ++j)
              ct[r * ldc + j] = edge[r * kNr + j];
          continue;
        }
#endif
        tilePortable(kc, ap, bp, ldb, ct, ldc, mr, nc);
      }
    }
  }
  (void)edge;
  (void)packedB;
}

} // namespace

extern "C" void _mlir_ciface_nora_wgrad_f32(MemRef2D *dy, MemRef2D *x,
                                            MemRef2D *g) {
  int64_t t = dy->sizes[0], rows = dy->sizes[1], cols = x->sizes[1];
  if (rows == 0 || cols == 0 || t == 0)
    return;
  if (dy->strides[1] != 1 || x->strides[1] != 1 || g->strides[1] != 1)
    return wgradStrided(dy, x, g);
  wgradBlocked(dy->aligned + dy->offset, dy->strides[0], rows, t,
               XSource{x->aligned + x->offset, x->strides[0], 0}, cols,
               g->aligned + g->offset, g->strides[0]);
}

extern "C" void _mlir_ciface_nora_wgrad_packed_f32(
    MemRef2D *dy, mlir::nora::ukernel::MemRef3D *xp, MemRef2D *g) {
  int64_t t = dy->sizes[0], rows = dy->sizes[1], cols = g->sizes[1];
  if (rows == 0 || cols == 0 || t == 0)
    return;
  bool packedLayout = xp->strides[2] == 1 && xp->strides[1] == kNr &&
                      xp->sizes[2] == kNr && xp->sizes[1] == t &&
                      xp->sizes[0] * kNr >= cols;
  if (dy->strides[1] != 1 || g->strides[1] != 1 || !packedLayout) {
    // Not the layout the blocked loop reads: plain loops, same order.
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        float *out =
            g->aligned + g->offset + i * g->strides[0] + j * g->strides[1];
        float acc = *out;
        for (int64_t k = 0; k < t; ++k) {
          float b =
              xp->aligned[xp->offset + (j / kNr) * xp->strides[0] +
                          k * xp->strides[1] + (j % kNr) * xp->strides[2]];
          acc = std::fma(*at(dy, k, i), b, acc);
        }
        *out = acc;
      }
    return;
  }
  wgradBlocked(dy->aligned + dy->offset, dy->strides[0], rows, t,
               XSource{xp->aligned + xp->offset, kNr, xp->strides[0]}, cols,
               g->aligned + g->offset, g->strides[0]);
}
