// The cluster row exchange with a producer warpgroup: wgmma-wide (its CTA
// tiles are 128 x 256, both consumers on one row block) and wgmma-ws (both
// consumers on one tile).
// RUN: nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-wide row-exchange=cluster" --cse -split-input-file -verify-diagnostics | FileCheck %s
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-ws row-exchange=cluster" --cse -split-input-file 2>/dev/null | FileCheck %s --check-prefix=WS
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-ws row-exchange=cluster" -split-input-file 2>&1 >/dev/null | FileCheck %s --check-prefix=WSERR
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma row-exchange=cluster" -split-input-file 2>&1 >/dev/null | FileCheck %s --check-prefix=WGMMAERR
// wgmma-wide's slots (12 KiB with 3 statistics) take the ring's room: its
// ring may take 132 KiB, 5 stages of 32 tokens by default.
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-wide row-exchange=cluster ring-stages=3 stage-tokens=64" 2>&1 | FileCheck %s --check-prefix=RING
// RING: error: nora-fused-step-to-gpu: 3 stages of 64 tokens take 144 KiB of shared memory (at most 132 KiB with wgmma-wide and row-exchange=cluster, whose stages hold 256 columns of x, whose parked U takes 64 and whose slots 12: 11 stages of 16 tokens, 5 of 32, 2 of 64)
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-wide row-exchange=cluster ring-stages=6" 2>&1 | FileCheck %s --check-prefix=RING6
// RING6: error: nora-fused-step-to-gpu: 6 stages of 32 tokens take 144 KiB of shared memory (at most 132 KiB
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-tall row-exchange=cluster" 2>&1 | FileCheck %s --check-prefix=TALL
// TALL: error: nora-fused-step-to-gpu: row-exchange=cluster takes mainloop=auto, simt, mma-sync, wgmma, wgmma-ws or wgmma-wide (the cluster barrier needs all of a CTA's threads on one row block at each tile, and the consumers of mainloop=wgmma-tall work on two at once)

// A Nora step on 128 x 512: one row block of 4 column tiles, 2 CTA tiles
// of 256 columns, one cluster of 2 CTAs. The dynamic shared memory is the
// ring (5 x 32 tokens of 128 rows of dy and 256 columns of x: 120 KiB),
// 1 KiB of alignment, the parked U (64 KiB) and the slots,
// [buffer][consumer][stat][row]: 2 x 2 x 3 x 128 f64 (12 KiB).
// CHECK-LABEL: func.func @nora
// CHECK-NOT: gpu.memset
// CHECK: gpu.launch_func @nora_kernels::@nora_fused_step_0 clusters in (%c2, %c1, %c1) blocks in (%c2, %c1, %c1) threads in (%c384, %c1, %c1) dynamic_shared_memory_size %c201728_i32
// CHECK-NOT: nora.cooperative
// CHECK: gpu.func @nora_fused_step_0
// CHECK: memref.view {{.*}} to memref<5x32x128xbf16, #gpu.address_space<workgroup>>
// CHECK: memref.view {{.*}} to memref<5x32x256xbf16, #gpu.address_space<workgroup>>
// CHECK: %[[SLOTS:.*]] = memref.view {{.*}} to memref<2x2x3x128xf64, #gpu.address_space<workgroup>>
// The producer warpgroup: all of its threads run the CTA's tiles; thread 0
// issues them; each thread arrives for a tile once it is issued, after the
// wait of the tile before (not at the first).
// CHECK: nvvm.setmaxregister  decrease 88
// CHECK: scf.for %[[PTILE:.*]] = %[[CTA:[^ ]*]] to %c2 step %{{.*}} iter_args(
// CHECK: scf.if
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: %[[NOTFIRST:.*]] = arith.cmpi ne, %[[PTILE]], %[[CTA]] : index
// CHECK-NEXT: scf.if %[[NOTFIRST]] {
// CHECK-NEXT: nvvm.cluster.wait {aligned}
// CHECK-NEXT: }
// CHECK-NEXT: nvvm.cluster.arrive {aligned}
// After its tiles, the last one's wait (if it had one), then the exit
// barrier with the consumers.
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK: %[[ANY:.*]] = arith.cmpi ult, %[[CTA]], %c2 : index
// CHECK-NEXT: scf.if %[[ANY]] {
// CHECK-NEXT: nvvm.cluster.wait {aligned}
// CHECK-NEXT: }
// CHECK-NEXT: nvvm.cluster.arrive {aligned}
// CHECK-NEXT: nvvm.cluster.wait {aligned}
// CHECK-NEXT: } else {
// The consumers: consumer w's slots, then the cluster barrier, then column
// tile t's slots from rank t / 2, consumer t % 2.
// CHECK: nvvm.setmaxregister  increase 200
// CHECK: memref.store %{{.*}}, %[[SLOTS]][%{{.*}}, %{{.*}}, %c2, %{{.*}}] : memref<2x2x3x128xf64, #gpu.address_space<workgroup>>
// CHECK-NEXT: }
// CHECK-NEXT: nvvm.cluster.arrive {aligned}
// CHECK-NEXT: nvvm.cluster.wait {aligned}
// CHECK: scf.for %[[T:.*]] = %c0 to %c4 step %c1 iter_args(
// CHECK-NEXT: %[[RANK:.*]] = arith.divui %[[T]], %c2 : index
// CHECK-NEXT: %[[RANK32:.*]] = arith.index_cast %[[RANK]] : index to i32
// CHECK-NEXT: %[[WORKER:.*]] = arith.remui %[[T]], %c2 : index
// CHECK: nvvm.mapa %{{.*}}, %[[RANK32]] : !llvm.ptr<3> -> !llvm.ptr<7>
// CHECK-NOT: llvm.atomicrmw
// CHECK: nvvm.cluster.arrive {aligned}
// CHECK-NEXT: nvvm.cluster.wait {aligned}
// CHECK-NEXT: } {nora.independent_warpgroups}
// CHECK-NEXT: gpu.return
// wgmma-ws: 4 tiles of 128, a cluster of 4; its slots, one worker's,
// after its ring (4 x 64 tokens: 128 KiB): 6 KiB.
// WS-LABEL: func.func @nora
// WS: gpu.launch_func @nora_kernels::@nora_fused_step_0 clusters in (%c4, %c1, %c1) blocks in (%c4, %c1, %c1) threads in (%c384, %c1, %c1) dynamic_shared_memory_size %c138240_i32
// WS: memref.view {{.*}} to memref<2x1x3x128xf64, #gpu.address_space<workgroup>>
// WS: nvvm.setmaxregister  decrease 56
// WS: nvvm.cluster.arrive {aligned}
// WS: nvvm.setmaxregister  increase 184
// WS: nvvm.cluster.arrive {aligned}
// WS-NEXT: nvvm.cluster.wait {aligned}
func.func @nora(%dy: tensor<96x128xbf16>, %x: tensor<96x512xbf16>,
                %w: tensor<128x512xf32>, %m: tensor<128x512xf32>,
                %lr: f32, %wd: f32) -> (tensor<128x512xf32>, tensor<128x512xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<96x128xbf16>)
      x(%x : tensor<96x512xbf16>) w(%w : tensor<128x512xf32>)
      m(%m : tensor<128x512xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<128x512xf32>, %w0: tensor<128x512xf32>, %m0: tensor<128x512xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<128x512xf32>, tensor<128x512xf32>
    %v = nora.orth_project %u, %w0 : tensor<128x512xf32>, tensor<128x512xf32>
    %d = nora.row_normalize %v {scale = 1.0 : f32} : tensor<128x512xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x512xf32>, tensor<128x512xf32>
    nora.yield %w1, %m1 : tensor<128x512xf32>, tensor<128x512xf32>
  }
  return %wn, %mn : tensor<128x512xf32>, tensor<128x512xf32>
}

// -----

// RMNP on 128 x 384: 3 column tiles, so the second CTA tile's consumer 1
// has no tile; it still meets the cluster at the tile (the barrier counts
// every thread).
// CHECK-LABEL: func.func @odd
// CHECK: clusters in (%c2, %c1, %c1)
// CHECK: %[[INSIDE:.*]] = arith.cmpi ult, %{{.*}}, %c3 : index
// CHECK-NEXT: scf.if %[[INSIDE]] {
// CHECK: } else {
// CHECK-NEXT: nvvm.cluster.arrive {aligned}
// CHECK-NEXT: nvvm.cluster.wait {aligned}
// CHECK-NEXT: }
// WS-LABEL: func.func @odd
// WS: clusters in (%c3, %c1, %c1)
func.func @odd(%dy: tensor<96x128xbf16>, %x: tensor<96x384xbf16>,
               %w: tensor<128x384xf32>, %m: tensor<128x384xf32>,
               %lr: f32, %wd: f32) -> (tensor<128x384xf32>, tensor<128x384xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<96x128xbf16>)
      x(%x : tensor<96x384xbf16>) w(%w : tensor<128x384xf32>)
      m(%m : tensor<128x384xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<128x384xf32>, %w0: tensor<128x384xf32>, %m0: tensor<128x384xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<128x384xf32>, tensor<128x384xf32>
    %d = nora.row_normalize %u : tensor<128x384xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x384xf32>, tensor<128x384xf32>
    nora.yield %w1, %m1 : tensor<128x384xf32>, tensor<128x384xf32>
  }
  return %wn, %mn : tensor<128x384xf32>, tensor<128x384xf32>
}

// -----

// 4096 columns are 16 CTA tiles of 256 with wgmma-wide: a cluster of 16,
// the most there is; wgmma-ws would need 32.
// CHECK-LABEL: func.func @wide4096
// CHECK: clusters in (%c16, %c1, %c1)
// WSERR: error: 'nora.fused_wgrad_step' op cannot be lowered with row-exchange=cluster: 4096 columns are 32 column tiles of 128, and a row block's tiles must be one cluster of at most 16 CTAs
func.func @wide4096(%dy: tensor<16x128xbf16>, %x: tensor<16x4096xbf16>,
                    %w: tensor<128x4096xf32>, %m: tensor<128x4096xf32>,
                    %lr: f32, %wd: f32) -> (tensor<128x4096xf32>, tensor<128x4096xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<16x128xbf16>)
      x(%x : tensor<16x4096xbf16>) w(%w : tensor<128x4096xf32>)
      m(%m : tensor<128x4096xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<128x4096xf32>, %w0: tensor<128x4096xf32>, %m0: tensor<128x4096xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<128x4096xf32>, tensor<128x4096xf32>
    %d = nora.row_normalize %u : tensor<128x4096xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x4096xf32>, tensor<128x4096xf32>
    nora.yield %w1, %m1 : tensor<128x4096xf32>, tensor<128x4096xf32>
  }
  return %wn, %mn : tensor<128x4096xf32>, tensor<128x4096xf32>
}

// -----

// A guarded step: its probes and flagged-row count stay in the workspace
// (wgmma-ws: clusters of the row block's 2 column tiles, the counters and
// row_stats operands beside the tensor maps). With partial tiles wgmma
// rejects it (ptxas spilled), as wgmma-wide takes whole tiles only.
// WS-LABEL: func.func @guarded_partial
// WS: gpu.launch_func @nora_kernels::@nora_fused_step_0 clusters in (%c2, %c1, %c1) blocks in (%c4, %c1, %c1) threads in (%c384, %c1, %c1)
// WS-SAME: nora.operand_roles = ["dy", "x", "w", "m", "lr", "wd", "w_new", "m_new", "counters", "row_stats", "dy_map", "x_map"]
// WSERR-NOT: with a nonfinite guard
// WGMMAERR: error: 'nora.fused_wgrad_step' op cannot be lowered with row-exchange=cluster: with a nonfinite guard, the cluster exchange needs whole 128 x 128 tiles with mainloop=wgmma (136 x 200 has partial ones, with which ptxas spilled; mma-sync and wgmma-ws take them)
func.func @guarded_partial(%dy: tensor<16x136xbf16>, %x: tensor<16x200xbf16>,
                           %w: tensor<136x200xf32>, %m: tensor<136x200xf32>,
                           %lr: f32, %wd: f32) -> (tensor<136x200xf32>, tensor<136x200xf32>, i64) {
  // expected-error @+1 {{cannot be lowered with mainloop=wgmma-wide: it needs rows and columns that are multiples of 128}}
  %wn, %mn, %n = nora.fused_wgrad_step dy(%dy : tensor<16x136xbf16>)
      x(%x : tensor<16x200xbf16>) w(%w : tensor<136x200xf32>)
      m(%m : tensor<136x200xf32>) lr(%lr) wd(%wd) attributes {nonfinite = "skip_row"} {
  ^bb0(%g: tensor<136x200xf32>, %w0: tensor<136x200xf32>, %m0: tensor<136x200xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.95 : f32} : tensor<136x200xf32>, tensor<136x200xf32>
    %d = nora.row_normalize %u {scale = 1.0 : f32} : tensor<136x200xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<136x200xf32>, tensor<136x200xf32>
    nora.yield %w1, %m1 : tensor<136x200xf32>, tensor<136x200xf32>
  }
  return %wn, %mn, %n : tensor<136x200xf32>, tensor<136x200xf32>, i64
}

// -----

// 4352 columns are 17 CTA tiles of 256: more than a cluster holds.
func.func @wide4352(%dy: tensor<16x128xbf16>, %x: tensor<16x4352xbf16>,
                    %w: tensor<128x4352xf32>, %m: tensor<128x4352xf32>,
                    %lr: f32, %wd: f32) -> (tensor<128x4352xf32>, tensor<128x4352xf32>) {
  // expected-error @+1 {{cannot be lowered with row-exchange=cluster: 4352 columns are 34 column tiles of 128 (17 CTA tiles of 256), and a row block's tiles must be one cluster of at most 16 CTAs}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<16x128xbf16>)
      x(%x : tensor<16x4352xbf16>) w(%w : tensor<128x4352xf32>)
      m(%m : tensor<128x4352xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<128x4352xf32>, %w0: tensor<128x4352xf32>, %m0: tensor<128x4352xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<128x4352xf32>, tensor<128x4352xf32>
    %d = nora.row_normalize %u : tensor<128x4352xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x4352xf32>, tensor<128x4352xf32>
    nora.yield %w1, %m1 : tensor<128x4352xf32>, tensor<128x4352xf32>
  }
  return %wn, %mn : tensor<128x4352xf32>, tensor<128x4352xf32>
}
