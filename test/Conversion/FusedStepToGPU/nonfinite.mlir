// RUN: nora-opt %s --nora-fused-step-to-gpu --cse -split-input-file | FileCheck %s

// A guarded step (nonfinite = "skip_row"): each contributor to a row (16
// threads of the SIMT layout) writes its probe sum g * 0 (NaN for a NaN or
// Inf) to a global slot after the statistics (64 f64 + 64 x 16 probes =
// 1088), and one more counter holds the flagged rows. After the row
// block's wait the row threads sum the probes; the CTA of column tile 0
// counts the flagged rows, and a flagged row keeps W (a select) and puts M
// back over the M' it stored. A second kernel turns the count into
// `skipped` (one CTA), which the host reads back from a 0-d buffer, and
// puts the count back at 0 once every CTA has read it (a fourth counter
// counts their departures and wraps at gridDim.x - 1).
// CHECK-LABEL: func.func @skip_row
// CHECK: memref.view %{{.*}}[%c0][] : memref<8960xi8> to memref<4xi32>
// CHECK: memref.view %{{.*}}[%c256][] : memref<8960xi8> to memref<1088xf64>
// CHECK: gpu.launch_func @nora_kernels::@nora_fused_step_0
// CHECK: %[[SKIPPED:.*]] = memref.alloc() : memref<i64>
// CHECK: gpu.launch_func @nora_kernels::@nora_nonfinite_1 blocks in (%c1, %c1, %c1) threads in (%c256, %c1, %c1) args(%{{.*}} : memref<4xi32>, %{{.*}} : memref<8x16xf32>, %{{.*}} : memref<8x16xf32>, %{{.*}} : memref<8x16xf32>, %{{.*}} : memref<8x16xf32>, %[[SKIPPED]] : memref<i64>)
// CHECK-SAME: nora.operand_roles = ["counters", "w", "m", "w_new", "m_new", "skipped"], nora.persistent_tiles = 1 : i64
// CHECK: %[[T:.*]] = bufferization.to_tensor %[[SKIPPED]] restrict writable : memref<i64> to tensor<i64>
// CHECK: %[[S:.*]] = tensor.extract %[[T]][] : tensor<i64>
// CHECK: return %{{.*}}, %{{.*}}, %[[S]] : tensor<8x16xf32>, tensor<8x16xf32>, i64
// CHECK: gpu.func @nora_fused_step_0
// CHECK-SAME: memref<1x64x16xf64, #gpu.address_space<workgroup>>
// CHECK: arith.mulf %{{.*}}, %cst{{.*}} : f64
// CHECK: arith.cmpf uno
// CHECK: llvm.atomicrmw add
// CHECK: arith.cmpf one
// CHECK: arith.select
// CHECK: memref.store
// CHECK: %[[MV:.*]] = memref.load %arg3
// CHECK-NEXT: memref.store %[[MV]], %arg7
// CHECK: gpu.func @nora_nonfinite_1(%{{.*}}: memref<4xi32>, %{{.*}}: memref<8x16xf32>, %{{.*}}: memref<8x16xf32>, %{{.*}}: memref<8x16xf32>, %{{.*}}: memref<8x16xf32>, %[[OUT:.*]]: memref<i64>)
// CHECK: %[[COUNT:.*]] = memref.load %{{.*}}[%c2] : memref<4xi32>
// CHECK: %[[WIDE:.*]] = arith.extsi %[[COUNT]] : i32 to i64
// CHECK: memref.store %[[WIDE]], %[[OUT]][] : memref<i64>
// CHECK-NOT: scf.for
// CHECK: gpu.return
func.func @skip_row(%dy: tensor<4x8xf32>, %x: tensor<4x16xf32>, %w: tensor<8x16xf32>,
                    %m: tensor<8x16xf32>, %lr: f32, %wd: f32) -> (tensor<8x16xf32>, tensor<8x16xf32>, i64) {
  %wn, %mn, %k = nora.fused_wgrad_step dy(%dy : tensor<4x8xf32>) x(%x : tensor<4x16xf32>)
      w(%w : tensor<8x16xf32>) m(%m : tensor<8x16xf32>) lr(%lr) wd(%wd) attributes {nonfinite = "skip_row"} {
  ^bb0(%g: tensor<8x16xf32>, %w0: tensor<8x16xf32>, %m0: tensor<8x16xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<8x16xf32>, tensor<8x16xf32>
    %d = nora.row_normalize %u : tensor<8x16xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<8x16xf32>, tensor<8x16xf32>
    nora.yield %w1, %m1 : tensor<8x16xf32>, tensor<8x16xf32>
  }
  return %wn, %mn, %k : tensor<8x16xf32>, tensor<8x16xf32>, i64
}

// -----

// skip_step: the step's kernel only counts (no select, no M put back); the
// finish kernel, one CTA a row (persistent), writes 1 or 0 and, when a row
// was flagged, copies W and M over W' and M' row by row.
// CHECK-LABEL: func.func @skip_step
// CHECK: gpu.launch_func @nora_kernels::@nora_nonfinite_1 blocks in (%c8, %c1, %c1)
// CHECK-SAME: nora.persistent_tiles = 8 : i64
// CHECK: gpu.func @nora_fused_step_0
// CHECK: arith.cmpf uno
// CHECK-NOT: arith.cmpf one
// CHECK: gpu.func @nora_nonfinite_1
// CHECK: %[[COUNT:.*]] = memref.load %[[CNT:.*]][%c2] : memref<4xi32>
// CHECK: %[[ANY:.*]] = arith.cmpi sgt, %[[COUNT]], %c0_i32 : i32
// CHECK: gpu.barrier
// CHECK: scf.if
// CHECK: %[[LAST:.*]] = arith.subi %{{.*}}, %c1_i32 : i32
// CHECK: llvm.fence syncscope("device") release
// CHECK: %[[BEFORE:.*]] = llvm.atomicrmw uinc_wrap %{{.*}}, %[[LAST]] syncscope("device") monotonic
// CHECK: %[[ISLAST:.*]] = arith.cmpi eq, %[[BEFORE]], %[[LAST]]
// CHECK: scf.if %[[ISLAST]] {
// CHECK: llvm.fence syncscope("device") acquire
// CHECK: memref.store %c0_i32, %[[CNT]][%c2] : memref<4xi32>
// CHECK: %[[FLAG:.*]] = arith.extui %[[ANY]] : i1 to i64
// CHECK: memref.store %[[FLAG]]
// CHECK: scf.if %[[ANY]] {
// CHECK: scf.for %{{.*}} = %block_id_x to %c8 step %grid_dim_x
// CHECK: scf.for %{{.*}} = %thread_id_x to %c16 step %c256
// CHECK: %[[WV:.*]] = memref.load %arg1
// CHECK-NEXT: memref.store %[[WV]], %arg3
// CHECK: %[[MV:.*]] = memref.load %arg2
// CHECK-NEXT: memref.store %[[MV]], %arg4
func.func @skip_step(%dy: tensor<4x8xf32>, %x: tensor<4x16xf32>, %w: tensor<8x16xf32>,
                     %m: tensor<8x16xf32>, %lr: f32, %wd: f32) -> (tensor<8x16xf32>, tensor<8x16xf32>, i64) {
  %wn, %mn, %k = nora.fused_wgrad_step dy(%dy : tensor<4x8xf32>) x(%x : tensor<4x16xf32>)
      w(%w : tensor<8x16xf32>) m(%m : tensor<8x16xf32>) lr(%lr) wd(%wd) attributes {nonfinite = "skip_step"} {
  ^bb0(%g: tensor<8x16xf32>, %w0: tensor<8x16xf32>, %m0: tensor<8x16xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<8x16xf32>, tensor<8x16xf32>
    %d = nora.row_normalize %u : tensor<8x16xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<8x16xf32>, tensor<8x16xf32>
    nora.yield %w1, %m1 : tensor<8x16xf32>, tensor<8x16xf32>
  }
  return %wn, %mn, %k : tensor<8x16xf32>, tensor<8x16xf32>, i64
}
