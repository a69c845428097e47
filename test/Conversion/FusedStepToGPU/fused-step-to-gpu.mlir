// RUN: nora-opt %s --nora-fused-step-to-gpu --cse -split-input-file | FileCheck %s
// RUN: nora-opt %s --nora-fused-step-to-gpu=mainloop=simt --cse -split-input-file | FileCheck %s --check-prefix=SIMT
// RUN: not nora-opt %s --nora-fused-step-to-gpu=mainloop=wgmma --cse -split-input-file 2>/dev/null | FileCheck %s --check-prefix=WGMMA
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-ws stage-tokens=16" --cse -split-input-file 2>/dev/null | FileCheck %s --check-prefix=WSPEC
// RUN: not nora-opt %s --nora-fused-step-to-gpu=mainloop=wgmma-ws --cse -split-input-file 2>/dev/null | FileCheck %s --check-prefix=WS48
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-ws ring-stages=8 stage-tokens=16" --cse -split-input-file 2>/dev/null | FileCheck %s --check-prefix=RING8
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-pingpong stage-tokens=16" --cse -split-input-file 2>/dev/null | FileCheck %s --check-prefix=PP
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-tall stage-tokens=16" --cse -split-input-file 2>/dev/null | FileCheck %s --check-prefix=TALL
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-wide stage-tokens=16" --cse -split-input-file 2>/dev/null | FileCheck %s --check-prefix=WIDE
// RUN: nora-opt %s "--nora-fused-step-to-gpu=allow-tf32=1" --cse -split-input-file | FileCheck %s --check-prefix=TF32
// RUN: nora-opt %s "--nora-fused-step-to-gpu=l2-prefetch-tokens=16" --cse -split-input-file | FileCheck %s --check-prefix=PF16
// RUN: nora-opt %s "--nora-fused-step-to-gpu=l2-prefetch-tokens=0" --cse -split-input-file | FileCheck %s --check-prefix=NOPF
// NOPF-NOT: prefetch.global.L2

// A Nora step (momentum with Nesterov, orth_project, row_normalize,
// apply_update) on a 70 x 100 weight: 2 row blocks x 2 column tiles of 64.
// The host launches one persistent, cooperative kernel on buffers; the
// workspace holds 3 counters (2 row blocks + the grid barrier), zeroed, then
// 2 * 2 * 3 stats * 64 rows f64 slots at byte 256.

// CHECK: module attributes {gpu.container_module}
// CHECK-LABEL: func.func @nora
// CHECK-SAME: (%[[DY:.*]]: tensor<8x70xbf16>, %[[X:.*]]: tensor<8x100xbf16>, %[[W:.*]]: tensor<70x100xf32>, %[[M:.*]]: tensor<70x100xf32>, %[[LR:.*]]: f32, %[[WD:.*]]: f32)
// CHECK-DAG: %[[DYB:.*]] = bufferization.to_buffer %[[DY]] read_only : tensor<8x70xbf16> to memref<8x70xbf16>
// CHECK-DAG: %[[XB:.*]] = bufferization.to_buffer %[[X]] read_only
// CHECK-DAG: %[[WB:.*]] = bufferization.to_buffer %[[W]] read_only
// CHECK-DAG: %[[MB:.*]] = bufferization.to_buffer %[[M]] read_only
// CHECK: %[[WN:.*]] = memref.alloc() : memref<70x100xf32>
// CHECK: %[[MN:.*]] = memref.alloc() : memref<70x100xf32>
// CHECK: %[[WS:.*]] = memref.alloc() {nora.workspace} : memref<6400xi8>
// CHECK: %[[CNT:.*]] = memref.view %[[WS]][%{{.*}}][] : memref<6400xi8> to memref<3xi32>
// CHECK: %[[ST:.*]] = memref.view %[[WS]][%{{.*}}][] : memref<6400xi8> to memref<768xf64>
// Only the counters are zeroed (every slot is written before it is read),
// and only when the runtime allocates the workspace: the kernel leaves them
// at 0.
// CHECK: gpu.memset %[[CNT]], %{{.*}} : memref<3xi32>, i32 {nora.zero_once}
// CHECK: gpu.launch_func @nora_kernels::@nora_fused_step_0
// CHECK-SAME: args(%[[DYB]] : memref<8x70xbf16>, %[[XB]] : memref<8x100xbf16>, %[[WB]] : memref<70x100xf32>, %[[MB]] : memref<70x100xf32>, %[[LR]] : f32, %[[WD]] : f32, %[[WN]] : memref<70x100xf32>, %[[MN]] : memref<70x100xf32>, %[[CNT]] : memref<3xi32>, %[[ST]] : memref<768xf64>)
// CHECK-SAME: {nora.cooperative, nora.operand_roles = ["dy", "x", "w", "m", "lr", "wd", "w_new", "m_new", "counters", "row_stats"], nora.persistent_tiles = 4 : i64}
// CHECK: %[[WT:.*]] = bufferization.to_tensor %[[WN]] restrict writable
// CHECK: %[[MT:.*]] = bufferization.to_tensor %[[MN]] restrict writable
// CHECK: return %[[WT]], %[[MT]]

// The kernel: 256 threads; shared memory for two 16 x 64 stages, the f64
// partial row statistics (3 x 64 rows x 16 threads) and the row coefficients;
// 70 x 100 leaves partial tiles, which get a cap of 168 registers.
// CHECK: gpu.module @nora_kernels
// CHECK: gpu.func @nora_fused_step_0(%{{.*}}: memref<8x70xbf16>, %{{.*}}: memref<8x100xbf16>, %{{.*}}: memref<70x100xf32>, %{{.*}}: memref<70x100xf32>, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: memref<70x100xf32>, %{{.*}}: memref<70x100xf32>, %{{.*}}: memref<3xi32>, %{{.*}}: memref<768xf64>)
// CHECK-SAME: workgroup(%{{.*}} : memref<16x64xf32, #gpu.address_space<workgroup>> {llvm.align = 128 : i64}, %{{.*}} : memref<16x64xf32, #gpu.address_space<workgroup>> {llvm.align = 128 : i64}, %{{.*}} : memref<3x64x16xf64, #gpu.address_space<workgroup>> {llvm.align = 128 : i64}, %{{.*}} : memref<2x64xf64, #gpu.address_space<workgroup>> {llvm.align = 128 : i64})
// CHECK-SAME: kernel attributes {known_block_size = array<i32: 256, 1, 1>, nvvm.maxnreg = 168 : i32, nvvm.maxntid = array<i32: 256, 1, 1>}
// Persistent tile loop, row-block-major.
// CHECK: %[[BID:.*]] = gpu.block_id x
// CHECK: %[[GRID:.*]] = gpu.grid_dim x
// CHECK: scf.for %[[TILE:.*]] = %[[BID]] to %c4 step %[[GRID]]
// CHECK: arith.divui %[[TILE]], %c2
// CHECK: arith.remui %[[TILE]], %c2
// Mainloop: 16 tokens a stage, bf16 extended to f32, exact f32 FMAs.
// CHECK: scf.for %{{.*}} = %c0 to %c8 step %c16 iter_args
// CHECK: arith.extf %{{.*}} : bf16 to f32
// CHECK: gpu.barrier
// CHECK-COUNT-16: llvm.intr.fma
// Epilogue: M' stored, f64 partial statistics reduced through shared memory
// and stored in the tile's slots.
// CHECK: memref.store %{{.*}}, %{{.*}} : memref<70x100xf32>
// CHECK: memref.store %{{.*}} : memref<3x64x16xf64, #gpu.address_space<workgroup>>
// CHECK: gpu.barrier
// CHECK: memref.store %{{.*}} : memref<768xf64>
// One phase when the grid covers a row block's column tiles: release fence,
// arrival, acquire spin until 2 column tiles arrived, acquire fence,
// departure. Arrivals and departures wrap at 2 x 2 - 1 = 3: the last
// departure puts the counter back at 0.
// CHECK: %[[ONE:.*]] = arith.cmpi uge, %[[GRID]], %c2
// CHECK: scf.if %[[ONE]] {
// CHECK: gpu.barrier
// CHECK: llvm.fence syncscope("device") release
// CHECK: llvm.atomicrmw uinc_wrap %[[CTR:.*]], %c3_i32 syncscope("device") monotonic
// CHECK: scf.while
// CHECK: %[[SEEN:.*]] = llvm.load %[[CTR]] atomic syncscope("device") acquire
// CHECK: arith.cmpi ult, %[[SEEN]], %c2_i32
// CHECK: llvm.fence syncscope("device") acquire
// CHECK: llvm.atomicrmw uinc_wrap %[[CTR]], %c3_i32 syncscope("device") monotonic
// CHECK: gpu.barrier
// CHECK: scf.for %{{.*}} = %c0{{[_0-9]*}} to %c2{{[_0-9]*}} step %c1{{[_0-9]*}} iter_args({{.*}}) -> (f64, f64, f64)
// CHECK: math.sqrt %{{.*}} : f64
// CHECK: } else {
// Two phases: U parked in W'.
// CHECK: memref.store %{{.*}} : memref<70x100xf32>
// The streaming phase after the tile loop: grid barrier on counter 2, for
// gridDim.x workers (wrapping at 2 gridDim.x - 1).
// CHECK: %[[TWO:.*]] = arith.cmpi ult, %[[GRID]], %c2{{[_0-9]*}}
// CHECK: scf.if %[[TWO]] {
// CHECK: %[[WORKERS:.*]] = arith.index_cast %[[GRID]] : index to i32
// CHECK: %[[SHL:.*]] = arith.shli %[[WORKERS]], %c1_i32
// CHECK: %[[WRAP:.*]] = arith.subi %[[SHL]], %c1_i32
// CHECK: llvm.atomicrmw uinc_wrap %{{.*}}, %[[WRAP]]
// CHECK: arith.cmpi ult, %{{.*}}, %[[WORKERS]]
// CHECK: llvm.atomicrmw uinc_wrap %{{.*}}, %[[WRAP]]
// CHECK: scf.for %[[ROW:.*]] = %[[BID]] to %c70{{[_0-9]*}} step %[[GRID]]
// A row's 2 x 3 slots (2 column tiles, 3 stats), in chunks of the partials'
// 3072 f64: all 256 threads load them into shared memory at once, then
// thread s adds stat s's in column tile order (elements s, s + 3, ...).
// CHECK: scf.for %[[C0:.*]] = %c0{{[_0-9]*}} to %c6{{[_0-9]*}} step %c3072
// CHECK: scf.for %{{.*}} = %[[TID:thread_id_x[_0-9]*]] to %{{.*}} step %c256
// CHECK: memref.load %{{.*}} : memref<768xf64>
// CHECK: memref.store %{{.*}} : memref<3x64x16xf64, #gpu.address_space<workgroup>>
// CHECK: gpu.barrier
// CHECK: %[[LANE:.*]] = arith.cmpi ult, %[[TID]], %c3
// CHECK: scf.if %[[LANE]] {
// CHECK: arith.cmpi eq, %[[C0]], %c0
// CHECK: scf.for %{{.*}} = %[[TID]] to %{{.*}} step %c3{{[_0-9]*}} iter_args(%{{.*}}) -> (f64)
// CHECK: memref.load %{{.*}} : memref<3x64x16xf64, #gpu.address_space<workgroup>>
// CHECK: arith.addf %{{.*}} : f64
// CHECK: memref.store %{{.*}} : memref<2x64xf64, #gpu.address_space<workgroup>>
// CHECK: gpu.barrier
// The row's columns, 4 a thread: 16-byte loads of U (parked in W') and W,
// and a 16-byte store of W'.
// CHECK: %[[J0:.*]] = arith.muli %[[TID]], %c4
// CHECK: scf.for %[[J:.*]] = %[[J0]] to %c100{{[_0-9]*}} step %c1024
// CHECK: vector.load %{{.*}}[%[[ROW]], %[[J]]] {alignment = 16 : i64} : memref<70x100xf32>, vector<4xf32>
// CHECK: vector.load %{{.*}}[%[[ROW]], %[[J]]] {alignment = 16 : i64} : memref<70x100xf32>, vector<4xf32>
// CHECK: vector.store %{{.*}}, %{{.*}}[%[[ROW]], %[[J]]] {alignment = 16 : i64} : memref<70x100xf32>, vector<4xf32>
// CHECK: gpu.return
func.func @nora(%dy: tensor<8x70xbf16>, %x: tensor<8x100xbf16>,
                %w: tensor<70x100xf32>, %m: tensor<70x100xf32>,
                %lr: f32, %wd: f32) -> (tensor<70x100xf32>, tensor<70x100xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<8x70xbf16>)
      x(%x : tensor<8x100xbf16>) w(%w : tensor<70x100xf32>)
      m(%m : tensor<70x100xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<70x100xf32>, %w0: tensor<70x100xf32>, %m0: tensor<70x100xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<70x100xf32>, tensor<70x100xf32>
    %v = nora.orth_project %u, %w0 : tensor<70x100xf32>, tensor<70x100xf32>
    %d = nora.row_normalize %v {scale = 1.0 : f32} : tensor<70x100xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<70x100xf32>, tensor<70x100xf32>
    nora.yield %w1, %m1 : tensor<70x100xf32>, tensor<70x100xf32>
  }
  return %wn, %mn : tensor<70x100xf32>, tensor<70x100xf32>
}

// -----

// RMNP with an accumulator and a gradient scale: one statistic (sum u^2),
// acc read in the epilogue, g scaled before momentum. Two steps in one
// function get two kernels and two launches.

// With allow-tf32 (the fourth RUN line) the f32 inputs of this step take
// tensor cores: 128 x 128 tiles, a 4-stage ring of 8 tokens a stage (rows
// padded to 136 floats), each operand loaded from shared memory and rounded
// to tf32 (cvt.rna), mma.sync m16n8k8 tf32 -> f32. The 70 x 100 step above
// (not multiples of 4) keeps the exact SIMT mainloop.
// TF32-LABEL: func.func @nora(
// TF32: gpu.func @nora_fused_step_0
// TF32-SAME: workgroup(%{{.*}} : memref<16x64xf32, #gpu.address_space<workgroup>>
// TF32-LABEL: func.func @rmnp_acc
// TF32: gpu.launch_func @nora_kernels::@nora_fused_step_0 blocks in (%c1{{[_0-9]*}}, %c1{{[_0-9]*}}, %c1{{[_0-9]*}})
// TF32: gpu.func @nora_fused_step_0
// TF32-SAME: workgroup(%{{.*}} : memref<4x8x136xf32, #gpu.address_space<workgroup>> {llvm.align = 128 : i64}, %{{.*}} : memref<4x8x136xf32, #gpu.address_space<workgroup>> {llvm.align = 128 : i64}, %{{.*}} : memref<1x128x4xf64, #gpu.address_space<workgroup>>
// TF32-SAME: nvvm.maxnreg = 255 : i32
// TF32: scf.for
// TF32: nvvm.cp.async.wait.group 2
// TF32-NEXT: gpu.barrier
// TF32: %[[V:.*]] = memref.load %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] : memref<4x8x136xf32, #gpu.address_space<workgroup>>
// TF32-NEXT: nvvm.convert.float.to.tf32 %[[V]] {rnd = #nvvm.fp_rnd_mode<rna>}
// TF32: nvvm.mma.sync A[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}]  B[%{{.*}}, %{{.*}}]  C[{{.*}}]  {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<tf32>, multiplicandBPtxType = #nvvm.mma_type<tf32>, shape = #nvvm.shape<m = 16, n = 8, k = 8>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>

// CHECK-LABEL: func.func @rmnp_acc
// CHECK: gpu.launch_func @nora_kernels::@nora_fused_step_0
// CHECK-SAME: memref<128x64xf32>, %{{.*}} : f32, %{{.*}} : f32
// CHECK-SAME: {nora.cooperative, nora.operand_roles = ["dy", "x", "acc", "w", "m", "lr", "wd", "w_new", "m_new", "counters", "row_stats"], nora.persistent_tiles = 2 : i64}
// CHECK: gpu.launch_func @nora_kernels::@nora_fused_step_1
// CHECK: gpu.func @nora_fused_step_0(%{{.*}}: memref<4x128xf32>, %{{.*}}: memref<4x64xf32>, %{{.*}}: memref<128x64xf32>, %{{.*}}: memref<128x64xf32>, %{{.*}}: memref<128x64xf32>, %{{.*}}: f32, %{{.*}}: f32
// CHECK-SAME: workgroup({{.*}}memref<1x64x16xf64, #gpu.address_space<workgroup>>
// CHECK: arith.mulf %cst{{.*}}, %{{.*}} : f32
// CHECK: gpu.func @nora_fused_step_1
func.func @rmnp_acc(%dy: tensor<4x128xf32>, %x: tensor<4x64xf32>, %acc: tensor<128x64xf32>,
                    %w: tensor<128x64xf32>, %m: tensor<128x64xf32>,
                    %lr: f32, %wd: f32) -> (tensor<128x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<4x128xf32>)
      x(%x : tensor<4x64xf32>) acc(%acc : tensor<128x64xf32>) w(%w : tensor<128x64xf32>)
      m(%m : tensor<128x64xf32>) lr(%lr) wd(%wd) attributes {scale = 0.5 : f32} {
  ^bb0(%g: tensor<128x64xf32>, %w0: tensor<128x64xf32>, %m0: tensor<128x64xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<128x64xf32>, tensor<128x64xf32>
    %d = nora.row_normalize %u {eps = 1.0e-12 : f32, scale = 2.0 : f32} : tensor<128x64xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x64xf32>, tensor<128x64xf32>
    nora.yield %w1, %m1 : tensor<128x64xf32>, tensor<128x64xf32>
  }
  %wn2, %mn2 = nora.fused_wgrad_step dy(%dy : tensor<4x128xf32>)
      x(%x : tensor<4x64xf32>) w(%wn : tensor<128x64xf32>)
      m(%mn : tensor<128x64xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<128x64xf32>, %w0: tensor<128x64xf32>, %m0: tensor<128x64xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<128x64xf32>, tensor<128x64xf32>
    %d = nora.row_normalize %u : tensor<128x64xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x64xf32>, tensor<128x64xf32>
    nora.yield %w1, %m1 : tensor<128x64xf32>, tensor<128x64xf32>
  }
  return %wn, %mn2, %wn2 : tensor<128x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>
}

// -----

// bf16 dy and x with rows and columns that are multiples of 8 take the
// tensor-core mainloop: 128 x 128 tiles (1 row block x 2 column tiles),
// a 4-stage ring of 16-token stages filled by cp.async, ldmatrix.trans,
// mma.sync m16n8k16 bf16 -> f32. 40 tokens: 3 token blocks, the last one
// zero-filled past token 40.

// mainloop=wgmma (the third RUN line, where the other steps are errors: they
// are f32 or not multiples of 8): the host adds the TMA descriptors of dy
// and x to the workspace (after the statistics, 128 bytes each) and names
// them in nora.tensor_maps (16 x 64 boxes, 128-byte swizzle). In the kernel
// the ring's stages are 1024-byte aligned with one mbarrier each, set up
// once by thread 0; thread 0 issues each stage as arrive.expect_tx of
// 8 KiB and four 2-D TMA copies, 2 blocks ahead (the first 2 blocks of the
// CTA's first tile before the ring, of each next tile after it); every
// thread waits on the stage's phase; one m64n128k16 a warpgroup and stage through descriptors,
// both operands MN-major (layouts col and row); a whole row's partials sit
// in one quad.
// WGMMA-LABEL: func.func @nora_mma
// WGMMA: memref.alloc() {nora.workspace} : memref<6656xi8>
// WGMMA: %[[DYMAP:.*]] = memref.view %{{.*}}[%c6400{{.*}}][] : memref<6656xi8> to memref<128xi8>
// WGMMA: %[[XMAP:.*]] = memref.view %{{.*}}[%c6528{{.*}}][] : memref<6656xi8> to memref<128xi8>
// WGMMA: gpu.launch_func @nora_kernels::@nora_fused_step_0
// WGMMA-SAME: %[[DYMAP]] : memref<128xi8>, %[[XMAP]] : memref<128xi8>)
// WGMMA-SAME: nora.operand_roles = ["dy", "x", "w", "m", "lr", "wd", "w_new", "m_new", "counters", "row_stats", "dy_map", "x_map"]
// WGMMA-SAME: nora.tensor_maps = [{box = array<i64: 16, 64>, operand = 10 : i64, swizzle = 128 : i64, tensor = 0 : i64}, {box = array<i64: 16, 64>, operand = 11 : i64, swizzle = 128 : i64, tensor = 1 : i64}]
// WGMMA: gpu.func @nora_fused_step_0
// WGMMA-SAME: %{{.*}}: memref<128xi8>, %{{.*}}: memref<128xi8>) workgroup(%{{.*}} : memref<4x16x128xbf16, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64}, %{{.*}} : memref<4x16x128xbf16, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64}, %{{.*}} : memref<3x128x1xf64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64}, %{{.*}} : memref<2x128xf64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64}, %{{.*}} : memref<4xi64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64})
// WGMMA-SAME: nvvm.maxnreg = 255 : i32
// WGMMA: scf.if
// WGMMA-COUNT-4: nvvm.mbarrier.init %{{.*}}, %{{.*}} : !llvm.ptr<3>, i32
// WGMMA: nvvm.fence.mbarrier.init
// WGMMA-NEXT: }
// WGMMA-NEXT: gpu.barrier
// WGMMA: scf.for
// WGMMA: nvvm.mbarrier.arrive.expect_tx %{{.*}}, %c8192_i32 : !llvm.ptr<3>, i32
// WGMMA-COUNT-4: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.*}}, %{{.*}}, %{{.*}}, box[%{{.*}}, %{{.*}}] : !llvm.ptr<7>, !llvm.ptr
// WGMMA: llvm.mlir.zero : !llvm.struct<(f32,
// WGMMA: scf.for
// WGMMA-NEXT: nvvm.wgmma.wait.group.sync.aligned 1
// WGMMA-NEXT: gpu.barrier
// WGMMA: scf.if
// WGMMA: nvvm.mbarrier.arrive.expect_tx
// WGMMA-COUNT-4: nvvm.cp.async.bulk.tensor.shared.cluster.global
// WGMMA: nvvm.mbarrier.try_wait.parity %{{.*}}, %{{.*}}, %c10000000_i32 : !llvm.ptr<3>, i32, i32
// WGMMA: nvvm.wgmma.fence.aligned
// WGMMA-NEXT: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <one>], A[<bf16>, <one>, <col>], B[<bf16>, <one>, <row>]
// WGMMA-NEXT: nvvm.wgmma.commit.group.sync.aligned
// WGMMA: nvvm.wgmma.wait.group.sync.aligned 0
// WGMMA-NEXT: gpu.barrier
// The ring is free: thread 0 issues the next tile's first 2 blocks, which
// load during the epilogue.
// WGMMA: scf.if
// WGMMA-COUNT-2: nvvm.mbarrier.arrive.expect_tx
// WGMMA-NOT: nvvm.cp.async.wait.group
// WGMMA: gpu.shuffle xor

// mainloop=wgmma-ws stage-tokens=16: the same launch and tensor maps, 384
// threads. Thread 0
// sets up a full (count 1) and an empty (count 8) mbarrier a stage. The
// producer warpgroup (threads 0-127, setmaxnreg down to 56) loops over the
// CTA's tiles and their 3 token blocks: thread 0 waits on the stage's
// empty barrier, then issues the stage (expect_tx of 8 KiB, 4 TMA copies);
// at the end it waits on 4 more empty phases. The consumers (setmaxnreg up
// to 184) wait on full; the tile's first wgmma has scale-d 0 on undefined
// accumulators; each next one is followed by wait_group 1 and lane 0 of
// each warp releasing the previous block's stage; after wait_group 0 the
// last stage is released. Their barriers are bar.sync 1, 256.
// The ring is in dynamic shared memory (2 operands x 4 stages x 4 KiB, plus
// 1 KiB to start it at a 1024-byte boundary, where the 128-byte swizzle
// repeats).
// WSPEC-LABEL: func.func @nora_mma
// WSPEC: gpu.launch_func @nora_kernels::@nora_fused_step_0
// WSPEC-SAME: threads in (%c384{{.*}}, %c1{{.*}}, %c1{{.*}}) dynamic_shared_memory_size %c33792_i32
// WSPEC-SAME: nora.tensor_maps = [{box = array<i64: 16, 64>, operand = 10 : i64, swizzle = 128 : i64, tensor = 0 : i64}, {box = array<i64: 16, 64>, operand = 11 : i64, swizzle = 128 : i64, tensor = 1 : i64}]
// WSPEC: gpu.func @nora_fused_step_0
// WSPEC-SAME: memref<8xi64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64})
// WSPEC-SAME: known_block_size = array<i32: 384, 1, 1>, nvvm.maxnreg = 168 : i32, nvvm.maxntid = array<i32: 384, 1, 1>
// WSPEC: %[[DYN:.*]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// WSPEC: %[[BASE:.*]] = memref.extract_aligned_pointer_as_index %[[DYN]]
// WSPEC: %[[MOD:.*]] = arith.remui %[[BASE]], %c1024
// WSPEC: %[[UP:.*]] = arith.subi %c1024, %[[MOD]]
// WSPEC: %[[SHIFT:.*]] = arith.remui %[[UP]], %c1024
// WSPEC: memref.view %[[DYN]][%[[SHIFT]]][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<4x16x128xbf16, #gpu.address_space<workgroup>>
// WSPEC: %[[SHIFTB:.*]] = arith.addi %[[SHIFT]], %c16384
// WSPEC: memref.view %[[DYN]][%[[SHIFTB]]][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<4x16x128xbf16, #gpu.address_space<workgroup>>
// WSPEC-COUNT-4: nvvm.mbarrier.init %{{.*}}, %c1_i32 : !llvm.ptr<3>, i32
// WSPEC: nvvm.fence.mbarrier.init
// WSPEC: gpu.barrier
// WSPEC: %[[PRODUCER:.*]] = arith.cmpi ult, %{{.*}}, %c128
// WSPEC-NEXT: scf.if %[[PRODUCER]] {
// WSPEC-NEXT: nvvm.setmaxregister  decrease 56
// Each role reads the grid after its setmaxnreg (inline PTX, which LLVM
// does not hoist above the fork).
// WSPEC-NEXT: %[[CTA:.*]] = llvm.inline_asm has_side_effects "mov.u32 $0, %ctaid.x;", "=r"
// WSPEC-NEXT: %[[CTAI:.*]] = arith.index_castui %[[CTA]] : i32 to index
// WSPEC-NEXT: %[[GRID:.*]] = llvm.inline_asm has_side_effects "mov.u32 $0, %nctaid.x;", "=r"
// WSPEC-NEXT: %[[GRIDI:.*]] = arith.index_castui %[[GRID]] : i32 to index
// WSPEC-NEXT: scf.if
// WSPEC: scf.for %{{.*}} = %[[CTAI]] to %c2 step %[[GRIDI]]
// WSPEC: scf.for %{{.*}} = %c0 to %c3
// WSPEC: nvvm.mbarrier.try_wait.parity
// WSPEC: nvvm.mbarrier.arrive.expect_tx %{{.*}}, %c8192_i32
// WSPEC-COUNT-4: nvvm.cp.async.bulk.tensor.shared.cluster.global
// WSPEC-COUNT-4: nvvm.mbarrier.try_wait.parity
// WSPEC: } else {
// WSPEC-NEXT: nvvm.setmaxregister  increase 184
// WSPEC-NOT: gpu.barrier
// WSPEC: nvvm.mbarrier.try_wait.parity
// WSPEC-NEXT: llvm.mlir.undef
// WSPEC: nvvm.wgmma.fence.aligned
// WSPEC-NEXT: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <zero>], A[<bf16>, <one>, <col>], B[<bf16>, <one>, <row>]
// WSPEC-NEXT: nvvm.wgmma.commit.group.sync.aligned
// While the first wgmma runs, the consumers prefetch the tile's W and M.
// WSPEC-COUNT-4: llvm.inline_asm has_side_effects "prefetch.global.L2 [$0];"
// WSPEC-NEXT: scf.for %{{.*}} = %c1 to %c3
// WSPEC: nvvm.mbarrier.try_wait.parity
// WSPEC: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <one>]
// WSPEC-NEXT: nvvm.wgmma.commit.group.sync.aligned
// WSPEC-NEXT: nvvm.wgmma.wait.group.sync.aligned 1
// WSPEC: scf.if
// WSPEC: nvvm.mbarrier.arrive %{{.*}} : !llvm.ptr<3> -> i64
// WSPEC: nvvm.wgmma.wait.group.sync.aligned 0
// WSPEC: scf.if
// WSPEC: nvvm.mbarrier.arrive
// WSPEC-NOT: gpu.barrier
// WSPEC: nvvm.barrier id = %c1_i32 number_of_threads = %c256_i32
// WSPEC-NOT: gpu.barrier
// WSPEC: gpu.return

// mainloop=wgmma-pingpong (stage-tokens=16: 3 blocks a tile): the same
// producer and ring, with each consumer warpgroup a worker of its own on a
// whole tile (two wgmmas a k16, one a row atom, on one B), the stages'
// empty mbarriers released by one consumer's 4 warps, and two more
// mbarriers: the consumers' turns. The producer prefetches the W and M
// rows (512 bytes each) in bulk; the consumers park 64 U values a thread
// in 64 x 128 f32 of dynamic shared memory after the ring (2 x 32 KiB more:
// 99,328 bytes), and each runs its epilogue on named barrier 1 + w of 128
// threads.
// PP-LABEL: func.func @nora_mma
// PP: gpu.launch_func @nora_kernels::@nora_fused_step_0 blocks in (%c2{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c384{{.*}}, %c1{{.*}}, %c1{{.*}}) dynamic_shared_memory_size %c99328_i32
// PP: gpu.func @nora_fused_step_0
// PP-SAME: workgroup(%{{.*}} : memref<6x128x1xf64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64}, %{{.*}} : memref<4x128xf64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64}, %{{.*}} : memref<10xi64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64})
// PP-COUNT-4: nvvm.mbarrier.init %{{.*}}, %c4_i32
// PP-COUNT-2: nvvm.mbarrier.init %{{.*}}, %c4_i32
// PP: nvvm.fence.mbarrier.init
// PP: nvvm.setmaxregister  decrease 88
// PP: nvvm.cp.async.bulk.tensor.shared.cluster.global
// PP: nvvm.cp.async.bulk.prefetch %{{.*}}, %c512_i32 : <1>
// PP: nvvm.setmaxregister  increase 200
// PP: memref.view {{.*}} to memref<64x128xf32, #gpu.address_space<workgroup>>
// The turn (from the CTA's second tile), then the tile's first block.
// PP: arith.cmpi uge, %{{.*}}, %c1
// PP: nvvm.mbarrier.try_wait.parity
// PP: nvvm.mbarrier.try_wait.parity
// PP: nvvm.wgmma.fence.aligned
// PP-NEXT: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <zero>]
// PP-NEXT: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <zero>]
// PP-NEXT: nvvm.wgmma.commit.group.sync.aligned
// PP-NOT: prefetch.global.L2
// PP: scf.for %{{.*}} = %c1{{.*}} to %c3
// PP: nvvm.wgmma.fence.aligned
// PP-NEXT: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <one>]
// PP-NEXT: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <one>]
// PP: nvvm.mbarrier.arrive
// The other consumer's turn, once every full wait of the tile is passed.
// PP: nvvm.mbarrier.arrive
// PP-NEXT: }
// PP-NEXT: nvvm.wgmma.wait.group.sync.aligned 0
// PP-NOT: gpu.barrier
// PP: nvvm.barrier id = %{{.*}} number_of_threads = %c128_i32
// PP-NOT: gpu.barrier
// PP: } {nora.independent_warpgroups}

// mainloop=wgmma-tall (stage-tokens=16): 256 x 128 CTA tiles, so the 128 x
// 256 step is 2 of them (grid 2), each a row pair with one row block. A
// stage holds 256 rows of dy (4 TMA boxes of 16 x 64) and 128 columns of x
// (2): expect_tx of 6 x 2 KiB; the ring is 3 stages (3 x 12 KiB), with the
// parked U (2 x 32 KiB) and the slack 103,424 bytes. Both consumers read
// every stage (empty count 8, no turns); consumer w reads dy atoms 2 w and
// 2 w + 1 (w from %tid.x), computes row block 2 p + w and skips the
// epilogue of the row block past the matrix.
// TALL-LABEL: func.func @nora_mma
// TALL: gpu.launch_func @nora_kernels::@nora_fused_step_0 blocks in (%c2{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c384{{.*}}, %c1{{.*}}, %c1{{.*}}) dynamic_shared_memory_size %c103424_i32
// TALL-SAME: nora.persistent_tiles = 2
// TALL: gpu.func @nora_fused_step_0
// TALL-SAME: workgroup(%{{.*}} : memref<6x128x1xf64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64}, %{{.*}} : memref<4x128xf64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64}, %{{.*}} : memref<6xi64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64})
// TALL: memref.view {{.*}} to memref<3x16x256xbf16, #gpu.address_space<workgroup>>
// TALL: memref.view {{.*}} to memref<3x16x128xbf16, #gpu.address_space<workgroup>>
// TALL-COUNT-3: nvvm.mbarrier.init %{{.*}}, %c8_i32
// TALL-NOT: nvvm.mbarrier.init
// TALL: nvvm.fence.mbarrier.init
// TALL: nvvm.setmaxregister  decrease 88
// TALL: nvvm.mbarrier.arrive.expect_tx %{{.*}}, %c12288_i32
// TALL-COUNT-6: nvvm.cp.async.bulk.tensor.shared.cluster.global
// TALL-NOT: nvvm.cp.async.bulk.tensor.shared.cluster.global
// TALL: nvvm.cp.async.bulk.prefetch %{{.*}}, %c512_i32 : <1>
// TALL: nvvm.setmaxregister  increase 200
// TALL: memref.view {{.*}} to memref<64x128xf32, #gpu.address_space<workgroup>>
// TALL-NOT: arith.cmpi uge
// TALL: nvvm.mbarrier.try_wait.parity
// TALL: llvm.inline_asm has_side_effects "mov.u32 $0, %tid.x;"
// TALL: nvvm.wgmma.fence.aligned
// TALL-NEXT: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <zero>]
// TALL-NEXT: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <zero>]
// TALL-NEXT: nvvm.wgmma.commit.group.sync.aligned
// TALL: scf.for %{{.*}} = %c1{{.*}} to %c3
// TALL: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <one>]
// TALL: nvvm.mbarrier.arrive
// TALL: nvvm.wgmma.wait.group.sync.aligned 0
// The row block of consumer 1 of the only row pair is past the matrix.
// TALL: arith.cmpi ult, %{{.*}}, %c1{{(_[0-9]+)?}} : index
// TALL-NEXT: scf.if
// TALL-NOT: gpu.barrier
// TALL: nvvm.barrier id = %{{.*}} number_of_threads = %c128_i32
// TALL-NOT: gpu.barrier
// TALL: } {nora.independent_warpgroups}

// mainloop=wgmma-wide (stage-tokens=16): 128 x 256 CTA tiles, so the 128 x
// 256 step is one of them (grid 1), a column pair of two column tiles. A
// stage holds 128 rows of dy (2 TMA boxes of 16 x 64) and 256 columns of x
// (4): expect_tx of 6 x 2 KiB, the same ring and dynamic shared memory as
// wgmma-tall's. The producer prefetches rows of 256 columns (1024 bytes);
// consumer w's two wgmmas a k16 read the stage's two dy atoms and the same
// B, at x atom 2 w (w from %tid.x), and it runs column tile 2 q + w.
// WIDE-LABEL: func.func @nora_mma
// WIDE: gpu.launch_func @nora_kernels::@nora_fused_step_0 blocks in (%c1{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c384{{.*}}, %c1{{.*}}, %c1{{.*}}) dynamic_shared_memory_size %c103424_i32
// WIDE-SAME: nora.persistent_tiles = 1
// WIDE: gpu.func @nora_fused_step_0
// WIDE-SAME: workgroup(%{{.*}} : memref<6x128x1xf64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64}, %{{.*}} : memref<4x128xf64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64}, %{{.*}} : memref<6xi64, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64})
// WIDE: memref.view {{.*}} to memref<3x16x128xbf16, #gpu.address_space<workgroup>>
// WIDE: memref.view {{.*}} to memref<3x16x256xbf16, #gpu.address_space<workgroup>>
// WIDE-COUNT-3: nvvm.mbarrier.init %{{.*}}, %c8_i32
// WIDE-NOT: nvvm.mbarrier.init
// WIDE: nvvm.setmaxregister  decrease 88
// WIDE: nvvm.mbarrier.arrive.expect_tx %{{.*}}, %c12288_i32
// WIDE-COUNT-6: nvvm.cp.async.bulk.tensor.shared.cluster.global
// WIDE-NOT: nvvm.cp.async.bulk.tensor.shared.cluster.global
// WIDE: nvvm.cp.async.bulk.prefetch %{{.*}}, %c1024_i32 : <1>
// WIDE: nvvm.setmaxregister  increase 200
// WIDE: memref.view {{.*}} to memref<64x128xf32, #gpu.address_space<workgroup>>
// WIDE: nvvm.mbarrier.try_wait.parity
// WIDE: llvm.inline_asm has_side_effects "mov.u32 $0, %tid.x;"
// WIDE: nvvm.wgmma.fence.aligned
// WIDE-NEXT: nvvm.wgmma.mma_async %[[A0:.*]], %[[B:.*]], %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <zero>]
// WIDE-NEXT: nvvm.wgmma.mma_async %{{.*}}, %[[B]], %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <zero>]
// WIDE-NEXT: nvvm.wgmma.commit.group.sync.aligned
// WIDE: scf.for %{{.*}} = %c1{{.*}} to %c3
// WIDE: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <one>]
// WIDE: nvvm.wgmma.wait.group.sync.aligned 0
// Two column tiles: both consumers have one (no range check on ct).
// WIDE-NOT: arith.cmpi ult, %{{.*}}, %c2{{(_[0-9]+)?}} : index
// WIDE: nvvm.barrier id = %{{.*}} number_of_threads = %c128_i32
// WIDE-NOT: gpu.barrier
// WIDE: } {nora.independent_warpgroups}

// ring-stages=8 stage-tokens=16: 8 stages (64 KiB of stages, 66,560 bytes with the
// alignment slack) and 8 pairs of mbarriers.
// mainloop=wgmma-ws with its default stages: 64 tokens, or fewer in steps
// of 16 when the step has fewer (40 here: one stage of 48 tokens). The TMA
// boxes are 48 x 64, a stage 4 boxes of 6 KiB (expect_tx of 24 KiB), the
// ring 4 x 2 x 12 KiB + 1 KiB; one fence, the stage's 3 k16 wgmmas (the
// tile's first with scale-d 0, each next 2048 bytes on in both operands,
// one MN atom of A and two of B apart by 6 KiB), one commit group.
// WS48-LABEL: func.func @nora_mma
// WS48: gpu.launch_func @nora_kernels::@nora_fused_step_0
// WS48-SAME: dynamic_shared_memory_size %c99328_i32
// WS48-SAME: nora.tensor_maps = [{box = array<i64: 48, 64>, operand = 10 : i64, swizzle = 128 : i64, tensor = 0 : i64}, {box = array<i64: 48, 64>, operand = 11 : i64, swizzle = 128 : i64, tensor = 1 : i64}]
// WS48: memref.view {{.*}} to memref<4x48x128xbf16, #gpu.address_space<workgroup>>
// WS48: arith.addi %{{.*}}, %c49152
// WS48: memref.view {{.*}} to memref<4x48x128xbf16, #gpu.address_space<workgroup>>
// WS48: nvvm.mbarrier.arrive.expect_tx %{{.*}}, %c24576_i32
// WS48-COUNT-4: nvvm.cp.async.bulk.tensor.shared.cluster.global
// WS48: nvvm.setmaxregister  increase 184
// The k-th wgmma's descriptors are the stage's plus 128 k (2048 k bytes
// in the start address's 16-byte units).
// WS48: %[[B1:.*]] = arith.addi %[[B0:.*]], %c128_i64
// WS48: %[[A1:.*]] = arith.addi %[[A0:.*]], %c128_i64
// WS48: %[[B2:.*]] = arith.addi %[[B0]], %c256_i64
// WS48: %[[A2:.*]] = arith.addi %[[A0]], %c256_i64
// WS48: nvvm.wgmma.fence.aligned
// WS48-NEXT: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <zero>]
// WS48-NEXT: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <one>]
// WS48-NEXT: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <one>]
// WS48-NEXT: nvvm.wgmma.commit.group.sync.aligned
// WS48: llvm.inline_asm has_side_effects "prefetch.global.L2 [$0];"
// WS48: scf.for %{{.*}} = %c1 to %c1
// WS48: nvvm.wgmma.fence.aligned
// WS48-NEXT: nvvm.wgmma.mma_async
// WS48-COUNT-2: nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %{{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <one>]
// WS48-NEXT: nvvm.wgmma.commit.group.sync.aligned
// WS48-NEXT: nvvm.wgmma.wait.group.sync.aligned 1

// RING8-LABEL: func.func @nora_mma
// RING8: gpu.launch_func @nora_kernels::@nora_fused_step_0 {{.*}} dynamic_shared_memory_size %c66560_i32
// RING8: gpu.func @nora_fused_step_0
// RING8-SAME: memref<16xi64, #gpu.address_space<workgroup>>
// RING8: memref.view {{.*}} to memref<8x16x128xbf16, #gpu.address_space<workgroup>>
// RING8: %{{.*}} = arith.addi %{{.*}}, %c32768

// CHECK-LABEL: func.func @nora_mma
// CHECK: memref.alloc() {nora.workspace} : memref<6400xi8>
// CHECK: memref.view %{{.*}}[%{{.*}}][] : memref<6400xi8> to memref<2xi32>
// CHECK: memref.view %{{.*}}[%{{.*}}][] : memref<6400xi8> to memref<768xf64>
// CHECK: gpu.launch_func @nora_kernels::@nora_fused_step_0 blocks in (%c2, %c1, %c1) threads in (%c256, %c1, %c1)
// CHECK-SAME: nora.persistent_tiles = 2 : i64
// CHECK: gpu.func @nora_fused_step_0
// CHECK-SAME: workgroup(%[[A:[a-z0-9]+]] : memref<4x16x128xbf16, #gpu.address_space<workgroup>> {llvm.align = 128 : i64}, %[[B:[a-z0-9]+]] : memref<4x16x128xbf16, #gpu.address_space<workgroup>> {llvm.align = 128 : i64}, %{{.*}} : memref<3x128x4xf64, #gpu.address_space<workgroup>> {llvm.align = 128 : i64}, %{{.*}} : memref<2x128xf64, #gpu.address_space<workgroup>> {llvm.align = 128 : i64})
// CHECK-SAME: kernel attributes {known_block_size = array<i32: 256, 1, 1>, nvvm.maxnreg = 255 : i32, nvvm.maxntid = array<i32: 256, 1, 1>}
// CHECK: scf.for %{{.*}} = %{{.*}} to %c2 step %{{.*}} {
// Prologue: token blocks 0, 1, 2 in flight (dy and x chunks), one group each.
// CHECK: memref.extract_aligned_pointer_as_index %[[A]]
// CHECK: memref.extract_aligned_pointer_as_index %[[B]]
// CHECK-COUNT-2: nvvm.cp.async.shared.global %{{.*}}, %{{.*}}, 16, cache =  cg, %{{.*}} : !llvm.ptr<3>, !llvm.ptr<1>, i32
// CHECK-NEXT: nvvm.cp.async.commit.group
// CHECK-COUNT-2: nvvm.cp.async.shared.global
// CHECK-NEXT: nvvm.cp.async.commit.group
// CHECK-COUNT-2: nvvm.cp.async.shared.global
// CHECK-NEXT: nvvm.cp.async.commit.group
// With at most 2048 tokens the tile's W and M go to L2 before its
// mainloop: 2 x 128 rows x 4 lines of 128 bytes, 4 a thread (line q =
// tid, tid + 256 of W, tid + 512, tid + 768 of M: row (q % 512) / 4,
// columns 32 (q % 4) on), rows and columns clamped into the matrix.
// CHECK: %[[Q:.*]] = arith.addi %thread_id_x, %c0 : index
// CHECK: %[[ISM:.*]] = arith.cmpi uge, %[[Q]], %c512 : index
// CHECK: %[[IN:.*]] = arith.remui %[[Q]], %c512 : index
// CHECK: arith.divui %[[IN]], %c4 : index
// CHECK: arith.minui %{{.*}}, %c127 : index
// CHECK: arith.remui %[[IN]], %c4 : index
// CHECK: arith.minui %{{.*}}, %c255 : index
// CHECK: arith.select %[[ISM]], %{{.*}}, %{{.*}} : i64
// CHECK: llvm.inline_asm has_side_effects "prefetch.global.L2 [$0];", "l" %{{.*}} : (!llvm.ptr<1>) -> ()
// CHECK: arith.addi %thread_id_x, %c256 : index
// CHECK-COUNT-3: llvm.inline_asm has_side_effects "prefetch.global.L2 [$0];"
// CHECK-NOT: prefetch.global.L2
// With l2-prefetch-tokens=16 the prefetch is in the ring's loop, at its
// last block (token 32 of 40), on an opaque copy of the thread index.
// PF16-LABEL: func.func @nora_mma
// PF16: gpu.func @nora_fused_step_0
// PF16: scf.for %{{.*}} = %c0 to %c3 step %c1
// PF16: nvvm.cp.async.commit.group
// PF16: %[[AT:.*]] = arith.cmpi eq, %{{.*}}, %c32 : index
// PF16-NEXT: scf.if %[[AT]] {
// PF16: llvm.inline_asm has_side_effects "mov.b32 $0, $1;", "=r,r"
// PF16-COUNT-4: llvm.inline_asm has_side_effects "prefetch.global.L2 [$0];"
// PF16: nvvm.ldmatrix
// The ring: wait for block kb, refill the stage block kb-1 used, compute.
// CHECK: scf.for %{{.*}} = %c0 to %c3 step %c1 iter_args({{.*}}) -> (f32, f32,
// CHECK-NEXT: nvvm.cp.async.wait.group 2
// CHECK-NEXT: gpu.barrier
// CHECK: scf.if
// CHECK-COUNT-2: nvvm.cp.async.shared.global
// CHECK: nvvm.cp.async.commit.group
// CHECK-COUNT-6: nvvm.ldmatrix %{{.*}} {eltType = #nvvm.ld_st_matrix_elt_type<b16>, layout = #nvvm.mma_layout<col>, num = 4 : i32, shape = #nvvm.ld_st_matrix_shape<m = 8, n = 8>} : (!llvm.ptr<3>) -> !llvm.struct<(i32, i32, i32, i32)>
// CHECK-COUNT-16: nvvm.mma.sync A[{{.*}}] B[{{.*}}] C[{{.*}}] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// CHECK: scf.yield
// CHECK: nvvm.cp.async.wait.group 0
// CHECK-NEXT: gpu.barrier
// Epilogue: the 128 x 256 tiles cover the weight, so no range predicates;
// each row's partials are summed over the quad (xor 1, 2; f64 as two i32
// halves), and lane 0 of each quad writes them.
// CHECK: gpu.shuffle xor %{{.*}}, %c1_i32, %c32_i32 : i32
// CHECK: gpu.shuffle xor %{{.*}}, %c1_i32, %c32_i32 : i32
// CHECK: gpu.shuffle xor %{{.*}}, %c2_i32, %c32_i32 : i32
// CHECK: scf.if
// CHECK: memref.store %{{.*}} : memref<3x128x4xf64, #gpu.address_space<workgroup>>
// CHECK: gpu.barrier
// CHECK: llvm.fence syncscope("device") release
// U crosses the wait as f32 (an opaque copy keeps its f64 extension after it).
// CHECK: llvm.inline_asm has_side_effects "mov.b32 $0, $1;", "=f,f" %{{.*}} : (f32) -> f32
// CHECK: gpu.return
func.func @nora_mma(%dy: tensor<40x128xbf16>, %x: tensor<40x256xbf16>,
                    %w: tensor<128x256xf32>, %m: tensor<128x256xf32>,
                    %lr: f32, %wd: f32) -> (tensor<128x256xf32>, tensor<128x256xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<40x128xbf16>)
      x(%x : tensor<40x256xbf16>) w(%w : tensor<128x256xf32>)
      m(%m : tensor<128x256xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<128x256xf32>, %w0: tensor<128x256xf32>, %m0: tensor<128x256xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.95 : f32} : tensor<128x256xf32>, tensor<128x256xf32>
    %v = nora.orth_project %u, %w0 : tensor<128x256xf32>, tensor<128x256xf32>
    %d = nora.row_normalize %v : tensor<128x256xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x256xf32>, tensor<128x256xf32>
    nora.yield %w1, %m1 : tensor<128x256xf32>, tensor<128x256xf32>
  }
  return %wn, %mn : tensor<128x256xf32>, tensor<128x256xf32>
}

// -----

// f16 operands are <2 x f16> registers of mma.sync; mainloop=simt (second
// RUN line) keeps the exact-f32 mainloop for the same step.

// CHECK-LABEL: func.func @rmnp_f16
// CHECK: llvm.bitcast %{{.*}} : i32 to vector<2xf16>
// CHECK: nvvm.mma.sync {{.*}} shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (vector<2xf16>, vector<2xf16>, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// Whole tiles: at most 128 registers (two CTAs a SM).
// SIMT-LABEL: func.func @rmnp_f16
// SIMT: gpu.func
// SIMT-SAME: workgroup(%{{.*}} : memref<16x64xf32, #gpu.address_space<workgroup>>
// SIMT-SAME: nvvm.maxnreg = 128 : i32
// SIMT-NOT: nvvm.mma.sync
// SIMT: llvm.intr.fma
func.func @rmnp_f16(%dy: tensor<16x64xf16>, %x: tensor<16x64xf16>,
                    %w: tensor<64x64xf32>, %m: tensor<64x64xf32>,
                    %lr: f32, %wd: f32) -> (tensor<64x64xf32>, tensor<64x64xf32>) {
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<16x64xf16>)
      x(%x : tensor<16x64xf16>) w(%w : tensor<64x64xf32>)
      m(%m : tensor<64x64xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<64x64xf32>, %w0: tensor<64x64xf32>, %m0: tensor<64x64xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.95 : f32} : tensor<64x64xf32>, tensor<64x64xf32>
    %d = nora.row_normalize %u : tensor<64x64xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<64x64xf32>, tensor<64x64xf32>
    nora.yield %w1, %m1 : tensor<64x64xf32>, tensor<64x64xf32>
  }
  return %wn, %mn : tensor<64x64xf32>, tensor<64x64xf32>
}

// -----

// The optimizer step alone, on a given gradient: the chain outside any fused
// step becomes the same kernel without the matmul (the tile of g is loaded,
// 64 x 64 tiles: 3 row blocks x 2 column tiles).

// CHECK-LABEL: func.func @given_gradient
// CHECK-SAME: (%[[G:.*]]: tensor<130x70xf32>, %[[W:.*]]: tensor<130x70xf32>, %[[M:.*]]: tensor<130x70xf32>, %[[LR:.*]]: f32, %[[WD:.*]]: f32)
// CHECK: %[[GB:.*]] = bufferization.to_buffer %[[G]] read_only
// CHECK: gpu.launch_func @nora_kernels::@nora_fused_step_0 blocks in (%c6, %c1, %c1)
// CHECK-SAME: args(%[[GB]] : memref<130x70xf32>,
// CHECK-SAME: nora.operand_roles = ["g", "w", "m", "lr", "wd", "w_new", "m_new", "counters", "row_stats"], nora.persistent_tiles = 6 : i64
// CHECK-NOT: nora.momentum
// CHECK: return
// CHECK: gpu.func @nora_fused_step_0(%{{.*}}: memref<130x70xf32>, %{{.*}}: memref<130x70xf32>, %{{.*}}: memref<130x70xf32>, %{{.*}}: f32, %{{.*}}: f32,
// CHECK-SAME: workgroup(%{{.*}} : memref<3x64x16xf64, #gpu.address_space<workgroup>> {llvm.align = 128 : i64}, %{{.*}} : memref<2x64xf64, #gpu.address_space<workgroup>> {llvm.align = 128 : i64})
// CHECK-NOT: llvm.intr.fma
// CHECK: llvm.fence syncscope("device") release
func.func @given_gradient(%g: tensor<130x70xf32>, %w: tensor<130x70xf32>, %m: tensor<130x70xf32>,
                          %lr: f32, %wd: f32) -> (tensor<130x70xf32>, tensor<130x70xf32>) {
  %m1, %u = nora.momentum %m, %g {beta = 0.95 : f32, nesterov = 0.95 : f32} : tensor<130x70xf32>, tensor<130x70xf32>
  %v = nora.orth_project %u, %w : tensor<130x70xf32>, tensor<130x70xf32>
  %d = nora.row_normalize %v : tensor<130x70xf32>
  %w1 = nora.apply_update %w, %d, %lr, %wd : tensor<130x70xf32>, tensor<130x70xf32>
  return %w1, %m1 : tensor<130x70xf32>, tensor<130x70xf32>
}

// -----

// A chain whose intermediate is used elsewhere (here returned) is no row
// update the kernel computes; it is left for other lowerings.

// CHECK-LABEL: func.func @intermediate_used
// CHECK-NOT: gpu.launch_func
// CHECK: nora.momentum
// CHECK: nora.row_normalize
// CHECK: nora.apply_update
func.func @intermediate_used(%g: tensor<64x64xf32>, %w: tensor<64x64xf32>, %m: tensor<64x64xf32>,
                             %lr: f32, %wd: f32) -> (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) {
  %m1, %u = nora.momentum %m, %g {beta = 0.9 : f32} : tensor<64x64xf32>, tensor<64x64xf32>
  %d = nora.row_normalize %u : tensor<64x64xf32>
  %w1 = nora.apply_update %w, %d, %lr, %wd : tensor<64x64xf32>, tensor<64x64xf32>
  return %w1, %m1, %d : tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>
}

// -----

// A gradient that no step fused (here: nothing else uses it) becomes the
// same kernel with an epilogue that stores g = scale dy^T x + acc: no
// workspace, counters or statistics, and a launch that need not be
// cooperative. bf16 multiples of 8: the mma.sync mainloop.
// CHECK-LABEL: func.func @wgrad_alone
// CHECK-SAME: (%[[DY:.*]]: tensor<24x128xbf16>, %[[X:.*]]: tensor<24x64xbf16>, %[[ACC:.*]]: tensor<128x64xf32>)
// CHECK: %[[G:.*]] = memref.alloc() : memref<128x64xf32>
// CHECK-NOT: nora.workspace
// CHECK-NOT: gpu.memset
// CHECK: gpu.launch_func @nora_kernels::@nora_wgrad_0 blocks in (%c1{{[_0-9]*}}, %c1{{[_0-9]*}}, %c1{{[_0-9]*}}) threads in (%c256{{[_0-9]*}}, %c1{{[_0-9]*}}, %c1{{[_0-9]*}})
// CHECK-SAME: args(%{{.*}} : memref<24x128xbf16>, %{{.*}} : memref<24x64xbf16>, %{{.*}} : memref<128x64xf32>, %[[G]] : memref<128x64xf32>)
// CHECK-SAME: {nora.operand_roles = ["dy", "x", "acc", "g"], nora.persistent_tiles = 1 : i64}
// CHECK: %[[T:.*]] = bufferization.to_tensor %[[G]] restrict writable
// CHECK: return %[[T]]
// CHECK: gpu.func @nora_wgrad_0(%{{.*}}: memref<24x128xbf16>, %{{.*}}: memref<24x64xbf16>, %[[KACC:.*]]: memref<128x64xf32>, %[[KG:.*]]: memref<128x64xf32>) workgroup(%{{.*}} : memref<4x16x128xbf16, #gpu.address_space<workgroup>> {llvm.align = 128 : i64}, %{{.*}} : memref<4x16x128xbf16, #gpu.address_space<workgroup>> {llvm.align = 128 : i64})
// CHECK: nvvm.mma.sync
// A thread's two adjacent columns are one 8-byte access.
// CHECK: %[[A:.*]] = vector.load %[[KACC]][%[[R:.*]], %[[C:.*]]] {alignment = 8 : i64} : memref<128x64xf32>, vector<2xf32>
// CHECK: %[[A0:.*]] = vector.extract %[[A]][0]
// CHECK: %[[A1:.*]] = vector.extract %[[A]][1]
// CHECK: %[[S0:.*]] = arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK: %[[SUM0:.*]] = arith.addf %[[S0]], %[[A0]] : f32
// CHECK: %[[S1:.*]] = arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK: %[[SUM1:.*]] = arith.addf %[[S1]], %[[A1]] : f32
// CHECK: %[[V:.*]] = vector.from_elements %[[SUM0]], %[[SUM1]] : vector<2xf32>
// CHECK: vector.store %[[V]], %[[KG]][%[[R]], %[[C]]] {alignment = 8 : i64}
// CHECK-NOT: llvm.atomicrmw
// CHECK-NOT: llvm.fence
// CHECK: gpu.return
func.func @wgrad_alone(%dy: tensor<24x128xbf16>, %x: tensor<24x64xbf16>,
                       %acc: tensor<128x64xf32>) -> tensor<128x64xf32> {
  %g = nora.wgrad %dy, %x acc(%acc : tensor<128x64xf32>) {scale = 0.5 : f32}
      : tensor<24x128xbf16>, tensor<24x64xbf16> -> tensor<128x64xf32>
  return %g : tensor<128x64xf32>
}
