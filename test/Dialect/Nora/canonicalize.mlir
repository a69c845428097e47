// RUN: nora-opt %s -canonicalize -split-input-file | FileCheck %s

// beta = 0: m_new = g and u = g; the momentum op disappears.
// CHECK-LABEL: func.func @momentum_beta_zero
// CHECK-SAME: (%[[M:.*]]: tensor<4x8xf32>, %[[G:.*]]: tensor<4x8xf32>)
// CHECK-NOT: nora.momentum
// CHECK: return %[[G]], %[[G]]
func.func @momentum_beta_zero(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %mn, %u = nora.momentum %m, %g {beta = 0.0 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  return %mn, %u : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// With Nesterov too: (1 - mu) g + mu g = g.
// CHECK-LABEL: func.func @momentum_beta_zero_nesterov
// CHECK-SAME: (%[[M:.*]]: tensor<4x8xf32>, %[[G:.*]]: tensor<4x8xf32>)
// CHECK-NOT: nora.momentum
// CHECK: return %[[G]], %[[G]]
func.func @momentum_beta_zero_nesterov(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %mn, %u = nora.momentum %m, %g {beta = 0.0 : f32, nesterov = 0.9 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  return %mn, %u : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// A static g does not replace a dynamically typed result: no fold.
// CHECK-LABEL: func.func @momentum_beta_zero_type_change
// CHECK: nora.momentum
func.func @momentum_beta_zero_type_change(%m: tensor<?x8xf32>, %g: tensor<4x8xf32>) -> tensor<?x8xf32> {
  %mn, %u = nora.momentum %m, %g {beta = 0.0 : f32} : tensor<?x8xf32>, tensor<4x8xf32>
  return %u : tensor<?x8xf32>
}

// -----

// beta != 0: nothing to fold.
// CHECK-LABEL: func.func @momentum_kept
// CHECK: %[[MN:.*]], %[[U:.*]] = nora.momentum
// CHECK: return %[[MN]], %[[U]]
func.func @momentum_kept(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32, nesterov = 0.9 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  return %mn, %u : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// nesterov = 0: u = g; m_new stays.
// CHECK-LABEL: func.func @nesterov_zero
// CHECK-SAME: (%[[M:.*]]: tensor<4x8xf32>, %[[G:.*]]: tensor<4x8xf32>)
// CHECK: %[[MN:.*]], %{{.*}} = nora.momentum %[[M]], %[[G]]
// CHECK: return %[[MN]], %[[G]]
func.func @nesterov_zero(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32, nesterov = 0.0 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  return %mn, %u : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Unused results: the pure ops are erased.
// CHECK-LABEL: func.func @dead_chain
// CHECK-NOT: nora.
// CHECK: return
func.func @dead_chain(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>, %w: tensor<4x8xf32>) {
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  %v = nora.orth_project %u, %w : tensor<4x8xf32>, tensor<4x8xf32>
  %d = nora.row_normalize %v : tensor<4x8xf32>
  return
}
