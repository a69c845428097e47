// A stock mlir-opt runs nora's passes from the plugin.
// RUN: mlir-opt %s --load-dialect-plugin=%nora_plugin --load-pass-plugin=%nora_plugin --pass-pipeline="builtin.module(nora-decompose)" | FileCheck %s
// Stock mlir-opt parses its pass flags before it loads pass plugins, so plugin
// passes are named through --pass-pipeline, not as --nora-decompose.
// RUN: not mlir-opt %s --load-dialect-plugin=%nora_plugin --load-pass-plugin=%nora_plugin --nora-decompose 2>&1 | FileCheck %s --check-prefix=FLAG
// FLAG: Unknown command line argument '--nora-decompose'
// The plugin's verifier runs in the stock tool too.
// RUN: mlir-opt %S/Inputs/bad-beta.mlir --load-dialect-plugin=%nora_plugin -verify-diagnostics

// CHECK-LABEL: func.func @step
// CHECK: nora.momentum
// CHECK: nora.orth_project
// CHECK: nora.row_normalize %{{.*}} {scale = 2.000000e+00 : f32}
// CHECK: nora.apply_update
// CHECK-NOT: nora.nora_step
func.func @step(%g: tensor<32x8xf32>, %w: tensor<32x8xf32>, %m: tensor<32x8xf32>, %lr: f32, %wd: f32) -> (tensor<32x8xf32>, tensor<32x8xf32>) {
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd : tensor<32x8xf32>, tensor<32x8xf32>, tensor<32x8xf32>
  return %w1, %m1 : tensor<32x8xf32>, tensor<32x8xf32>
}
