// RUN: nora-opt %s -nora-decompose -split-input-file -verify-diagnostics | FileCheck %s

// Nora with every default: nesterov = beta, eps = 1e-10 (the ops' default, so
// not printed), scale = max(1, sqrt(512/128)) = 2.
// CHECK-LABEL: func.func @nora_defaults
// CHECK-SAME: (%[[G:.*]]: tensor<512x128xf32>, %[[W:.*]]: tensor<512x128xf32>, %[[M:.*]]: tensor<512x128xf32>, %[[LR:.*]]: f32, %[[WD:.*]]: f32)
// CHECK: %[[MN:.*]], %[[U:.*]] = nora.momentum %[[M]], %[[G]] {beta = 0.949999988 : f32, nesterov = 0.949999988 : f32}
// CHECK: %[[V:.*]] = nora.orth_project %[[U]], %[[W]] :
// CHECK: %[[D:.*]] = nora.row_normalize %[[V]] {scale = 2.000000e+00 : f32}
// CHECK: %[[WN:.*]] = nora.apply_update %[[W]], %[[D]], %[[LR]], %[[WD]]
// CHECK: return %[[WN]], %[[MN]]
func.func @nora_defaults(%g: tensor<512x128xf32>, %w: tensor<512x128xf32>, %m: tensor<512x128xf32>, %lr: f32, %wd: f32) -> (tensor<512x128xf32>, tensor<512x128xf32>) {
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd : tensor<512x128xf32>, tensor<512x128xf32>, tensor<512x128xf32>
  return %w1, %m1 : tensor<512x128xf32>, tensor<512x128xf32>
}

// -----

// Wide weight: max(1, sqrt(128/512)) = 1 (row_normalize's default, so not
// printed). No Nesterov: no nesterov attribute.
// CHECK-LABEL: func.func @nora_wide_no_nesterov
// CHECK: nora.momentum %{{.*}}, %{{.*}} {beta = 0.899999976 : f32} :
// CHECK: nora.orth_project %{{.*}}, %{{.*}} {eps = 9.99999996E-13 : f32}
// CHECK: nora.row_normalize %{{.*}} {eps = 9.99999996E-13 : f32} :
func.func @nora_wide_no_nesterov(%g: tensor<128x512xf32>, %w: tensor<128x512xf32>, %m: tensor<128x512xf32>, %lr: f32, %wd: f32) -> (tensor<128x512xf32>, tensor<128x512xf32>) {
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd {beta = 0.9 : f32, nesterov = false, eps = 1.0e-12 : f32} : tensor<128x512xf32>, tensor<128x512xf32>, tensor<128x512xf32>
  return %w1, %m1 : tensor<128x512xf32>, tensor<128x512xf32>
}

// -----

// RMNP: no projection, eps = 1e-12, Moonlight scale 0.2 * sqrt(max(100, 400)) = 4.
// CHECK-LABEL: func.func @rmnp_defaults
// CHECK: %[[MN:.*]], %[[U:.*]] = nora.momentum %{{.*}}, %{{.*}} {beta = 0.949999988 : f32, nesterov = 0.949999988 : f32}
// CHECK-NOT: nora.orth_project
// CHECK: %[[D:.*]] = nora.row_normalize %[[U]] {eps = 9.99999996E-13 : f32, scale = 4.000000e+00 : f32}
// CHECK: nora.apply_update %{{.*}}, %[[D]]
func.func @rmnp_defaults(%g: tensor<100x400xf32>, %w: tensor<100x400xf32>, %m: tensor<100x400xf32>, %lr: f32, %wd: f32) -> (tensor<100x400xf32>, tensor<100x400xf32>) {
  %w1, %m1 = nora.rmnp_step %g, %w, %m, %lr, %wd : tensor<100x400xf32>, tensor<100x400xf32>, tensor<100x400xf32>
  return %w1, %m1 : tensor<100x400xf32>, tensor<100x400xf32>
}

// -----

// An explicit scale wins, and dynamic shapes are fine with it.
// CHECK-LABEL: func.func @explicit_scale_dynamic
// CHECK: nora.row_normalize %{{.*}} {scale = 3.000000e-01 : f32} : tensor<?x?xf32>
func.func @explicit_scale_dynamic(%g: tensor<?x?xf32>, %w: tensor<?x?xf32>, %m: tensor<?x?xf32>, %lr: f32, %wd: f32) -> (tensor<?x?xf32>, tensor<?x?xf32>) {
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd {scale = 0.3 : f32} : tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>
  return %w1, %m1 : tensor<?x?xf32>, tensor<?x?xf32>
}

// -----

// Two layers in one function: each step expands on its own.
// CHECK-LABEL: func.func @two_layers
// CHECK-COUNT-2: nora.apply_update
// CHECK-NOT: nora.nora_step
// CHECK-NOT: nora.rmnp_step
func.func @two_layers(%g: tensor<8x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %g2: tensor<4x8xf32>, %w2: tensor<4x8xf32>, %m2: tensor<4x8xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<4x8xf32>) {
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>
  %w3, %m3 = nora.rmnp_step %g2, %w2, %m2, %lr, %wd : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
  return %w1, %w3 : tensor<8x4xf32>, tensor<4x8xf32>
}

// -----

// The default scale needs the static shape of w.
func.func @dynamic_no_scale(%g: tensor<?x128xf32>, %w: tensor<?x128xf32>, %m: tensor<?x128xf32>, %lr: f32, %wd: f32) -> (tensor<?x128xf32>, tensor<?x128xf32>) {
  // expected-error @+1 {{'nora.nora_step' op needs an explicit 'scale' attribute: the default scale depends on the static shape of 'w', which is 'tensor<?x128xf32>'}}
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd : tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>
  return %w1, %m1 : tensor<?x128xf32>, tensor<?x128xf32>
}

// -----

// The non-finite mode of a composite step becomes a nora.skip_nonfinite on
// (g, w, m) and the chain's (w_new, m_new); its count is the step's third
// result.
// CHECK-LABEL: func.func @nonfinite_step
// CHECK-SAME: (%[[G:.*]]: tensor<8x8xf32>, %[[W:.*]]: tensor<8x8xf32>, %[[M:.*]]: tensor<8x8xf32>
// CHECK: %[[MN:.*]], %[[U:.*]] = nora.momentum %[[M]], %[[G]]
// CHECK: %[[D:.*]] = nora.row_normalize
// CHECK: %[[WN:.*]] = nora.apply_update %[[W]], %[[D]]
// CHECK: %[[W1:.*]], %[[M1:.*]], %[[S:.*]] = nora.skip_nonfinite %[[G]], %[[W]], %[[M]], %[[WN]], %[[MN]] {mode = "skip_step"}
// CHECK: return %[[W1]], %[[M1]], %[[S]]
func.func @nonfinite_step(%g: tensor<8x8xf32>, %w: tensor<8x8xf32>, %m: tensor<8x8xf32>, %lr: f32, %wd: f32) -> (tensor<8x8xf32>, tensor<8x8xf32>, i64) {
  %w1, %m1, %s = nora.rmnp_step %g, %w, %m, %lr, %wd {nonfinite = "skip_step"} : tensor<8x8xf32>, tensor<8x8xf32>, tensor<8x8xf32> -> i64
  return %w1, %m1, %s : tensor<8x8xf32>, tensor<8x8xf32>, i64
}
