// RUN: nora-opt %s -nora-fused-step-to-panels=rows-per-panel=48 -split-input-file | FileCheck %s
// RUN: not nora-opt %s -nora-fused-step-to-panels=rows-per-panel=-6 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: rows-per-panel must be positive (or 0 for automatic), got -6

// bf16 inputs are extended to f32 once, before the loop; each panel computes
// its rows of g and runs the chain on them; W' and M' panels are inserted.
// CHECK-DAG: #[[PACK:.*]] = affine_map<(d0, d1) -> (d1 floordiv 16, d0, d1 mod 16)>
// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[DY:.*]]: tensor<64x100xbf16>, %[[X:.*]]: tensor<64x24xbf16>, %[[W:.*]]: tensor<100x24xf32>, %[[M:.*]]: tensor<100x24xf32>, %[[LR:.*]]: f32, %[[WD:.*]]: f32)
// CHECK: %[[DYF:.*]] = linalg.generic {{.*}} ins(%[[DY]] : tensor<64x100xbf16>) outs(%{{.*}} : tensor<64x100xf32>)
// CHECK: %[[XF:.*]] = linalg.generic {{.*}} ins(%[[X]] : tensor<64x24xbf16>) outs(%{{.*}} : tensor<64x24xf32>)
// x is packed once as ceil(24/16) = 2 tiles of 64 x 16.
// CHECK: %[[XZ:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<2x64x16xf32>)
// CHECK: %[[XP:.*]] = linalg.generic {indexing_maps = [#{{.*}}, #[[PACK]]], iterator_types = ["parallel", "parallel"]} ins(%[[XF]] : tensor<64x24xf32>) outs(%[[XZ]] : tensor<2x64x16xf32>)
// CHECK: %[[ROWS:.*]] = tensor.dim %[[W]], %c0
// CHECK: %[[BM:.*]] = arith.constant 48 : index
// CHECK: %[[NP:.*]] = arith.ceildivui %[[ROWS]], %[[BM]] : index
// CHECK: %[[R:.*]]:2 = scf.forall (%[[P:.*]]) in (%[[NP]]) shared_outs(%[[WO:.*]] = %{{.*}}, %[[MO:.*]] = %{{.*}}) -> (tensor<100x24xf32>, tensor<100x24xf32>)
// CHECK: %[[R0:.*]] = arith.muli %[[P]], %[[BM]] : index
// CHECK: %[[LEFT:.*]] = arith.subi %[[ROWS]], %[[R0]] : index
// CHECK: %[[N:.*]] = arith.minsi %[[BM]], %[[LEFT]] : index
// CHECK: %[[DYP:.*]] = tensor.extract_slice %[[DYF]][0, %[[R0]]] [%{{.*}}, %[[N]]] [1, 1]
// CHECK: %[[GZ:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<?x24xf32>)
// CHECK: %[[G:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"], library_call = "nora_wgrad_packed_f32"} ins(%[[DYP]], %[[XP]] : tensor<?x?xf32>, tensor<2x64x16xf32>) outs(%[[GZ]] : tensor<?x24xf32>)
// CHECK: %[[WP:.*]] = tensor.extract_slice %[[W]][%[[R0]], 0] [%[[N]], 24] [1, 1] : tensor<100x24xf32> to tensor<?x24xf32>
// CHECK: %[[MP:.*]] = tensor.extract_slice %[[M]][%[[R0]], 0] [%[[N]], 24] [1, 1] : tensor<100x24xf32> to tensor<?x24xf32>
// CHECK: %[[MN:.*]], %[[U:.*]] = nora.momentum %[[MP]], %[[G]] {{.*}} : tensor<?x24xf32>, tensor<?x24xf32>
// CHECK: %[[V:.*]] = nora.orth_project %[[U]], %[[WP]] : tensor<?x24xf32>, tensor<?x24xf32>
// CHECK: %[[D:.*]] = nora.row_normalize %[[V]] {{.*}} : tensor<?x24xf32>
// CHECK: %[[WN:.*]] = nora.apply_update %[[WP]], %[[D]], %[[LR]], %[[WD]] : tensor<?x24xf32>, tensor<?x24xf32>
// CHECK: scf.forall.in_parallel {
// CHECK-NEXT: tensor.parallel_insert_slice %[[WN]] into %[[WO]][%[[R0]], 0] [%[[N]], 24] [1, 1]
// CHECK-NEXT: tensor.parallel_insert_slice %[[MN]] into %[[MO]][%[[R0]], 0] [%[[N]], 24] [1, 1]
// CHECK: return %[[R]]#0, %[[R]]#1
func.func @step(%dy: tensor<64x100xbf16>, %x: tensor<64x24xbf16>, %w: tensor<100x24xf32>, %m: tensor<100x24xf32>, %lr: f32, %wd: f32) -> (tensor<100x24xf32>, tensor<100x24xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<64x100xbf16>) x(%x : tensor<64x24xbf16>) w(%w : tensor<100x24xf32>) m(%m : tensor<100x24xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<100x24xf32>, %w0: tensor<100x24xf32>, %m0: tensor<100x24xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<100x24xf32>, tensor<100x24xf32>
    %v = nora.orth_project %u, %w0 : tensor<100x24xf32>, tensor<100x24xf32>
    %d = nora.row_normalize %v {scale = 2.0 : f32} : tensor<100x24xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<100x24xf32>, tensor<100x24xf32>
    nora.yield %w1, %m1 : tensor<100x24xf32>, tensor<100x24xf32>
  }
  return %wn, %mn : tensor<100x24xf32>, tensor<100x24xf32>
}

// -----

// acc is sliced per panel and passed to the panel's wgrad with the scale;
// a matrix constant of the chain is sliced to the panel too.
// CHECK-LABEL: func.func @acc_and_constant
// CHECK-SAME: %[[ACC:[a-z0-9]+]]: tensor<12x8xf32>
// CHECK: scf.forall
// CHECK: %[[ACCP:.*]] = tensor.extract_slice %[[ACC]][%{{.*}}, 0] [%{{.*}}, 8] [1, 1]
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}}library_call = "nora_wgrad_packed_f32"
// CHECK: linalg.generic {{.*}} ins(%[[SUM]], %[[ACCP]] : tensor<?x8xf32>, tensor<?x8xf32>)
// CHECK: arith.constant 5.000000e-01 : f32
// CHECK: %[[C:.*]] = arith.constant dense<2.000000e+00> : tensor<12x8xf32>
// CHECK: %[[CP:.*]] = tensor.extract_slice %[[C]][%{{.*}}, 0] [%{{.*}}, 8] [1, 1]
// CHECK: arith.mulf %{{.*}}, %[[CP]] : tensor<?x8xf32>
func.func @acc_and_constant(%dy: tensor<5x12xf32>, %x: tensor<5x8xf32>, %acc: tensor<12x8xf32>, %w: tensor<12x8xf32>, %m: tensor<12x8xf32>, %lr: f32, %wd: f32) -> (tensor<12x8xf32>, tensor<12x8xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<5x12xf32>) x(%x : tensor<5x8xf32>) acc(%acc : tensor<12x8xf32>) w(%w : tensor<12x8xf32>) m(%m : tensor<12x8xf32>) lr(%lr) wd(%wd) attributes {scale = 0.5 : f32} {
  ^bb0(%g: tensor<12x8xf32>, %w0: tensor<12x8xf32>, %m0: tensor<12x8xf32>, %lr0: f32, %wd0: f32):
    %two = arith.constant dense<2.0> : tensor<12x8xf32>
    %g2 = arith.mulf %g, %two : tensor<12x8xf32>
    %m1, %u = nora.momentum %m0, %g2 {beta = 0.9 : f32} : tensor<12x8xf32>, tensor<12x8xf32>
    %d = nora.row_normalize %u : tensor<12x8xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<12x8xf32>, tensor<12x8xf32>
    nora.yield %w1, %m1 : tensor<12x8xf32>, tensor<12x8xf32>
  }
  return %wn, %mn : tensor<12x8xf32>, tensor<12x8xf32>
}

// -----

// A guarded step: each panel flags its non-finite gradient rows and writes
// its count into a per-panel slot (a third shared_out); skip_row selects the
// kept rows in the panel. After the loop, the step's count is the sum.
// CHECK-LABEL: func.func @nonfinite_row
// CHECK: %[[F:.*]]:3 = scf.forall (%[[P:.*]]) in (%{{.*}}) shared_outs(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %[[C:.*]] = %{{.*}}) -> (tensor<100x24xf32>, tensor<100x24xf32>, tensor<?xi64>)
// CHECK: nora.apply_update
// CHECK: arith.cmpf uno
// CHECK: arith.select
// CHECK: arith.select
// CHECK: %[[N:.*]] = tensor.from_elements %{{.*}} : tensor<1xi64>
// CHECK: scf.forall.in_parallel
// CHECK: tensor.parallel_insert_slice %[[N]] into %[[C]][%[[P]]] [1] [1]
// CHECK: linalg.generic {{.*}} ins(%[[F]]#2 : tensor<?xi64>)
// CHECK: %[[T:.*]] = tensor.extract
// CHECK: return %[[F]]#0, %[[F]]#1, %[[T]]
func.func @nonfinite_row(%dy: tensor<64x100xf32>, %x: tensor<64x24xf32>, %w: tensor<100x24xf32>, %m: tensor<100x24xf32>, %lr: f32, %wd: f32) -> (tensor<100x24xf32>, tensor<100x24xf32>, i64) {
  %wn, %mn, %s = nora.fused_wgrad_step dy(%dy : tensor<64x100xf32>) x(%x : tensor<64x24xf32>) w(%w : tensor<100x24xf32>) m(%m : tensor<100x24xf32>) lr(%lr) wd(%wd) attributes {nonfinite = "skip_row"} {
  ^bb0(%g: tensor<100x24xf32>, %w0: tensor<100x24xf32>, %m0: tensor<100x24xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<100x24xf32>, tensor<100x24xf32>
    %w1 = nora.apply_update %w0, %u, %lr0, %wd0 : tensor<100x24xf32>, tensor<100x24xf32>
    nora.yield %w1, %m1 : tensor<100x24xf32>, tensor<100x24xf32>
  }
  return %wn, %mn, %s : tensor<100x24xf32>, tensor<100x24xf32>, i64
}

// -----

// skip_step: panels write W' and M' unguarded; after the loop a step with
// any flagged row copies W and M over them.
// CHECK-LABEL: func.func @nonfinite_step
// CHECK-SAME: %[[W:[^:]*]]: tensor<100x24xf32>, %[[M:[^:]*]]: tensor<100x24xf32>, %{{[^:]*}}: f32
// CHECK: %[[F:.*]]:3 = scf.forall
// CHECK-NOT: arith.select
// CHECK: scf.forall.in_parallel
// CHECK: %[[ANY:.*]] = arith.cmpi ugt
// CHECK: scf.if %[[ANY]]
// CHECK: linalg.copy ins(%[[W]] : tensor<100x24xf32>) outs(%[[F]]#0 : tensor<100x24xf32>)
// CHECK: linalg.copy ins(%[[M]] : tensor<100x24xf32>) outs(%[[F]]#1 : tensor<100x24xf32>)
func.func @nonfinite_step(%dy: tensor<64x100xf32>, %x: tensor<64x24xf32>, %w: tensor<100x24xf32>, %m: tensor<100x24xf32>, %lr: f32, %wd: f32) -> (tensor<100x24xf32>, tensor<100x24xf32>, i64) {
  %wn, %mn, %s = nora.fused_wgrad_step dy(%dy : tensor<64x100xf32>) x(%x : tensor<64x24xf32>) w(%w : tensor<100x24xf32>) m(%m : tensor<100x24xf32>) lr(%lr) wd(%wd) attributes {nonfinite = "skip_step"} {
  ^bb0(%g: tensor<100x24xf32>, %w0: tensor<100x24xf32>, %m0: tensor<100x24xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<100x24xf32>, tensor<100x24xf32>
    %w1 = nora.apply_update %w0, %u, %lr0, %wd0 : tensor<100x24xf32>, tensor<100x24xf32>
    nora.yield %w1, %m1 : tensor<100x24xf32>, tensor<100x24xf32>
  }
  return %wn, %mn, %s : tensor<100x24xf32>, tensor<100x24xf32>, i64
}
