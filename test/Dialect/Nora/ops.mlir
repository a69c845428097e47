// Round trip of every nora op, pretty form and generic form.
// RUN: nora-opt %s | FileCheck %s
// RUN: nora-opt %s | nora-opt | FileCheck %s
// RUN: nora-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC
// RUN: nora-opt %s --mlir-print-op-generic | nora-opt | FileCheck %s

// CHECK-LABEL: func.func @wgrad
// GENERIC-LABEL: sym_name = "wgrad"
func.func @wgrad(%dy: tensor<64x128xbf16>, %x: tensor<64x256xbf16>,
                 %acc: tensor<128x256xf32>, %dyf: tensor<3x5xf32>,
                 %xf: tensor<3x7xf32>, %dyh: tensor<?x5xf16>,
                 %xh: tensor<?x?xf16>)
    -> (tensor<128x256xf32>, tensor<128x256xf32>, tensor<5x7xf32>, tensor<5x?xf32>) {
  // CHECK: nora.wgrad %{{.*}}, %{{.*}} : tensor<64x128xbf16>, tensor<64x256xbf16> -> tensor<128x256xf32>
  // GENERIC: "nora.wgrad"(%{{.*}}, %{{.*}}) <{scale = 1.000000e+00 : f32}> : (tensor<64x128xbf16>, tensor<64x256xbf16>) -> tensor<128x256xf32>
  %g = nora.wgrad %dy, %x : tensor<64x128xbf16>, tensor<64x256xbf16> -> tensor<128x256xf32>
  // CHECK: nora.wgrad %{{.*}}, %{{.*}} acc(%{{.*}} : tensor<128x256xf32>) {scale = 5.000000e-01 : f32} : tensor<64x128xbf16>, tensor<64x256xbf16> -> tensor<128x256xf32>
  // GENERIC: "nora.wgrad"(%{{.*}}, %{{.*}}, %{{.*}}) <{scale = 5.000000e-01 : f32}>
  %g2 = nora.wgrad %dy, %x acc(%acc : tensor<128x256xf32>) {scale = 0.5 : f32} : tensor<64x128xbf16>, tensor<64x256xbf16> -> tensor<128x256xf32>
  // CHECK: nora.wgrad %{{.*}}, %{{.*}} : tensor<3x5xf32>, tensor<3x7xf32> -> tensor<5x7xf32>
  %g3 = nora.wgrad %dyf, %xf : tensor<3x5xf32>, tensor<3x7xf32> -> tensor<5x7xf32>
  // CHECK: nora.wgrad %{{.*}}, %{{.*}} : tensor<?x5xf16>, tensor<?x?xf16> -> tensor<5x?xf32>
  %g4 = nora.wgrad %dyh, %xh : tensor<?x5xf16>, tensor<?x?xf16> -> tensor<5x?xf32>
  return %g, %g2, %g3, %g4 : tensor<128x256xf32>, tensor<128x256xf32>, tensor<5x7xf32>, tensor<5x?xf32>
}

// CHECK-LABEL: func.func @chain
// GENERIC-LABEL: sym_name = "chain"
func.func @chain(%g: tensor<128x256xf32>, %w: tensor<128x256xf32>,
                 %m: tensor<128x256xf32>, %lr: f32, %wd: f32)
    -> (tensor<128x256xf32>, tensor<128x256xf32>) {
  // CHECK: %[[MN:.*]], %[[U:.*]] = nora.momentum %{{.*}}, %{{.*}} {beta = 0.949999988 : f32, nesterov = 0.949999988 : f32} : tensor<128x256xf32>, tensor<128x256xf32>
  // GENERIC: "nora.momentum"(%{{.*}}, %{{.*}}) <{beta = 0.949999988 : f32, nesterov = 0.949999988 : f32}> : (tensor<128x256xf32>, tensor<128x256xf32>) -> (tensor<128x256xf32>, tensor<128x256xf32>)
  %mn, %u = nora.momentum %m, %g {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<128x256xf32>, tensor<128x256xf32>
  // CHECK: %[[V:.*]] = nora.orth_project %[[U]], %{{.*}} : tensor<128x256xf32>, tensor<128x256xf32>
  // GENERIC: "nora.orth_project"(%{{.*}}, %{{.*}}) <{eps = 1.000000e-10 : f32}>
  %v = nora.orth_project %u, %w : tensor<128x256xf32>, tensor<128x256xf32>
  // CHECK: %[[D:.*]] = nora.row_normalize %[[V]] {eps = 9.99999996E-13 : f32, scale = 2.000000e+00 : f32} : tensor<128x256xf32>
  // GENERIC: "nora.row_normalize"(%{{.*}}) <{eps = 9.99999996E-13 : f32, scale = 2.000000e+00 : f32}>
  %d = nora.row_normalize %v {eps = 1.0e-12 : f32, scale = 2.0 : f32} : tensor<128x256xf32>
  // CHECK: nora.apply_update %{{.*}}, %[[D]], %{{.*}}, %{{.*}} : tensor<128x256xf32>, tensor<128x256xf32>
  // GENERIC: "nora.apply_update"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<128x256xf32>, tensor<128x256xf32>, f32, f32) -> tensor<128x256xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<128x256xf32>, tensor<128x256xf32>
  return %wn, %mn : tensor<128x256xf32>, tensor<128x256xf32>
}

// CHECK-LABEL: func.func @plain_momentum_dynamic
func.func @plain_momentum_dynamic(%m: tensor<?x?xf32>, %g: tensor<4x8xf32>) -> tensor<?x?xf32> {
  // CHECK: nora.momentum %{{.*}}, %{{.*}} {beta = 0.899999976 : f32} : tensor<?x?xf32>, tensor<4x8xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32} : tensor<?x?xf32>, tensor<4x8xf32>
  return %u : tensor<?x?xf32>
}

// CHECK-LABEL: func.func @steps
// GENERIC-LABEL: sym_name = "steps"
func.func @steps(%g: tensor<512x128xf32>, %w: tensor<512x128xf32>,
                 %m: tensor<512x128xf32>, %lr: f32, %wd: f32)
    -> (tensor<512x128xf32>, tensor<512x128xf32>) {
  // CHECK: nora.nora_step %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<512x128xf32>, tensor<512x128xf32>, tensor<512x128xf32>
  // GENERIC: "nora.nora_step"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{beta = 0.949999988 : f32, eps = 1.000000e-10 : f32, nesterov = true}>
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd : tensor<512x128xf32>, tensor<512x128xf32>, tensor<512x128xf32>
  // CHECK: nora.rmnp_step %{{.*}} {beta = 0.899999976 : f32, nesterov = false, scale = 1.000000e+00 : f32} : tensor<512x128xf32>
  // GENERIC: "nora.rmnp_step"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{beta = 0.899999976 : f32, eps = 9.99999996E-13 : f32, nesterov = false, scale = 1.000000e+00 : f32}>
  %w2, %m2 = nora.rmnp_step %g, %w1, %m1, %lr, %wd {beta = 0.9 : f32, nesterov = false, scale = 1.0 : f32} : tensor<512x128xf32>, tensor<512x128xf32>, tensor<512x128xf32>
  return %w2, %m2 : tensor<512x128xf32>, tensor<512x128xf32>
}

// CHECK-LABEL: func.func @fused
// GENERIC-LABEL: sym_name = "fused"
func.func @fused(%dy: tensor<64x128xbf16>, %x: tensor<64x256xbf16>,
                 %w: tensor<128x256xf32>, %m: tensor<128x256xf32>,
                 %acc: tensor<128x256xf32>, %lr: f32, %wd: f32)
    -> (tensor<128x256xf32>, tensor<128x256xf32>) {
  // CHECK: nora.fused_wgrad_step dy(%{{.*}} : tensor<64x128xbf16>) x(%{{.*}} : tensor<64x256xbf16>) acc(%{{.*}} : tensor<128x256xf32>) w(%{{.*}} : tensor<128x256xf32>) m(%{{.*}} : tensor<128x256xf32>) lr(%{{.*}}) wd(%{{.*}}) attributes {scale = 2.000000e+00 : f32} {
  // CHECK-NEXT: ^bb0(%[[G:.*]]: tensor<128x256xf32>, %[[W:.*]]: tensor<128x256xf32>, %[[M:.*]]: tensor<128x256xf32>, %[[LR:.*]]: f32, %[[WD:.*]]: f32):
  // CHECK: nora.momentum %[[M]], %[[G]]
  // CHECK: nora.yield %{{.*}}, %{{.*}} : tensor<128x256xf32>, tensor<128x256xf32>
  // GENERIC: "nora.fused_wgrad_step"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{scale = 2.000000e+00 : f32}> ({
  // GENERIC: "nora.yield"
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<64x128xbf16>) x(%x : tensor<64x256xbf16>)
      acc(%acc : tensor<128x256xf32>) w(%w : tensor<128x256xf32>) m(%m : tensor<128x256xf32>)
      lr(%lr) wd(%wd) attributes {scale = 2.0 : f32} {
  ^bb0(%g: tensor<128x256xf32>, %w0: tensor<128x256xf32>, %m0: tensor<128x256xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.95 : f32} : tensor<128x256xf32>, tensor<128x256xf32>
    %d = nora.row_normalize %u : tensor<128x256xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x256xf32>, tensor<128x256xf32>
    nora.yield %w1, %m1 : tensor<128x256xf32>, tensor<128x256xf32>
  }
  return %wn, %mn : tensor<128x256xf32>, tensor<128x256xf32>
}

// Generic-form input with the fixed names parses (the SEMANTICS.md contract).
// CHECK-LABEL: func.func @generic_input
func.func @generic_input(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>, %w: tensor<4x8xf32>, %lr: f32, %wd: f32) -> tensor<4x8xf32> {
  // CHECK: nora.momentum %{{.*}}, %{{.*}} {beta = 0.949999988 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  %mn, %u = "nora.momentum"(%m, %g) {beta = 0.95 : f32} : (tensor<4x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
  // CHECK: nora.orth_project %{{.*}}, %{{.*}} {eps = 9.99999996E-13 : f32}
  %v = "nora.orth_project"(%u, %w) {eps = 1.0e-12 : f32} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  // CHECK: nora.row_normalize %{{.*}} {scale = 3.000000e+00 : f32}
  %d = "nora.row_normalize"(%v) {scale = 3.0 : f32} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  // CHECK: nora.apply_update
  %wn = "nora.apply_update"(%w, %d, %lr, %wd) : (tensor<4x8xf32>, tensor<4x8xf32>, f32, f32) -> tensor<4x8xf32>
  return %wn : tensor<4x8xf32>
}

// CHECK-LABEL: func.func @nonfinite
// GENERIC-LABEL: sym_name = "nonfinite"
func.func @nonfinite(%dy: tensor<3x4xf32>, %x: tensor<3x5xf32>, %g: tensor<4x5xf32>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %lr: f32, %wd: f32)
    -> (tensor<4x5xf32>, tensor<4x5xf32>, i64, i64, i64) {
  // CHECK: nora.skip_nonfinite %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {mode = "skip_row"} : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>
  // GENERIC: "nora.skip_nonfinite"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{mode = "skip_row"}> : (tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>) -> (tensor<4x5xf32>, tensor<4x5xf32>, i64)
  %w1, %m1, %s1 = nora.skip_nonfinite %g, %w, %m, %w, %m {mode = "skip_row"} : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>
  // CHECK: nora.rmnp_step %{{.*}} {nonfinite = "skip_step"} : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32> -> i64
  // GENERIC: "nora.rmnp_step"({{.*}}) <{{{.*}}nonfinite = "skip_step"{{.*}}}> : ({{.*}}) -> (tensor<4x5xf32>, tensor<4x5xf32>, i64)
  %w2, %m2, %s2 = nora.rmnp_step %g, %w1, %m1, %lr, %wd {nonfinite = "skip_step"} : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32> -> i64
  // CHECK: nora.fused_wgrad_step {{.*}} attributes {nonfinite = "skip_row"}
  // GENERIC: "nora.fused_wgrad_step"({{.*}}) <{nonfinite = "skip_row"{{.*}}}> ({{.*}}
  // GENERIC: -> (tensor<4x5xf32>, tensor<4x5xf32>, i64)
  %w3, %m3, %s3 = nora.fused_wgrad_step dy(%dy : tensor<3x4xf32>) x(%x : tensor<3x5xf32>) w(%w2 : tensor<4x5xf32>) m(%m2 : tensor<4x5xf32>) lr(%lr) wd(%wd) attributes {nonfinite = "skip_row"} {
  ^bb0(%g0: tensor<4x5xf32>, %w0: tensor<4x5xf32>, %m0: tensor<4x5xf32>, %lr0: f32, %wd0: f32):
    nora.yield %w0, %m0 : tensor<4x5xf32>, tensor<4x5xf32>
  }
  return %w3, %m3, %s1, %s2, %s3 : tensor<4x5xf32>, tensor<4x5xf32>, i64, i64, i64
}
