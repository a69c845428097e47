// RUN: nora-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(nora-guard-nonfinite{mode=skip_row}))' | FileCheck %s
// RUN: nora-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(nora-guard-nonfinite{mode=skip_step append-count=1}))' | FileCheck %s --check-prefix=COUNT
// RUN: not nora-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(nora-guard-nonfinite{mode=skip_row append-single-count=1}))' 2>/dev/null | FileCheck %s --check-prefix=SINGLE
// RUN: not nora-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(nora-guard-nonfinite{mode=skip_row append-single-count=1}))' 2>&1 >/dev/null | FileCheck %s --check-prefix=SINGLEERR
// RUN: not nora-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(nora-guard-nonfinite{mode=skip_row append-count=1 append-single-count=1}))' 2>&1 | FileCheck %s --check-prefix=BOTH
// BOTH: nora-guard-nonfinite: append-count and append-single-count exclude each other
// RUN: not nora-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(nora-guard-nonfinite{mode=skip}))' 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: nora-guard-nonfinite: mode must be "skip_row" or "skip_step", got "skip"

// A primitive chain gets a guard after it; later uses read the guarded values.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: (%[[G:.*]]: tensor<6x5xf32>, %[[W:.*]]: tensor<6x5xf32>, %[[M:.*]]: tensor<6x5xf32>
// CHECK: %[[MN:.*]], %{{.*}} = nora.momentum %[[M]], %[[G]]
// CHECK: %[[WN:.*]] = nora.apply_update %[[W]]
// CHECK: %[[W1:.*]], %[[M1:.*]], %{{.*}} = nora.skip_nonfinite %[[G]], %[[W]], %[[M]], %[[WN]], %[[MN]] {mode = "skip_row"}
// CHECK: return %[[W1]], %[[M1]] :
// COUNT-LABEL: func.func @chain
// COUNT-SAME: -> (tensor<6x5xf32>, tensor<6x5xf32>, tensor<1xi64>)
// COUNT: %{{.*}}, %{{.*}}, %[[S:.*]] = nora.skip_nonfinite {{.*}} {mode = "skip_step"}
// COUNT: %[[T:.*]] = arith.addi %{{.*}}, %[[S]] : i64
// COUNT: %[[R:.*]] = tensor.from_elements %[[T]] : tensor<1xi64>
// COUNT: return %{{.*}}, %{{.*}}, %[[R]]
// append-single-count: the one new guard's count itself, an i64.
// SINGLE-LABEL: func.func @chain
// SINGLE-SAME: -> (tensor<6x5xf32>, tensor<6x5xf32>, i64)
// SINGLE: %[[W1:.*]], %[[M1:.*]], %[[S:.*]] = nora.skip_nonfinite {{.*}} {mode = "skip_row"}
// SINGLE-NOT: arith.addi
// SINGLE: return %[[W1]], %[[M1]], %[[S]] : tensor<6x5xf32>, tensor<6x5xf32>, i64
func.func @chain(%g: tensor<6x5xf32>, %w: tensor<6x5xf32>, %m: tensor<6x5xf32>, %lr: f32, %wd: f32) -> (tensor<6x5xf32>, tensor<6x5xf32>) {
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32} : tensor<6x5xf32>, tensor<6x5xf32>
  %v = nora.orth_project %u, %w : tensor<6x5xf32>, tensor<6x5xf32>
  %d = nora.row_normalize %v : tensor<6x5xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<6x5xf32>, tensor<6x5xf32>
  return %wn, %mn : tensor<6x5xf32>, tensor<6x5xf32>
}

// -----

// Composite and fused steps get the attribute and their count; a step that
// already has a mode keeps it; two steps' counts are summed.
// CHECK-LABEL: func.func @steps
// CHECK: nora.nora_step {{.*}} {nonfinite = "skip_row"} : {{.*}} -> i64
// CHECK: nora.rmnp_step {{.*}} {nonfinite = "skip_step"} : {{.*}} -> i64
// CHECK: nora.fused_wgrad_step {{.*}} attributes {nonfinite = "skip_row"}
// COUNT-LABEL: func.func @steps
// COUNT: %{{.*}}, %{{.*}}, %[[S1:.*]] = nora.nora_step {{.*}} {nonfinite = "skip_step"}
// COUNT: nora.rmnp_step {{.*}} {nonfinite = "skip_step"}
// COUNT: %{{.*}}, %{{.*}}, %[[S3:.*]] = nora.fused_wgrad_step {{.*}} attributes {nonfinite = "skip_step"}
// COUNT: %[[A:.*]] = arith.addi %{{.*}}, %[[S1]] : i64
// COUNT: arith.addi %[[A]], %[[S3]] : i64
// Two new guards have no single count.
// SINGLEERR: error: nora-guard-nonfinite: append-single-count needs one unguarded optimizer step; @steps has 2
func.func @steps(%g: tensor<4x5xf32>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %lr: f32, %wd: f32, %dy: tensor<3x4xf32>, %x: tensor<3x5xf32>) -> (tensor<4x5xf32>, tensor<4x5xf32>, i64) {
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>
  %w2, %m2, %s = nora.rmnp_step %g, %w1, %m1, %lr, %wd {nonfinite = "skip_step"} : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32> -> i64
  %w3, %m3 = nora.fused_wgrad_step dy(%dy : tensor<3x4xf32>) x(%x : tensor<3x5xf32>) w(%w2 : tensor<4x5xf32>) m(%m2 : tensor<4x5xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g0: tensor<4x5xf32>, %w0: tensor<4x5xf32>, %m0: tensor<4x5xf32>, %lr0: f32, %wd0: f32):
    nora.yield %w0, %m0 : tensor<4x5xf32>, tensor<4x5xf32>
  }
  return %w3, %m3, %s : tensor<4x5xf32>, tensor<4x5xf32>, i64
}

// -----

// A declaration has no step and no return: it is left as it is (with
// append-count too).
// CHECK-LABEL: func.func private @declaration(tensor<2x2xf32>) -> tensor<2x2xf32>
// COUNT-LABEL: func.func private @declaration(tensor<2x2xf32>) -> tensor<2x2xf32>
func.func private @declaration(tensor<2x2xf32>) -> tensor<2x2xf32>
