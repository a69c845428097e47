// RUN: nora-opt %s -nora-fuse-wgrad-epilogue -split-input-file | FileCheck %s

// Form 1: nora.wgrad + the primitive Nora chain. After the pass the body holds
// the fused op and nothing else of the step.
// CHECK-LABEL: func.func @nora_wgrad
// CHECK-SAME: (%[[DY:.*]]: tensor<64x128xbf16>, %[[X:.*]]: tensor<64x96xbf16>, %[[W:.*]]: tensor<128x96xf32>, %[[M:.*]]: tensor<128x96xf32>, %[[LR:.*]]: f32, %[[WD:.*]]: f32)
// CHECK-NEXT: %[[RW:.*]], %[[RM:.*]] = nora.fused_wgrad_step dy(%[[DY]] : tensor<64x128xbf16>) x(%[[X]] : tensor<64x96xbf16>) w(%[[W]] : tensor<128x96xf32>) m(%[[M]] : tensor<128x96xf32>) lr(%[[LR]]) wd(%[[WD]]) {
// CHECK-NEXT: ^bb0(%[[G:.*]]: tensor<128x96xf32>, %[[W0:.*]]: tensor<128x96xf32>, %[[M0:.*]]: tensor<128x96xf32>, %[[LR0:.*]]: f32, %[[WD0:.*]]: f32):
// CHECK-NEXT: %[[MN:.*]], %[[U:.*]] = nora.momentum %[[M0]], %[[G]] {beta = 0.949999988 : f32, nesterov = 0.949999988 : f32}
// CHECK-NEXT: %[[V:.*]] = nora.orth_project %[[U]], %[[W0]]
// CHECK-NEXT: %[[D:.*]] = nora.row_normalize %[[V]] {scale = 1.15470052 : f32}
// CHECK-NEXT: %[[WN:.*]] = nora.apply_update %[[W0]], %[[D]], %[[LR0]], %[[WD0]]
// CHECK-NEXT: nora.yield %[[WN]], %[[MN]]
// CHECK-NEXT: }
// CHECK-NEXT: return %[[RW]], %[[RM]]
func.func @nora_wgrad(%dy: tensor<64x128xbf16>, %x: tensor<64x96xbf16>, %w: tensor<128x96xf32>, %m: tensor<128x96xf32>, %lr: f32, %wd: f32) -> (tensor<128x96xf32>, tensor<128x96xf32>) {
  %g = nora.wgrad %dy, %x : tensor<64x128xbf16>, tensor<64x96xbf16> -> tensor<128x96xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<128x96xf32>, tensor<128x96xf32>
  %v = nora.orth_project %u, %w : tensor<128x96xf32>, tensor<128x96xf32>
  %d = nora.row_normalize %v {scale = 1.1547005 : f32} : tensor<128x96xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<128x96xf32>, tensor<128x96xf32>
  return %wn, %mn : tensor<128x96xf32>, tensor<128x96xf32>
}

// -----

// nora.wgrad with acc and scale: both move to the fused op.
// CHECK-LABEL: func.func @nora_wgrad_acc
// CHECK-SAME: %[[ACC:[a-z0-9]+]]: tensor<8x4xf32>
// CHECK: nora.fused_wgrad_step dy(%{{.*}}) x(%{{.*}}) acc(%[[ACC]] : tensor<8x4xf32>) w(%{{.*}}) m(%{{.*}}) lr(%{{.*}}) wd(%{{.*}}) attributes {scale = 2.500000e-01 : f32}
// CHECK-NOT: nora.wgrad
func.func @nora_wgrad_acc(%dy: tensor<3x8xf32>, %x: tensor<3x4xf32>, %acc: tensor<8x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  %g = nora.wgrad %dy, %x acc(%acc : tensor<8x4xf32>) {scale = 0.25 : f32} : tensor<3x8xf32>, tensor<3x4xf32> -> tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u {eps = 1.0e-12 : f32} : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  return %wn, %mn : tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// Form 2: linalg.matmul reading dy transposed through indexing_maps, on a
// zero fill. The fill and the matmul disappear.
// CHECK-LABEL: func.func @linalg_matmul_transposed_a
// CHECK-SAME: (%[[DY:.*]]: tensor<16x8xf32>, %[[X:.*]]: tensor<16x4xf32>
// CHECK-NOT: linalg.
// CHECK: nora.fused_wgrad_step dy(%[[DY]] : tensor<16x8xf32>) x(%[[X]] : tensor<16x4xf32>) w(
// CHECK-NOT: acc(
// CHECK: nora.momentum
// CHECK: nora.row_normalize
// CHECK: nora.apply_update
// CHECK: nora.yield
// CHECK-NOT: linalg.
func.func @linalg_matmul_transposed_a(%dy: tensor<16x8xf32>, %x: tensor<16x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x4xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>
  %g = linalg.matmul indexing_maps = [affine_map<(i, j, k) -> (k, i)>, affine_map<(i, j, k) -> (k, j)>, affine_map<(i, j, k) -> (i, j)>]
         ins(%dy, %x : tensor<16x8xf32>, tensor<16x4xf32>) outs(%fill : tensor<8x4xf32>) -> tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u {eps = 1.0e-12 : f32, scale = 1.414 : f32} : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  return %wn, %mn : tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// linalg.matmul on an accumulator: the accumulator becomes acc.
// CHECK-LABEL: func.func @linalg_matmul_acc
// CHECK-SAME: %[[ACC:[a-z0-9]+]]: tensor<8x4xf32>
// CHECK: nora.fused_wgrad_step dy(%{{.*}} : tensor<16x8xbf16>) x(%{{.*}} : tensor<16x4xbf16>) acc(%[[ACC]] : tensor<8x4xf32>)
func.func @linalg_matmul_acc(%dy: tensor<16x8xbf16>, %x: tensor<16x4xbf16>, %acc: tensor<8x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  %g = linalg.matmul indexing_maps = [affine_map<(i, j, k) -> (k, i)>, affine_map<(i, j, k) -> (k, j)>, affine_map<(i, j, k) -> (i, j)>]
         ins(%dy, %x : tensor<16x8xbf16>, tensor<16x4xbf16>) outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.95 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  return %wn, %mn : tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// Form 3: linalg.transpose of dy feeding a plain linalg.matmul (what
// torch-mlir emits for dy.t() @ x).
// CHECK-LABEL: func.func @transpose_then_matmul
// CHECK-SAME: (%[[DY:.*]]: tensor<16x8xf32>, %[[X:.*]]: tensor<16x4xf32>
// CHECK-NOT: linalg.
// CHECK: nora.fused_wgrad_step dy(%[[DY]] : tensor<16x8xf32>) x(%[[X]] : tensor<16x4xf32>)
// CHECK-NOT: linalg.
func.func @transpose_then_matmul(%dy: tensor<16x8xf32>, %x: tensor<16x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %et = tensor.empty() : tensor<8x16xf32>
  %dyt = linalg.transpose ins(%dy : tensor<16x8xf32>) outs(%et : tensor<8x16xf32>) permutation = [1, 0]
  %e = tensor.empty() : tensor<8x4xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>
  %g = linalg.matmul ins(%dyt, %x : tensor<8x16xf32>, tensor<16x4xf32>) outs(%fill : tensor<8x4xf32>) -> tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %v = nora.orth_project %u, %w : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %v {scale = 1.414 : f32} : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  return %wn, %mn : tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// The equivalent linalg.generic forms: a transposing generic feeding a
// contraction generic.
// CHECK-LABEL: func.func @generic_transpose_then_generic_matmul
// CHECK-SAME: (%[[DY:.*]]: tensor<16x8xbf16>, %[[X:.*]]: tensor<16x4xbf16>
// CHECK-NOT: linalg.
// CHECK: nora.fused_wgrad_step dy(%[[DY]] : tensor<16x8xbf16>) x(%[[X]] : tensor<16x4xbf16>)
// CHECK-NOT: linalg.
func.func @generic_transpose_then_generic_matmul(%dy: tensor<16x8xbf16>, %x: tensor<16x4xbf16>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %et = tensor.empty() : tensor<8x16xbf16>
  %dyt = linalg.generic {indexing_maps = [affine_map<(i, j) -> (j, i)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]}
           ins(%dy : tensor<16x8xbf16>) outs(%et : tensor<8x16xbf16>) {
  ^bb0(%a: bf16, %b: bf16):
    linalg.yield %a : bf16
  } -> tensor<8x16xbf16>
  %e = tensor.empty() : tensor<8x4xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, k)>, affine_map<(i, j, k) -> (k, j)>, affine_map<(i, j, k) -> (i, j)>], iterator_types = ["parallel", "parallel", "reduction"]}
         ins(%dyt, %x : tensor<8x16xbf16>, tensor<16x4xbf16>) outs(%fill : tensor<8x4xf32>) {
  ^bb0(%a: bf16, %b: bf16, %c: f32):
    %ae = arith.extf %a : bf16 to f32
    %be = arith.extf %b : bf16 to f32
    %p = arith.mulf %ae, %be : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  } -> tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.95 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  return %wn, %mn : tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// A contraction linalg.generic that reads dy transposed directly.
// CHECK-LABEL: func.func @generic_transposed_a
// CHECK-NOT: linalg.generic
// CHECK: nora.fused_wgrad_step
func.func @generic_transposed_a(%dy: tensor<16x8xf32>, %x: tensor<16x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x4xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (k, i)>, affine_map<(i, j, k) -> (k, j)>, affine_map<(i, j, k) -> (i, j)>], iterator_types = ["parallel", "parallel", "reduction"]}
         ins(%dy, %x : tensor<16x8xf32>, tensor<16x4xf32>) outs(%fill : tensor<8x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  } -> tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.95 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  return %wn, %mn : tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// arith/math elementwise ops on tensors fuse too (gradient clipping by a
// constant, a custom transform of d), constants are cloned into the region.
// CHECK-LABEL: func.func @arith_in_chain
// CHECK: nora.fused_wgrad_step
// CHECK: ^bb0(%[[G:[a-z0-9]+]]: tensor<8x4xf32>,
// CHECK: %[[HALF:.*]] = arith.constant dense<5.000000e-01> : tensor<8x4xf32>
// CHECK: %[[GS:.*]] = arith.mulf %[[G]], %[[HALF]] : tensor<8x4xf32>
// CHECK: nora.momentum %{{.*}}, %[[GS]]
// CHECK: math.tanh
// CHECK: nora.yield
// CHECK-NOT: arith.mulf
func.func @arith_in_chain(%dy: tensor<16x8xf32>, %x: tensor<16x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  %half = arith.constant dense<0.5> : tensor<8x4xf32>
  %g = nora.wgrad %dy, %x : tensor<16x8xf32>, tensor<16x4xf32> -> tensor<8x4xf32>
  %gs = arith.mulf %g, %half : tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %gs {beta = 0.95 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u : tensor<8x4xf32>
  %dt = math.tanh %d : tensor<8x4xf32>
  %wn = nora.apply_update %w, %dt, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  return %wn, %mn : tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// Partial fusion: g is also returned. The step fuses; the wgrad stays for
// that use, so the returned g is still correct.
// CHECK-LABEL: func.func @gradient_used_outside
// CHECK: %[[G:.*]] = nora.wgrad
// CHECK-NEXT: %[[RW:.*]], %[[RM:.*]] = nora.fused_wgrad_step
// CHECK: nora.yield
// CHECK-NEXT: }
// CHECK-NEXT: return %[[RW]], %[[RM]], %[[G]]
func.func @gradient_used_outside(%dy: tensor<16x8xf32>, %x: tensor<16x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>) {
  %g = nora.wgrad %dy, %x : tensor<16x8xf32>, tensor<16x4xf32> -> tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.95 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  return %wn, %mn, %g : tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// Partial fusion: the direction d is also returned (e.g. for logging its
// norm). The ops d needs stay; apply_update does not.
// CHECK-LABEL: func.func @direction_used_outside
// CHECK: nora.wgrad
// CHECK: nora.momentum
// CHECK: %[[D:.*]] = nora.row_normalize
// CHECK-NEXT: %[[RW:.*]], %[[RM:.*]] = nora.fused_wgrad_step
// CHECK: nora.yield
// CHECK-NEXT: }
// CHECK-NEXT: return %[[RW]], %[[RM]], %[[D]]
func.func @direction_used_outside(%dy: tensor<16x8xf32>, %x: tensor<16x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>) {
  %g = nora.wgrad %dy, %x : tensor<16x8xf32>, tensor<16x4xf32> -> tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.95 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  return %wn, %mn, %d : tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// Several layers in one function: each step fuses on its own.
// CHECK-LABEL: func.func @two_layers
// CHECK-COUNT-2: nora.fused_wgrad_step
// CHECK-NOT: nora.wgrad
// CHECK-NOT: linalg.matmul
func.func @two_layers(%dy1: tensor<16x8xf32>, %x1: tensor<16x4xf32>, %w1: tensor<8x4xf32>, %m1: tensor<8x4xf32>,
                      %dy2: tensor<16x4xf32>, %x2: tensor<16x8xf32>, %w2: tensor<4x8xf32>, %m2: tensor<4x8xf32>,
                      %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x8xf32>, tensor<4x8xf32>) {
  %g1 = nora.wgrad %dy1, %x1 : tensor<16x8xf32>, tensor<16x4xf32> -> tensor<8x4xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %g2 = linalg.matmul indexing_maps = [affine_map<(i, j, k) -> (k, i)>, affine_map<(i, j, k) -> (k, j)>, affine_map<(i, j, k) -> (i, j)>]
          ins(%dy2, %x2 : tensor<16x4xf32>, tensor<16x8xf32>) outs(%fill : tensor<4x8xf32>) -> tensor<4x8xf32>
  %mn1, %u1 = nora.momentum %m1, %g1 {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %mn2, %u2 = nora.momentum %m2, %g2 {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  %v1 = nora.orth_project %u1, %w1 : tensor<8x4xf32>, tensor<8x4xf32>
  %d1 = nora.row_normalize %v1 {scale = 1.414 : f32} : tensor<8x4xf32>
  %d2 = nora.row_normalize %u2 {eps = 1.0e-12 : f32} : tensor<4x8xf32>
  %wn1 = nora.apply_update %w1, %d1, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  %wn2 = nora.apply_update %w2, %d2, %lr, %wd : tensor<4x8xf32>, tensor<4x8xf32>
  return %wn1, %mn1, %wn2, %mn2 : tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// The chain reads a value the isolated region cannot have (another tensor):
// nothing fuses.
// CHECK-LABEL: func.func @foreign_operand
// CHECK-NOT: nora.fused_wgrad_step
// CHECK: nora.wgrad
func.func @foreign_operand(%dy: tensor<16x8xf32>, %x: tensor<16x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %noise: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  %g = nora.wgrad %dy, %x : tensor<16x8xf32>, tensor<16x4xf32> -> tensor<8x4xf32>
  %gn = arith.addf %g, %noise : tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %gn {beta = 0.95 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  return %wn, %mn : tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// A matmul that is not a weight gradient (dy not transposed): untouched.
// CHECK-LABEL: func.func @plain_matmul
// CHECK-NOT: nora.fused_wgrad_step
// CHECK: linalg.matmul
func.func @plain_matmul(%a: tensor<8x16xf32>, %x: tensor<16x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x4xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>
  %g = linalg.matmul ins(%a, %x : tensor<8x16xf32>, tensor<16x4xf32>) outs(%fill : tensor<8x4xf32>) -> tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.95 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  return %wn, %mn : tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// A gradient with no optimizer chain (only returned): nothing to fuse.
// CHECK-LABEL: func.func @no_chain
// CHECK-NOT: nora.fused_wgrad_step
// CHECK: nora.wgrad
func.func @no_chain(%dy: tensor<16x8xf32>, %x: tensor<16x4xf32>) -> tensor<8x4xf32> {
  %g = nora.wgrad %dy, %x : tensor<16x8xf32>, tensor<16x4xf32> -> tensor<8x4xf32>
  return %g : tensor<8x4xf32>
}

// -----

// A guarded step: the nora.skip_nonfinite on the step's g, w, m and its
// (w_new, m_new) becomes the fused op's `nonfinite` attribute and third
// result; the region holds the chain only.
// CHECK-LABEL: func.func @nonfinite_guard
// CHECK: %[[W1:.*]], %[[M1:.*]], %[[S:.*]] = nora.fused_wgrad_step {{.*}} attributes {nonfinite = "skip_row"}
// CHECK: nora.apply_update
// CHECK-NOT: nora.skip_nonfinite
// CHECK: nora.yield
// CHECK-NOT: nora.skip_nonfinite
// CHECK: return %[[W1]], %[[M1]], %[[S]]
func.func @nonfinite_guard(%dy: tensor<16x8xf32>, %x: tensor<16x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32) -> (tensor<8x4xf32>, tensor<8x4xf32>, i64) {
  %g = nora.wgrad %dy, %x : tensor<16x8xf32>, tensor<16x4xf32> -> tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  %w1, %m1, %s = nora.skip_nonfinite %g, %w, %m, %wn, %mn {mode = "skip_row"} : tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>
  return %w1, %m1, %s : tensor<8x4xf32>, tensor<8x4xf32>, i64
}

// -----

// A guard on another gradient than the step's is not the step's guard: the
// step fuses unguarded and the guard stays.
// CHECK-LABEL: func.func @nonfinite_other_gradient
// CHECK: %[[WN:.*]], %[[MN:.*]] = nora.fused_wgrad_step
// CHECK-NOT: nonfinite
// CHECK: nora.skip_nonfinite %{{.*}}, %{{.*}}, %{{.*}}, %[[WN]], %[[MN]]
func.func @nonfinite_other_gradient(%dy: tensor<16x8xf32>, %x: tensor<16x4xf32>, %w: tensor<8x4xf32>, %m: tensor<8x4xf32>, %lr: f32, %wd: f32, %g2: tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<8x4xf32>, i64) {
  %g = nora.wgrad %dy, %x : tensor<16x8xf32>, tensor<16x4xf32> -> tensor<8x4xf32>
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32} : tensor<8x4xf32>, tensor<8x4xf32>
  %d = nora.row_normalize %u : tensor<8x4xf32>
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<8x4xf32>, tensor<8x4xf32>
  %w1, %m1, %s = nora.skip_nonfinite %g2, %w, %m, %wn, %mn {mode = "skip_row"} : tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>
  return %w1, %m1, %s : tensor<8x4xf32>, tensor<8x4xf32>, i64
}
