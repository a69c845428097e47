// The GPU pipeline takes what a front end writes (wgrad + a composite step)
// to one cooperative launch and one persistent kernel, lowered to NVVM and
// assembled. The PTX pins the memory ordering of the row-block counters:
// LLVM's NVPTX back end drops the ordering of atomicrmw, so the release and
// acquire fences are explicit and the spin is an ld.acquire.gpu; arrival
// and departure are atom.inc, which wraps the counter back to 0. The bf16
// step takes the tensor-core mainloop (cp.async ring, ldmatrix, mma.sync);
// mainloop=simt gives the exact-f32 one.
// RUN: nora-opt %s --nora-gpu-pipeline="chip=sm_90a format=none" | FileCheck %s --check-prefix=NVVM
// RUN: nora-opt %s --nora-gpu-pipeline="chip=sm_90a format=isa" | FileCheck %s --check-prefix=PTX
// RUN: nora-opt %s --nora-gpu-pipeline="chip=sm_80 format=isa" | FileCheck %s --check-prefix=PTX80
// RUN: nora-opt %s --nora-gpu-pipeline="chip=sm_80 format=isa mainloop=simt" | FileCheck %s --check-prefix=SIMT
// RUN: nora-opt %s --nora-gpu-pipeline="chip=sm_90a format=isa mainloop=wgmma" | FileCheck %s --check-prefix=WGMMA
// RUN: nora-opt %s --nora-gpu-pipeline="chip=sm_90a format=isa mainloop=wgmma-ws" | FileCheck %s --check-prefix=WSPTX
// RUN: nora-opt %s --nora-gpu-pipeline="chip=sm_90a format=isa row-exchange=cluster" | FileCheck %s --check-prefix=CLUSTER
// RUN: not nora-opt %s --nora-gpu-pipeline="chip=sm_80 row-exchange=cluster" 2>&1 | FileCheck %s --check-prefix=CLUSTER80
// RUN: not nora-opt %s --nora-gpu-pipeline="chip=sm_70" 2>&1 | FileCheck %s --check-prefix=CHIP
// RUN: not nora-opt %s --nora-gpu-pipeline="format=elf" 2>&1 | FileCheck %s --check-prefix=FORMAT
// RUN: not nora-opt %s --nora-gpu-pipeline="host=jit" 2>&1 | FileCheck %s --check-prefix=HOST
// RUN: not nora-opt %s --nora-gpu-pipeline="host=runtime format=isa" 2>&1 | FileCheck %s --check-prefix=HOSTISA

// NVVM-LABEL: func.func @nora_step
// NVVM: gpu.launch_func @nora_kernels::@nora_fused_step_0
// NVVM-SAME: {nora.cooperative, nora.operand_roles = ["dy", "x", "w", "m", "lr", "wd", "w_new", "m_new", "counters", "row_stats"], nora.persistent_tiles = 1 : i64}
// NVVM: gpu.module @nora_kernels [#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">]
// Bare pointers: one !llvm.ptr per buffer, lr and wd by value.
// NVVM: llvm.func @nora_fused_step_0(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr)
// NVVM-SAME: gpu.kernel
// NVVM-SAME: nvvm.kernel
// NVVM-NOT: scf.
// NVVM-NOT: memref.

// PTX: gpu.binary @nora_kernels
// PTX-SAME: chip = "sm_90a"
// PTX-SAME: .target sm_90a
// PTX-SAME: .visible .entry nora_fused_step_0(
// 96 columns: a partial column tile, so the 255-register cap (168 where
// the tiles cover the matrix).
// PTX-SAME: .maxnreg 255
// PTX-SAME: .shared .align 128 .b8 __wg_nora_fused_step_0_0[16384];
// PTX-SAME: cp.async.cg.shared.global [%rd{{[0-9]+}}], [%rd{{[0-9]+}}], 16, %r{{[0-9]+}};
// PTX-SAME: ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16
// PTX-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// A thread's adjacent columns of W, M and M' are 8-byte accesses.
// PTX-SAME: ld.global.v2.b32
// PTX-SAME: st.global.v2.b32
// PTX-SAME: shfl.sync.bfly.b32
// PTX-SAME: fence.acq_rel.gpu
// PTX-SAME: atom.{{(global.)?}}inc.u32
// PTX-SAME: ld.acquire.gpu
// PTX-SAME: fence.acq_rel.gpu
// PTX-SAME: atom.{{(global.)?}}inc.u32
// PTX-SAME: sqrt.rn.f64
// PTX-NOT: call.uni
// PTX80: .target sm_80
// PTX80-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// WGMMA: .target sm_90a
// WGMMA-SAME: .maxnreg 255
// WGMMA-SAME: .shared .align 1024 .b8 __wg_nora_fused_step_0_0[16384];
// WGMMA-SAME: mbarrier.init.shared.b64
// WGMMA-SAME: fence.mbarrier_init.release.cluster;
// WGMMA-SAME: mbarrier.arrive.expect_tx.shared.b64
// WGMMA-SAME: cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
// WGMMA-SAME: mbarrier.try_wait.parity.shared.b64
// WGMMA-SAME: wgmma.fence.sync.aligned;
// WGMMA-SAME: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16
// WGMMA-SAME: wgmma.commit_group.sync.aligned;
// WGMMA-SAME: fence.acq_rel.gpu
// SIMT: .target sm_80
// SIMT-NOT: mma.sync
// SIMT-SAME: fma.rn.f32
// SIMT-NOT: mma.sync
// SIMT-SAME: ld.acquire.gpu

// The dynamic shared memory (the warp-specialized ring) is CUDA's extern
// __shared__ array, where the launch's dynamic shared memory starts. As
// convert-gpu-to-nvvm leaves it (an internal zero-length global), NVPTX
// printed a one-byte kernel-local ".shared .align 16 .b8
// __dynamic_shmem__0;" that ptxas placed at offset 0 of the static shared
// memory (6208 bytes static instead of 5184 here): the ring overlapped the
// partials, coefficients and mbarriers.
// WSPTX: .extern .shared .align 16 .b8 __dynamic_shmem__0[];
// WSPTX-NOT: .b8 __dynamic_shmem__0;
// WSPTX: .shared .align 1024 .b8 __wg_nora_fused_step_0_0[3072];
// WSPTX-SAME: mbarrier.try_wait.parity.shared.b64
// The cluster row exchange: no counters (no atom, no gpu-scope fence or
// acquire load); the slots in the extern dynamic shared memory, the
// cluster barrier's release/acquire (the defaults of .arrive and .wait),
// and the other CTAs' slots read through mapa and ld.shared::cluster, then
// the final barrier before the kernel exits.
// CLUSTER: .extern .shared .align 16 .b8 __dynamic_shmem__0[];
// CLUSTER-NOT: atom.
// CLUSTER-NOT: fence.acq_rel.gpu
// CLUSTER-NOT: ld.acquire.gpu
// CLUSTER: barrier.cluster.arrive.aligned;
// CLUSTER-SAME: barrier.cluster.wait.aligned;
// CLUSTER-SAME: mapa.shared::cluster.u64
// CLUSTER-SAME: ld.shared::cluster.b64
// CLUSTER-SAME: barrier.cluster.arrive.aligned;
// CLUSTER-SAME: barrier.cluster.wait.aligned;
// CLUSTER-NOT: atom.
// CLUSTER80: nora-gpu-pipeline: row-exchange=cluster needs chip=sm_90a (thread-block clusters are Hopper's)
// CHIP: nora-gpu-pipeline: unsupported chip 'sm_70' (supported: sm_80, sm_90a)
// FORMAT: nora-gpu-pipeline: unsupported format 'elf'
// HOST: nora-gpu-pipeline: unsupported host 'jit' (launch or runtime)
// HOSTISA: nora-gpu-pipeline: host=runtime embeds the cubin and needs format=bin

func.func @nora_step(%dy: tensor<32x128xbf16>, %x: tensor<32x96xbf16>,
                     %w: tensor<128x96xf32>, %m: tensor<128x96xf32>,
                     %lr: f32, %wd: f32) -> (tensor<128x96xf32>, tensor<128x96xf32>) {
  %g = nora.wgrad %dy, %x : tensor<32x128xbf16>, tensor<32x96xbf16> -> tensor<128x96xf32>
  %w_new, %m_new = nora.nora_step %g, %w, %m, %lr, %wd
      : tensor<128x96xf32>, tensor<128x96xf32>, tensor<128x96xf32>
  return %w_new, %m_new : tensor<128x96xf32>, tensor<128x96xf32>
}
