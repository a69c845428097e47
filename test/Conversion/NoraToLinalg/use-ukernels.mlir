// RUN: nora-opt %s -convert-nora-to-linalg=use-ukernels -canonicalize -cse -split-input-file | FileCheck %s

// With micro-kernels: bf16 inputs are extended to f32 first, and the
// contraction carries library_call = "nora_wgrad_f32" (its body stays the
// reference semantics).
// CHECK-LABEL: func.func @wgrad
// CHECK: %[[DY:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<3x5xbf16>) outs(%{{.*}} : tensor<3x5xf32>)
// CHECK: arith.extf
// CHECK: %[[X:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<3x7xbf16>) outs(%{{.*}} : tensor<3x7xf32>)
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"], library_call = "nora_wgrad_f32"} ins(%[[DY]], %[[X]] : tensor<3x5xf32>, tensor<3x7xf32>)
func.func @wgrad(%dy: tensor<3x5xbf16>, %x: tensor<3x7xbf16>) -> tensor<5x7xf32> {
  %g = nora.wgrad %dy, %x : tensor<3x5xbf16>, tensor<3x7xbf16> -> tensor<5x7xf32>
  return %g : tensor<5x7xf32>
}

// -----

// Row statistics call the f64 row micro-kernels.
// CHECK-LABEL: func.func @row_stats
// CHECK: library_call = "nora_row_sumsq_f64"
// CHECK: library_call = "nora_row_dot_f64"
// CHECK: library_call = "nora_row_sumsq_f64"
func.func @row_stats(%u: tensor<4x8xf32>, %w: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %v = nora.orth_project %u, %w : tensor<4x8xf32>, tensor<4x8xf32>
  %d = nora.row_normalize %v : tensor<4x8xf32>
  return %d : tensor<4x8xf32>
}
