// A stock mlir-opt (not nora-opt) loads the nora dialect from the plugin and
// round-trips nora IR, pretty and generic.
// RUN: mlir-opt %s --load-dialect-plugin=%nora_plugin | FileCheck %s
// RUN: mlir-opt %s --load-dialect-plugin=%nora_plugin --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC
// Without the plugin the dialect is unknown.
// RUN: not mlir-opt %s 2>&1 | FileCheck %s --check-prefix=NOPLUGIN

// CHECK-LABEL: func.func @step
// CHECK: nora.momentum %{{.*}}, %{{.*}} {beta = 0.949999988 : f32, nesterov = 0.949999988 : f32}
// CHECK: nora.orth_project
// CHECK: nora.row_normalize
// CHECK: nora.apply_update
// GENERIC: "nora.momentum"
// NOPLUGIN: operation being parsed with an unregistered dialect
func.func @step(%g: tensor<16x8xf32>, %w: tensor<16x8xf32>, %m: tensor<16x8xf32>, %lr: f32, %wd: f32) -> (tensor<16x8xf32>, tensor<16x8xf32>) {
  %mn, %u = "nora.momentum"(%m, %g) {beta = 0.95 : f32, nesterov = 0.95 : f32} : (tensor<16x8xf32>, tensor<16x8xf32>) -> (tensor<16x8xf32>, tensor<16x8xf32>)
  %v = nora.orth_project %u, %w : tensor<16x8xf32>, tensor<16x8xf32>
  %d = nora.row_normalize %v {scale = 1.414 : f32} : tensor<16x8xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<16x8xf32>, tensor<16x8xf32>
  return %wn, %mn : tensor<16x8xf32>, tensor<16x8xf32>
}
