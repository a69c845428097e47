//===- UkernelTest.cpp - the wgrad micro-kernel ------------------*- C++ -*-===//
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
  std::vector<float> dyT = randomMatrix(m * t, 6), x2 = randomMatrix(t * n * 2, 7);
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
