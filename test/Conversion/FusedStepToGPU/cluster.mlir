// RUN: nora-opt %s --nora-fused-step-to-gpu=row-exchange=cluster --cse -split-input-file -verify-diagnostics | FileCheck %s
// RUN: nora-opt %s "--nora-fused-step-to-gpu=row-exchange=cluster mainloop=wgmma" --cse -split-input-file -verify-diagnostics | FileCheck %s --check-prefix=WGMMA
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=row-exchange=cluster mainloop=wgmma-pingpong" -split-input-file 2>&1 | FileCheck %s --check-prefix=PINGPONG
// RUN: not nora-opt %s --nora-fused-step-to-gpu=row-exchange=global -split-input-file 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// PINGPONG: nora-fused-step-to-gpu: row-exchange=cluster takes mainloop=auto, simt, mma-sync, wgmma, wgmma-ws or wgmma-wide (the cluster barrier needs all of a CTA's threads on one row block at each tile, and the consumers of mainloop=wgmma-pingpong work on two at once)
// UNKNOWN: nora-fused-step-to-gpu: unknown row-exchange 'global' (expected workspace or cluster)

// The cluster row exchange: a Nora step on a 256 x 384 weight, 2 row
// blocks of 3 column tiles of 128 (mma.sync). Each row block's 3 CTAs are a
// thread-block cluster: the launch has `clusters in (3, 1, 1)`, is not
// cooperative and has no workspace (no counters, no statistics slots in
// global memory); each CTA keeps its slots, 2 buffers x 3 stats x 128 rows
// of f64 (6144 bytes; [buffer][worker][stat][row], one worker), in its
// dynamic shared memory.

// CHECK-LABEL: func.func @nora
// CHECK-NOT: nora.workspace
// CHECK-NOT: gpu.memset
// CHECK: gpu.launch_func @nora_kernels::@nora_fused_step_0 clusters in (%[[C3:.*]], %[[C1:.*]], %[[C1]]) blocks in (%{{.*}}, %[[C1]], %[[C1]]) threads in (%{{.*}}, %[[C1]], %[[C1]]) dynamic_shared_memory_size %c6144_i32
// CHECK-SAME: args(%{{.*}} : memref<8x256xbf16>, %{{.*}} : memref<8x384xbf16>, %{{.*}} : memref<256x384xf32>, %{{.*}} : memref<256x384xf32>, %{{.*}} : f32, %{{.*}} : f32, %{{.*}} : memref<256x384xf32>, %{{.*}} : memref<256x384xf32>)
// CHECK-SAME: {nora.operand_roles = ["dy", "x", "w", "m", "lr", "wd", "w_new", "m_new"], nora.persistent_tiles = 6 : i64}
// CHECK-NOT: nora.cooperative

// The kernel has no counter or statistics argument; mma.sync's cap of
// 255 registers.
// CHECK: gpu.func @nora_fused_step_0(%{{[^:]*}}: memref<8x256xbf16>, %{{[^:]*}}: memref<8x384xbf16>, %{{[^:]*}}: memref<256x384xf32>, %{{[^:]*}}: memref<256x384xf32>, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: memref<256x384xf32>, %{{[^:]*}}: memref<256x384xf32>) workgroup(
// CHECK-SAME: nvvm.maxnreg = 255
// CHECK: %[[DYN:.*]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// CHECK: %[[SLOTS:.*]] = memref.view %[[DYN]][%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<2x1x3x128xf64, #gpu.address_space<workgroup>>
// CHECK: scf.for %[[TILE:.*]] = %{{.*}} to %{{.*}} step %[[GRID:[^ ]*]] {
// CHECK: %[[RB:.*]] = arith.divui %[[TILE]], %[[C3]]
// The row thread's slot goes to this CTA's buffer (rb / clusters) % 2.
// CHECK: %[[CLUSTERS:.*]] = arith.divui %[[GRID]], %[[C3]]
// CHECK: %[[K:.*]] = arith.divui %[[RB]], %[[CLUSTERS]]
// CHECK: %[[BUF:.*]] = arith.remui %[[K]], %{{.*}}
// CHECK: memref.store %{{.*}}, %[[SLOTS]][%[[BUF]], %{{.*}}, %{{.*}}, %{{.*}}] : memref<2x1x3x128xf64, #gpu.address_space<workgroup>>
// The cluster barrier (every thread: arrive releases, wait acquires), then
// the 3 ranks' slots of the row, in column tile order, through mapa.
// CHECK: nvvm.cluster.arrive {aligned}
// CHECK-NEXT: nvvm.cluster.wait {aligned}
// CHECK: %[[BASE:.*]] = memref.extract_aligned_pointer_as_index %[[SLOTS]]
// CHECK: scf.for %[[CT:.*]] = %{{.*}} to %[[C3]] step %{{.*}} iter_args(
// CHECK: %[[RANK:.*]] = arith.index_cast %[[CT]] : index to i32
// CHECK: %[[LOCAL:.*]] = llvm.inttoptr %{{.*}} : i64 to !llvm.ptr<3>
// CHECK: %[[REMOTE:.*]] = nvvm.mapa %[[LOCAL]], %[[RANK]] : !llvm.ptr<3> -> !llvm.ptr<7>
// CHECK: llvm.load %[[REMOTE]] {alignment = 8 : i64} : !llvm.ptr<7> -> f64
// No counters, no grid barrier, no streaming phase: after the last tile,
// one more cluster barrier, so that no CTA leaves while the others still
// read its slots.
// CHECK-NOT: llvm.atomicrmw
// CHECK: }
// CHECK: nvvm.cluster.arrive {aligned}
// CHECK-NEXT: nvvm.cluster.wait {aligned}
// CHECK-NEXT: gpu.return
func.func @nora(%dy: tensor<8x256xbf16>, %x: tensor<8x384xbf16>,
                %w: tensor<256x384xf32>, %m: tensor<256x384xf32>,
                %lr: f32, %wd: f32) -> (tensor<256x384xf32>, tensor<256x384xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<8x256xbf16>)
      x(%x : tensor<8x384xbf16>) w(%w : tensor<256x384xf32>)
      m(%m : tensor<256x384xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<256x384xf32>, %w0: tensor<256x384xf32>, %m0: tensor<256x384xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<256x384xf32>, tensor<256x384xf32>
    %v = nora.orth_project %u, %w0 : tensor<256x384xf32>, tensor<256x384xf32>
    %d = nora.row_normalize %v {scale = 1.0 : f32} : tensor<256x384xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<256x384xf32>, tensor<256x384xf32>
    nora.yield %w1, %m1 : tensor<256x384xf32>, tensor<256x384xf32>
  }
  return %wn, %mn : tensor<256x384xf32>, tensor<256x384xf32>
}

// -----

// RMNP (one statistic: 2 x 1 x 128 f64, 2048 bytes); with the wgmma
// mainloop the workspace holds only the tensor maps of dy and x.

// CHECK-LABEL: func.func @rmnp_wgmma_free
// CHECK-NOT: nora.workspace
// CHECK: gpu.launch_func @nora_kernels::@nora_fused_step_0 clusters in (%c2, %c1, %c1)
// CHECK-SAME: dynamic_shared_memory_size %c2048_i32
// WGMMA-LABEL: func.func @rmnp_wgmma_free
// WGMMA: %[[MAPS:.*]] = memref.alloc() {nora.workspace} : memref<256xi8>
// WGMMA-NOT: gpu.memset
// WGMMA: gpu.launch_func @nora_kernels::@nora_fused_step_0 clusters in (%c2, %c1, %c1)
// WGMMA-SAME: dynamic_shared_memory_size %c2048_i32
// WGMMA-SAME: nora.operand_roles = ["dy", "x", "w", "m", "lr", "wd", "w_new", "m_new", "dy_map", "x_map"]
// WGMMA-SAME: nora.tensor_maps
func.func @rmnp_wgmma_free(%dy: tensor<16x128xbf16>, %x: tensor<16x256xbf16>,
                           %w: tensor<128x256xf32>, %m: tensor<128x256xf32>,
                           %lr: f32, %wd: f32) -> (tensor<128x256xf32>, tensor<128x256xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<16x128xbf16>)
      x(%x : tensor<16x256xbf16>) w(%w : tensor<128x256xf32>)
      m(%m : tensor<128x256xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<128x256xf32>, %w0: tensor<128x256xf32>, %m0: tensor<128x256xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.95 : f32} : tensor<128x256xf32>, tensor<128x256xf32>
    %d = nora.row_normalize %u {scale = 1.0 : f32} : tensor<128x256xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x256xf32>, tensor<128x256xf32>
    nora.yield %w1, %m1 : tensor<128x256xf32>, tensor<128x256xf32>
  }
  return %wn, %mn : tensor<128x256xf32>, tensor<128x256xf32>
}

// -----

// 2176 columns are 17 column tiles of 128: more than a cluster holds.
func.func @too_wide(%dy: tensor<8x128xbf16>, %x: tensor<8x2176xbf16>,
                    %w: tensor<128x2176xf32>, %m: tensor<128x2176xf32>,
                    %lr: f32, %wd: f32) -> (tensor<128x2176xf32>, tensor<128x2176xf32>) {
  // expected-error @+1 {{cannot be lowered with row-exchange=cluster: 2176 columns are 17 column tiles of 128, and a row block's tiles must be one cluster of at most 16 CTAs}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<8x128xbf16>)
      x(%x : tensor<8x2176xbf16>) w(%w : tensor<128x2176xf32>)
      m(%m : tensor<128x2176xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<128x2176xf32>, %w0: tensor<128x2176xf32>, %m0: tensor<128x2176xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.95 : f32} : tensor<128x2176xf32>, tensor<128x2176xf32>
    %d = nora.row_normalize %u {scale = 1.0 : f32} : tensor<128x2176xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x2176xf32>, tensor<128x2176xf32>
    nora.yield %w1, %m1 : tensor<128x2176xf32>, tensor<128x2176xf32>
  }
  return %wn, %mn : tensor<128x2176xf32>, tensor<128x2176xf32>
}

// -----

// A guarded step keeps its probes and flagged-row count in the workspace:
// 4 counters (of which the count and the finish kernel's departures are
// used; zero once) and the probes, 2 column tiles x 128 rows x 4
// contributors of f64, but no statistics slots. The count's atomic add
// comes after the cluster barrier, in the CTA of column tile 0.
// CHECK-LABEL: func.func @guarded
// CHECK: %[[WS:.*]] = memref.alloc() {nora.workspace} : memref<8448xi8>
// CHECK: %[[COUNTERS:.*]] = memref.view %[[WS]][%{{.*}}][] : memref<8448xi8> to memref<4xi32>
// CHECK: memref.view %[[WS]][%{{.*}}][] : memref<8448xi8> to memref<1024xf64>
// CHECK: gpu.memset %[[COUNTERS]], %{{.*}} : memref<4xi32>, i32 {nora.zero_once}
// CHECK: gpu.launch_func @nora_kernels::@nora_fused_step_0 clusters in (%c2, %c1, %c1) blocks in (%c2, %c1, %c1) threads in (%c256, %c1, %c1) dynamic_shared_memory_size %c2048_i32
// CHECK-NOT: nora.cooperative
// CHECK: gpu.launch_func @nora_kernels::@nora_nonfinite_1
// CHECK: gpu.func @nora_fused_step_0({{.*}}, %{{[^:]*}}: memref<4xi32>, %{{[^:]*}}: memref<1024xf64>)
// CHECK: nvvm.cluster.arrive {aligned}
// CHECK-NEXT: nvvm.cluster.wait {aligned}
// CHECK: llvm.atomicrmw add %{{.*}}, %c1_i32 syncscope("device") monotonic : !llvm.ptr, i32
// CHECK: gpu.func @nora_nonfinite_1
func.func @guarded(%dy: tensor<8x128xbf16>, %x: tensor<8x256xbf16>,
                   %w: tensor<128x256xf32>, %m: tensor<128x256xf32>,
                   %lr: f32, %wd: f32) -> (tensor<128x256xf32>, tensor<128x256xf32>, i64) {
  %wn, %mn, %n = nora.fused_wgrad_step dy(%dy : tensor<8x128xbf16>)
      x(%x : tensor<8x256xbf16>) w(%w : tensor<128x256xf32>)
      m(%m : tensor<128x256xf32>) lr(%lr) wd(%wd) attributes {nonfinite = "skip_row"} {
  ^bb0(%g: tensor<128x256xf32>, %w0: tensor<128x256xf32>, %m0: tensor<128x256xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.95 : f32} : tensor<128x256xf32>, tensor<128x256xf32>
    %d = nora.row_normalize %u {scale = 1.0 : f32} : tensor<128x256xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x256xf32>, tensor<128x256xf32>
    nora.yield %w1, %m1 : tensor<128x256xf32>, tensor<128x256xf32>
  }
  return %wn, %mn, %n : tensor<128x256xf32>, tensor<128x256xf32>, i64
}
