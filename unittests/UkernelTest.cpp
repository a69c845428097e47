//===- UkernelTest.cpp - the wgrad micro-kernel ------------------*- C++
//-*-===//
//
// The micro-kernel is C++ the IR cannot reach on its own: check it against a
// plain loop in the same order (bit for bit), on tile edges, on strided
// views, and that splitting g into row panels changes no bit.
//
//===----------------------------------------------------------------------===//

#include "nora/Runtime/Ukernels.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <random>
#include <sys/mman.h>
#include <vector>

using mlir::nora::ukernel::MemRef2D;

namespace {

MemRef2D view(float *data, int64_t rows, int64_t cols, int64_t ld,
              int64_t offset = 0, int64_t colStride = 1) {
  return {data, data, offset, {rows, cols}, {ld, colStride}};
}

std::vector<float> randomMatrix(int64_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(gen);
  return v;
}

/// g[i][j] += sum_k dy[k][i] x[k][j], k ascending, one fma per term.
void reference(const std::vector<float> &dy, const std::vector<float> &x,
               std::vector<float> &g, int64_t t, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float acc = g[i * n + j];
      for (int64_t k = 0; k < t; ++k)
        acc = std::fma(dy[k * m + i], x[k * n + j], acc);
      g[i * n + j] = acc;
    }
}

void expectBitwiseEqual(const std::vector<float> &a,
                        const std::vector<float> &b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

class WgradShapes
    : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(WgradShapes, MatchesThePlainLoopBitForBit) {
  auto [t, m, n] = GetParam();
  std::vector<float> dy = randomMatrix(t * m, 1), x = randomMatrix(t * n, 2);
  std::vector<float> g = randomMatrix(m * n, 3), expected = g;
  reference(dy, x, expected, t, m, n);
  MemRef2D a = view(dy.data(), t, m, m), b = view(x.data(), t, n, n),
           c = view(g.data(), m, n, n);
  _mlir_ciface_nora_wgrad_f32(&a, &b, &c);
  expectBitwiseEqual(g, expected);
}

// Full tiles, partial rows (m % 6), partial columns (n % 16), k blocks
// (t > 256), one row, one column, one token.
INSTANTIATE_TEST_SUITE_P(
    Edges, WgradShapes,
    ::testing::Values(std::make_tuple(8, 12, 32), std::make_tuple(7, 13, 37),
                      std::make_tuple(300, 18, 48), std::make_tuple(513, 7, 17),
                      std::make_tuple(5, 1, 40), std::make_tuple(5, 20, 1),
                      std::make_tuple(1, 6, 16), std::make_tuple(64, 97, 61)));

TEST(Wgrad, RowPanelsGiveTheSameBits) {
  const int64_t t = 70, m = 50, n = 45;
  std::vector<float> dy = randomMatrix(t * m, 4), x = randomMatrix(t * n, 5);
  std::vector<float> whole(m * n, 0.0f), panels(m * n, 0.0f);
  MemRef2D a = view(dy.data(), t, m, m), b = view(x.data(), t, n, n);
  MemRef2D c = view(whole.data(), m, n, n);
  _mlir_ciface_nora_wgrad_f32(&a, &b, &c);
  for (int64_t r0 = 0; r0 < m; r0 += 12) {
    int64_t rows = std::min<int64_t>(12, m - r0);
    MemRef2D ap = view(dy.data(), t, rows, m, /*offset=*/r0);
    MemRef2D cp = view(panels.data(), rows, n, n, /*offset=*/r0 * n);
    _mlir_ciface_nora_wgrad_f32(&ap, &b, &cp);
  }
  expectBitwiseEqual(whole, panels);
}

TEST(Wgrad, NonUnitStridesTakeTheGeneralPath) {
  const int64_t t = 9, m = 5, n = 4;
  // dy stored transposed (column-major view), x with a column stride of 2.
  std::vector<float> dyT = randomMatrix(m * t, 6),
                     x2 = randomMatrix(t * n * 2, 7);
  std::vector<float> dy(t * m), x(t * n);
  for (int64_t k = 0; k < t; ++k) {
    for (int64_t i = 0; i < m; ++i)
      dy[k * m + i] = dyT[i * t + k];
    for (int64_t j = 0; j < n; ++j)
      x[k * n + j] = x2[k * n * 2 + j * 2];
  }
  std::vector<float> g(m * n, 0.0f), expected(m * n, 0.0f);
  reference(dy, x, expected, t, m, n);
  MemRef2D a = view(dyT.data(), t, m, /*ld=*/1, 0, /*colStride=*/t);
  MemRef2D b = view(x2.data(), t, n, n * 2, 0, 2);
  MemRef2D c = view(g.data(), m, n, n);
  _mlir_ciface_nora_wgrad_f32(&a, &b, &c);
  expectBitwiseEqual(g, expected);
}

TEST(Wgrad, EmptyShapesDoNothing) {
  std::vector<float> g = {1.0f, 2.0f};
  MemRef2D a = view(nullptr, 0, 1, 1), b = view(nullptr, 0, 2, 2),
           c = view(g.data(), 1, 2, 2);
  _mlir_ciface_nora_wgrad_f32(&a, &b, &c);
  EXPECT_EQ(g[0], 1.0f);
  EXPECT_EQ(g[1], 2.0f);
}

} // namespace

namespace {

/// x packed as the lowering packs it: ceil(N/16) tiles of T x 16, zero past N.
std::vector<float> packX(const std::vector<float> &x, int64_t t, int64_t n) {
  int64_t tiles = (n + 15) / 16;
  std::vector<float> packed(tiles * t * 16, 0.0f);
  for (int64_t k = 0; k < t; ++k)
    for (int64_t j = 0; j < n; ++j)
      packed[(j / 16) * t * 16 + k * 16 + j % 16] = x[k * n + j];
  return packed;
}

TEST(WgradPacked, MatchesTheUnpackedKernelBitForBit) {
  for (auto [t, m, n] :
       {std::make_tuple(64, 50, 45), std::make_tuple(300, 13, 32),
        std::make_tuple(5, 6, 7), std::make_tuple(1, 1, 1)}) {
    std::vector<float> dy = randomMatrix(t * m, 8), x = randomMatrix(t * n, 9);
    std::vector<float> packed = packX(x, t, n);
    std::vector<float> plain = randomMatrix(m * n, 10), fromPacked = plain;
    MemRef2D a = view(dy.data(), t, m, m), b = view(x.data(), t, n, n);
    MemRef2D c1 = view(plain.data(), m, n, n),
             c2 = view(fromPacked.data(), m, n, n);
    _mlir_ciface_nora_wgrad_f32(&a, &b, &c1);
    int64_t tiles = (n + 15) / 16;
    mlir::nora::ukernel::MemRef3D xp = {
        packed.data(), packed.data(), 0, {tiles, t, 16}, {t * 16, 16, 1}};
    _mlir_ciface_nora_wgrad_packed_f32(&a, &xp, &c2);
    expectBitwiseEqual(plain, fromPacked);
  }
}

TEST(WgradPacked, UnexpectedLayoutsTakeTheGeneralPath) {
  const int64_t t = 4, m = 3, n = 5;
  std::vector<float> dy = randomMatrix(t * m, 11), x = randomMatrix(t * n, 12);
  // The same tiles, but with a padded row stride of 32 floats.
  std::vector<float> padded(t * 32, 0.0f);
  for (int64_t k = 0; k < t; ++k)
    for (int64_t j = 0; j < n; ++j)
      padded[k * 32 + j] = x[k * n + j];
  std::vector<float> g(m * n, 0.0f), expected(m * n, 0.0f);
  reference(dy, x, expected, t, m, n);
  MemRef2D a = view(dy.data(), t, m, m), c = view(g.data(), m, n, n);
  mlir::nora::ukernel::MemRef3D xp = {
      padded.data(), padded.data(), 0, {1, t, 16}, {t * 32, 32, 1}};
  _mlir_ciface_nora_wgrad_packed_f32(&a, &xp, &c);
  expectBitwiseEqual(g, expected);
}

TEST(RowStatistics, SixteenLanesInAFixedTreeOnEveryPath) {
  const int64_t rows = 3, cols = 37;
  std::vector<float> a = randomMatrix(rows * cols, 13),
                     b = randomMatrix(rows * cols, 14);
  std::vector<double> dot(rows, 0.0), sumsq(rows, 0.0);
  MemRef2D va = view(a.data(), rows, cols, cols),
           vb = view(b.data(), rows, cols, cols);
  mlir::nora::ukernel::MemRef1D out = {dot.data(), dot.data(), 0, {rows}, {1}};
  mlir::nora::ukernel::MemRef1D sq = {
      sumsq.data(), sumsq.data(), 0, {rows}, {1}};
  _mlir_ciface_nora_row_dot_f64(&va, &vb, &out);
  _mlir_ciface_nora_row_sumsq_f64(&va, &sq);
  for (int64_t i = 0; i < rows; ++i) {
    double lanes[16] = {}, lanesSq[16] = {};
    for (int64_t j = 0; j < cols; ++j) {
      lanes[j % 16] += double(a[i * cols + j]) * double(b[i * cols + j]);
      lanesSq[j % 16] += double(a[i * cols + j]) * double(a[i * cols + j]);
    }
    for (int width = 8; width >= 1; width /= 2)
      for (int l = 0; l < width; ++l) {
        lanes[l] = lanes[2 * l] + lanes[2 * l + 1];
        lanesSq[l] = lanesSq[2 * l] + lanesSq[2 * l + 1];
      }
    EXPECT_EQ(dot[i], lanes[0]);
    EXPECT_EQ(sumsq[i], lanesSq[0]);
  }
  // Strided (column-major) views take the portable path: same bits.
  std::vector<float> at(cols * rows);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      at[j * rows + i] = a[i * cols + j];
  std::vector<double> strided(rows, 0.0);
  MemRef2D vt = view(at.data(), rows, cols, 1, 0, rows);
  mlir::nora::ukernel::MemRef1D so = {
      strided.data(), strided.data(), 0, {rows}, {1}};
  _mlir_ciface_nora_row_sumsq_f64(&vt, &so);
  for (int64_t i = 0; i < rows; ++i)
    EXPECT_EQ(strided[i], sumsq[i]);
}

} // namespace

// Offsets past 2^31 elements (issue: 32-bit indexing must never be silently
// wrong): two rows 2^31 + 64 floats apart in a sparse 8 GiB+ mapping, of
// which only the touched pages are ever backed. The micro-kernels index with
// the descriptors' int64 strides, so row 1 must be read and written where it
// is.
TEST(Limits, RowsPastTwoToThe31ElementsAreAddressedIn64Bit) {
  const int64_t cols = 37, rowStride = (int64_t(1) << 31) + 64;
  const size_t bytes = size_t(rowStride + cols) * sizeof(float);
  void *mapping = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapping == MAP_FAILED)
    GTEST_SKIP() << "cannot reserve " << bytes << " bytes of address space";
  auto *base = static_cast<float *>(mapping);
  std::vector<float> row0 = randomMatrix(cols, 21),
                     row1 = randomMatrix(cols, 22);
  std::memcpy(base, row0.data(), cols * sizeof(float));
  std::memcpy(base + rowStride, row1.data(), cols * sizeof(float));
  MemRef2D far = {base, base, 0, {2, cols}, {rowStride, 1}};

  // Row statistics of the far row.
  std::vector<double> sumsq(2, 0.0);
  mlir::nora::ukernel::MemRef1D sq = {sumsq.data(), sumsq.data(), 0, {2}, {1}};
  _mlir_ciface_nora_row_sumsq_f64(&far, &sq);
  std::vector<double> compact(2, 0.0);
  std::vector<float> both(row0);
  both.insert(both.end(), row1.begin(), row1.end());
  MemRef2D near = view(both.data(), 2, cols, cols);
  mlir::nora::ukernel::MemRef1D nearSq = {
      compact.data(), compact.data(), 0, {2}, {1}};
  _mlir_ciface_nora_row_sumsq_f64(&near, &nearSq);
  EXPECT_EQ(sumsq[0], compact[0]);
  EXPECT_EQ(sumsq[1], compact[1]);
  EXPECT_GT(sumsq[1], 0.0);

  // A gradient panel written past 2^31 elements: g = dy^T x into the far
  // rows, compared with the same product into a compact buffer.
  const int64_t tokens = 5;
  std::vector<float> dy = randomMatrix(tokens * 2, 23),
                     x = randomMatrix(tokens * cols, 24);
  std::memset(base, 0, cols * sizeof(float));
  std::memset(base + rowStride, 0, cols * sizeof(float));
  MemRef2D vdy = view(dy.data(), tokens, 2, 2),
           vx = view(x.data(), tokens, cols, cols);
  _mlir_ciface_nora_wgrad_f32(&vdy, &vx, &far);
  std::vector<float> g(2 * cols, 0.0f);
  MemRef2D vg = view(g.data(), 2, cols, cols);
  _mlir_ciface_nora_wgrad_f32(&vdy, &vx, &vg);
  EXPECT_EQ(
      0, std::memcmp(base + rowStride, g.data() + cols, cols * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(base, g.data(), cols * sizeof(float)));
  munmap(mapping, bytes);
}
