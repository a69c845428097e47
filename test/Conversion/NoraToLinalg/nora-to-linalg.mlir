// RUN: nora-opt %s -convert-nora-to-linalg -canonicalize -cse -split-input-file | FileCheck %s

// wgrad: loops (i, k, j), bf16 extended to f32, f32 accumulation into zeros.
// CHECK-DAG: #[[DY:.*]] = affine_map<(d0, d1, d2) -> (d1, d0)>
// CHECK-DAG: #[[X:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[G:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-LABEL: func.func @wgrad_bf16
// CHECK: %[[ZERO:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<5x7xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[DY]], #[[X]], #[[G]]], iterator_types = ["parallel", "reduction", "parallel"]}
// CHECK-SAME: ins(%{{.*}}, %{{.*}} : tensor<3x5xbf16>, tensor<3x7xbf16>) outs(%[[ZERO]] : tensor<5x7xf32>)
// CHECK: ^bb0(%[[A:.*]]: bf16, %[[B:.*]]: bf16, %[[OUT:.*]]: f32):
// CHECK: %[[AE:.*]] = arith.extf %[[A]] : bf16 to f32
// CHECK: %[[BE:.*]] = arith.extf %[[B]] : bf16 to f32
// CHECK: %[[P:.*]] = arith.mulf %[[AE]], %[[BE]] : f32
// CHECK: %[[S:.*]] = arith.addf %[[OUT]], %[[P]] : f32
// CHECK: linalg.yield %[[S]]
func.func @wgrad_bf16(%dy: tensor<3x5xbf16>, %x: tensor<3x7xbf16>) -> tensor<5x7xf32> {
  %g = nora.wgrad %dy, %x : tensor<3x5xbf16>, tensor<3x7xbf16> -> tensor<5x7xf32>
  return %g : tensor<5x7xf32>
}

// -----

// wgrad with acc and scale = 1: accumulate straight into acc.
// CHECK-LABEL: func.func @wgrad_acc
// CHECK-SAME: %[[ACC:[a-z0-9]+]]: tensor<5x7xf32>
// CHECK-NOT: linalg.fill
// CHECK: linalg.generic
// CHECK-SAME: outs(%[[ACC]] : tensor<5x7xf32>)
func.func @wgrad_acc(%dy: tensor<3x5xf32>, %x: tensor<3x7xf32>, %acc: tensor<5x7xf32>) -> tensor<5x7xf32> {
  %g = nora.wgrad %dy, %x acc(%acc : tensor<5x7xf32>) : tensor<3x5xf32>, tensor<3x7xf32> -> tensor<5x7xf32>
  return %g : tensor<5x7xf32>
}

// -----

// wgrad with scale != 1 and acc: scale the sum, then add acc.
// CHECK-LABEL: func.func @wgrad_scale_acc
// CHECK: %[[HALF:.*]] = arith.constant 5.000000e-01 : f32
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"]
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} ins(%[[SUM]], %{{.*}} :
// CHECK: %[[SCALED:.*]] = arith.mulf %{{.*}}, %[[HALF]] : f32
// CHECK: arith.addf %[[SCALED]], %{{.*}} : f32
func.func @wgrad_scale_acc(%dy: tensor<3x5xf32>, %x: tensor<3x7xf32>, %acc: tensor<5x7xf32>) -> tensor<5x7xf32> {
  %g = nora.wgrad %dy, %x acc(%acc : tensor<5x7xf32>) {scale = 0.5 : f32} : tensor<3x5xf32>, tensor<3x7xf32> -> tensor<5x7xf32>
  return %g : tensor<5x7xf32>
}

// -----

// momentum: torch's lerp form. m_new = m + 0.05 (g - m); u = m_new - (m_new - g) 0.05.
// CHECK-LABEL: func.func @momentum_nesterov
// CHECK: %[[W:.*]] = arith.constant 0.0500000119 : f32
// CHECK: linalg.generic {{.*}}outs(%{{.*}}, %{{.*}} : tensor<4x8xf32>, tensor<4x8xf32>)
// CHECK: ^bb0(%[[M:.*]]: f32, %[[G:.*]]: f32, %{{.*}}: f32, %{{.*}}: f32):
// CHECK: %[[D1:.*]] = arith.subf %[[G]], %[[M]] : f32
// CHECK: %[[T1:.*]] = arith.mulf %[[D1]], %[[W]] : f32
// CHECK: %[[MN:.*]] = arith.addf %[[M]], %[[T1]] : f32
// CHECK: %[[D2:.*]] = arith.subf %[[MN]], %[[G]] : f32
// CHECK: %[[T2:.*]] = arith.mulf %[[D2]], %[[W]] : f32
// CHECK: %[[U:.*]] = arith.subf %[[MN]], %[[T2]] : f32
// CHECK: linalg.yield %[[MN]], %[[U]]
func.func @momentum_nesterov(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %mn, %u = nora.momentum %m, %g {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  return %mn, %u : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Without Nesterov, u is m_new: one output.
// CHECK-LABEL: func.func @momentum_plain
// CHECK: %[[R:.*]] = linalg.generic {{.*}}outs(%{{.*}} : tensor<4x8xf32>)
// CHECK: return %[[R]], %[[R]]
func.func @momentum_plain(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  return %mn, %u : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// orth_project: f64 row statistics ||w||^2 and <u, w>, an f64 coefficient per
// row (0 where the denominator is 0), v formed in f64 and rounded once.
// CHECK-DAG: #[[MAT:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[ROW:.*]] = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @orth_project
// CHECK-SAME: (%[[U:.*]]: tensor<4x8xf32>, %[[W:.*]]: tensor<4x8xf32>)
// CHECK: %[[WW:.*]] = linalg.generic {indexing_maps = [#[[MAT]], #[[ROW]]], iterator_types = ["parallel", "reduction"]} ins(%[[W]] : tensor<4x8xf32>) outs(%{{.*}} : tensor<4xf64>)
// CHECK: arith.extf %{{.*}} : f32 to f64
// CHECK: %[[UW:.*]] = linalg.generic {indexing_maps = [#[[MAT]], #[[MAT]], #[[ROW]]], iterator_types = ["parallel", "reduction"]} ins(%[[U]], %[[W]] : tensor<4x8xf32>, tensor<4x8xf32>) outs(%{{.*}} : tensor<4xf64>)
// CHECK: %[[COEF:.*]] = linalg.generic {{.*}} ins(%[[WW]], %[[UW]] : tensor<4xf64>, tensor<4xf64>)
// CHECK: math.sqrt %{{.*}} : f64
// CHECK: arith.maximumf
// CHECK: arith.divf
// CHECK: arith.cmpf oeq
// CHECK: arith.select
// CHECK: linalg.generic {indexing_maps = [#[[MAT]], #[[MAT]], #[[ROW]], #[[MAT]]], iterator_types = ["parallel", "parallel"]} ins(%[[U]], %[[W]], %[[COEF]] :
// CHECK: arith.subf %{{.*}}, %{{.*}} : f64
// CHECK: arith.truncf %{{.*}} : f64 to f32
func.func @orth_project(%u: tensor<4x8xf32>, %w: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %v = nora.orth_project %u, %w : tensor<4x8xf32>, tensor<4x8xf32>
  return %v : tensor<4x8xf32>
}

// -----

// row_normalize: f64 ||v||^2, factor scale / max(||v||, eps) per row.
// CHECK-LABEL: func.func @row_normalize
// CHECK-DAG: %[[SCALE:.*]] = arith.constant 2.000000e+00 : f64
// CHECK-DAG: %[[EPS:.*]] = arith.constant 9.999999960041972E-13 : f64
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK: %[[NORM:.*]] = math.sqrt
// CHECK: %[[DEN:.*]] = arith.maximumf %[[NORM]], %[[EPS]] : f64
// CHECK: arith.divf %[[SCALE]], %[[DEN]] : f64
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK: arith.mulf %{{.*}}, %{{.*}} : f64
// CHECK: arith.truncf
func.func @row_normalize(%v: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %d = nora.row_normalize %v {eps = 1.0e-12 : f32, scale = 2.0 : f32} : tensor<4x8xf32>
  return %d : tensor<4x8xf32>
}

// -----

// apply_update: decay 1 - lr wd formed in f64 and rounded once; w decay - lr d.
// CHECK-LABEL: func.func @apply_update
// CHECK-SAME: %[[LR:[a-z0-9]+]]: f32, %[[WD:[a-z0-9]+]]: f32
// CHECK: %[[LR64:.*]] = arith.extf %[[LR]] : f32 to f64
// CHECK: %[[WD64:.*]] = arith.extf %[[WD]] : f32 to f64
// CHECK: %[[LW:.*]] = arith.mulf %[[LR64]], %[[WD64]] : f64
// CHECK: %[[DECAY64:.*]] = arith.subf %{{.*}}, %[[LW]] : f64
// CHECK: %[[DECAY:.*]] = arith.truncf %[[DECAY64]] : f64 to f32
// CHECK: %[[NEG:.*]] = arith.negf %[[LR]] : f32
// CHECK: linalg.generic
// CHECK: %[[KEPT:.*]] = arith.mulf %{{.*}}, %[[DECAY]] : f32
// CHECK: %[[STEP:.*]] = arith.mulf %[[NEG]], %{{.*}} : f32
// CHECK: arith.addf %[[KEPT]], %[[STEP]] : f32
func.func @apply_update(%w: tensor<4x8xf32>, %d: tensor<4x8xf32>, %lr: f32, %wd: f32) -> tensor<4x8xf32> {
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<4x8xf32>, tensor<4x8xf32>
  return %wn : tensor<4x8xf32>
}

// -----

// Dynamic shapes: sizes come from tensor.dim.
// CHECK-LABEL: func.func @dynamic
// CHECK: tensor.dim
// CHECK: tensor.empty(%{{.*}}) : tensor<?xf64>
// CHECK-NOT: nora.
func.func @dynamic(%v: tensor<?x?xf32>) -> tensor<?x?xf32> {
  %d = nora.row_normalize %v : tensor<?x?xf32>
  return %d : tensor<?x?xf32>
}

// -----

// The fused step lowers op by op: contraction, then the epilogue inlined.
// CHECK-LABEL: func.func @fused
// CHECK-NOT: nora.
// CHECK: iterator_types = ["parallel", "reduction", "parallel"]
// CHECK: iterator_types = ["parallel", "parallel"]
// CHECK: iterator_types = ["parallel", "reduction"]
// CHECK: return
func.func @fused(%dy: tensor<3x4xf32>, %x: tensor<3x5xf32>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %lr: f32, %wd: f32) -> (tensor<4x5xf32>, tensor<4x5xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<3x4xf32>) x(%x : tensor<3x5xf32>) w(%w : tensor<4x5xf32>) m(%m : tensor<4x5xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<4x5xf32>, %w0: tensor<4x5xf32>, %m0: tensor<4x5xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<4x5xf32>, tensor<4x5xf32>
    %d = nora.row_normalize %u : tensor<4x5xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<4x5xf32>, tensor<4x5xf32>
    nora.yield %w1, %m1 : tensor<4x5xf32>, tensor<4x5xf32>
  }
  return %wn, %mn : tensor<4x5xf32>, tensor<4x5xf32>
}

// -----

// skip_nonfinite, skip_row: a per-row probe sum_j g_ij * 0 (NaN iff the row
// holds a NaN or an Inf), the count of flagged rows, and a row select.
// CHECK-LABEL: func.func @skip_row
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]
// CHECK-SAME: ins(%{{.*}} : tensor<4x5xf32>) outs(%{{.*}} : tensor<4xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: arith.cmpf uno
// CHECK: iterator_types = ["reduction"]
// CHECK: arith.extui
// CHECK: arith.addi
// CHECK: %[[N:.*]] = tensor.extract
// CHECK: %[[W:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<4xi1>, tensor<4x5xf32>, tensor<4x5xf32>)
// CHECK: arith.select
// CHECK: return %[[W]], %{{.*}}, %[[N]]
func.func @skip_row(%g: tensor<4x5xf32>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %wn: tensor<4x5xf32>, %mn: tensor<4x5xf32>) -> (tensor<4x5xf32>, tensor<4x5xf32>, i64) {
  %w1, %m1, %s = nora.skip_nonfinite %g, %w, %m, %wn, %mn {mode = "skip_row"} : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>
  return %w1, %m1, %s : tensor<4x5xf32>, tensor<4x5xf32>, i64
}

// -----

// skip_step: W and M are copied over the updated tensors only when a row is
// flagged (scf.if), so the common path pays no copy.
// CHECK-LABEL: func.func @skip_step
// CHECK-SAME: (%{{.*}}: tensor<4x5xf32>, %[[W:.*]]: tensor<4x5xf32>, %[[M:.*]]: tensor<4x5xf32>, %[[WN:.*]]: tensor<4x5xf32>, %[[MN:.*]]: tensor<4x5xf32>)
// CHECK: %[[ANY:.*]] = arith.cmpi ugt
// CHECK: %[[R:.*]]:2 = scf.if %[[ANY]]
// CHECK: linalg.copy ins(%[[W]] : tensor<4x5xf32>) outs(%[[WN]] : tensor<4x5xf32>)
// CHECK: linalg.copy ins(%[[M]] : tensor<4x5xf32>) outs(%[[MN]] : tensor<4x5xf32>)
// CHECK: } else {
// CHECK: scf.yield %[[WN]], %[[MN]]
// CHECK: %[[S:.*]] = arith.extui %[[ANY]] : i1 to i64
// CHECK: return %[[R]]#0, %[[R]]#1, %[[S]]
func.func @skip_step(%g: tensor<4x5xf32>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %wn: tensor<4x5xf32>, %mn: tensor<4x5xf32>) -> (tensor<4x5xf32>, tensor<4x5xf32>, i64) {
  %w1, %m1, %s = nora.skip_nonfinite %g, %w, %m, %wn, %mn {mode = "skip_step"} : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>
  return %w1, %m1, %s : tensor<4x5xf32>, tensor<4x5xf32>, i64
}
