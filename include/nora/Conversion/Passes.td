//===- Passes.td - nora conversion passes ------------------*- tablegen -*-===//

#ifndef NORA_CONVERSION_PASSES_TD
#define NORA_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertNoraToLinalg : Pass<"convert-nora-to-linalg"> {
  let summary = "Lower nora ops to linalg on tensors, op by op (the CPU semantics)";
  let description = [{
    Rewrites every nora op into `linalg.generic` ops on tensors that keep the
    accumulation rules of SEMANTICS.md:

    - `nora.wgrad`: a contraction with loops (i, k, j) that extends bf16/f16
      inputs to f32 and accumulates in f32, k ascending (deterministic);
      `scale` and `acc` are applied after the sum.
    - `nora.momentum`: torch's `lerp` form, elementwise in f32.
    - `nora.orth_project`, `nora.row_normalize`: the row statistics
      `<u, w>`, `||w||^2`, `||v||^2` are accumulated in f64, one per-row
      coefficient is computed in f64, and `v` (resp. `d`) is formed in f64 and
      rounded once to f32. `v` is computed before its norm, so rows where `u`
      is almost parallel to `w` keep full accuracy.
    - `nora.apply_update`: `w * f32(1 - lr * wd) + (-lr) * d` in f32.
    - `nora.fused_wgrad_step`: the contraction, then the epilogue region
      inlined (the op-by-op reference of the fused path).
    - `nora.nora_step`, `nora.rmnp_step`: decomposed first.

    Zero rows never divide by zero, also with `eps = 0`.

    With `use-ukernels`, the contraction is a `linalg.generic` carrying
    `library_call = "nora_wgrad_f32"` on f32 operands (bf16/f16 inputs are
    extended to f32 first); `nora-lower-ukernel-calls` turns it into a call
    to the CPU micro-kernel after bufferization. Its sum is in the same k
    order, with fused multiply-adds.
  }];
  let options = [
    Option<"useUkernels", "use-ukernels", "bool", /*default=*/"false",
           "Compute nora.wgrad with the CPU micro-kernel (a library_call)">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect", "::mlir::tensor::TensorDialect"
  ];
}

def NoraFusedStepToPanels : Pass<"nora-fused-step-to-panels"> {
  let summary = "Run nora.fused_wgrad_step as a parallel loop over row panels";
  let description = [{
    The CPU lowering of the fused step. Rows are independent (every epilogue
    op is row-local), so the step becomes an `scf.forall` over panels of
    `rows-per-panel` rows of W. Each iteration computes its panel of the
    gradient, `g[r0:r0+rows, :] = scale * dy[:, r0:r0+rows]^T x (+ acc)`,
    runs the epilogue region on that panel while it is in cache, and inserts
    the panel of W' and M' into the results. The full gradient is never
    materialized. bf16/f16 inputs are extended to f32 once, before the loop.

    Iterations write disjoint rows and each computes its rows in a fixed
    order, so results are bitwise identical for any number of threads.
  }];
  let options = [
    Option<"rowsPerPanel", "rows-per-panel", "int64_t", /*default=*/"0",
           "Rows of W per panel (0: chosen from N and T; best a multiple "
           "of the micro-kernel's 6 rows)">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::linalg::LinalgDialect",
    "::mlir::scf::SCFDialect", "::mlir::tensor::TensorDialect"
  ];
}

def NoraDistinctResultBuffers
    : Pass<"nora-distinct-result-buffers", "::mlir::func::FuncOp"> {
  let summary = "Give every returned memref its own fresh allocation";
  let description = [{
    Runs after bufferization, before results become out-params: a function
    that returns one buffer twice (`return %m1, %m1`, or `u = m_new` of a
    momentum without Nesterov) or returns an argument gets a fresh
    `memref.alloc` and a `memref.copy` for each such result, so that every
    out-param is written on its own and no caller buffer aliases another.
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

def NoraExternDynamicShared
    : Pass<"nora-extern-dynamic-shared", "::mlir::gpu::GPUModuleOp"> {
  let summary = "Declare the kernels' dynamic shared memory external";
  let description = [{
    After `convert-gpu-to-nvvm`: the zero-length, internal address-space-3
    global that `gpu.dynamic_shared_memory` lowers to (`__dynamic_shmem__N`)
    becomes an external declaration. Internal, the NVPTX back end prints it
    as a one-byte kernel-local variable, which ptxas places among the static
    shared memory (at its start): the kernel's dynamic buffers then overlap
    its static ones. External, it is `.extern .shared .align 16 .b8
    __dynamic_shmem__N[];`, CUDA's `extern __shared__` array, which starts
    where the launch's dynamic shared memory does, after the static.

        llvm.mlir.global internal @__dynamic_shmem__0() {addr_space = 3 : i32,
            alignment = 16 : i64, dso_local} : !llvm.array<0 x i8>
      ->
        llvm.mlir.global external @__dynamic_shmem__0() {addr_space = 3 : i32,
            alignment = 16 : i64, dso_local} : !llvm.array<0 x i8>
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

def NoraLowerUkernelCalls : Pass<"nora-lower-ukernel-calls", "::mlir::ModuleOp"> {
  let summary = "Turn linalg ops with a nora_* library_call into micro-kernel calls";
  let description = [{
    After bufferization, each `linalg.generic` on memrefs whose
    `library_call` starts with `nora_` becomes a `func.call` of that name,
    with its operands cast to fully dynamic strided memrefs, and a private
    declaration marked `llvm.emit_c_interface` (so the call goes to
    `_mlir_ciface_<name>` with memref descriptors, which the runtime
    provides).
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::memref::MemRefDialect"];
}

def NoraFusedStepToGPU : Pass<"nora-fused-step-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Lower each nora.fused_wgrad_step (and each row-update chain on a given gradient) to one persistent GPU kernel and one launch";
  let description = [{
    The GPU lowering of the fused step. Each `nora.fused_wgrad_step` whose
    epilogue is the Nora or RMNP chain (`nora.momentum`, optionally
    `nora.orth_project`, `nora.row_normalize`, `nora.apply_update`) becomes a
    `gpu.func` in the module's `gpu.module @nora_kernels` and, in its place,
    one `gpu.launch_func` on buffers (`bufferization.to_buffer` of the
    operands, `memref.alloc` results and a zeroed workspace).

    The kernel is persistent: CTAs loop over 64 x 64 tiles of the gradient,
    row-block-major. Each tile's gradient is computed in registers (exact
    f32 FMAs, bf16/f16 inputs extended to f32), momentum is updated and M' is
    written, and the tile's partial row statistics (f64) go to a per-(row,
    column tile) workspace slot. A CTA then arrives on its row block's
    counter (`fence.acq_rel.gpu` + atomic add), waits for the other column
    tiles (`ld.acquire.gpu`), sums the slots in a fixed order and finishes W'
    from registers. When the grid is smaller than a row block's column tiles,
    the same launch runs in two phases: the first parks U in W', a grid-wide
    barrier, then a streaming pass writes W'. Results are bitwise the same for
    every grid size. The launch must be cooperative (all CTAs resident).

    The launch carries `nora.persistent_tiles` (the number of tiles; the
    runtime sizes the grid from the occupancy), `nora.cooperative`, and
    `nora.operand_roles` (what each kernel operand is: "dy", "x", ["acc",]
    "w", "m", "lr", "wd", "w_new", "m_new", "counters", "row_stats"); the
    workspace allocation is marked `nora.workspace`.

    The same chain outside a fused step, on a gradient given as a tensor
    (the optimizer step alone, e.g. `nora.nora_step` on a gradient from
    autograd, after `nora-decompose`), becomes the same kernel without the
    matmul: it loads the tile of g (64 x 64 tiles) and runs the same epilogue
    and row-block synchronization; its first kernel operand is "g". A chain
    whose intermediates have other uses is left alone. A `nora.wgrad` that
    no step fused becomes the same kernel with an epilogue that stores g
    (`nora_wgrad_N`, roles "dy", "x", ["acc",] "g"; not cooperative).

    A step guarded against non-finite gradients (`nonfinite`, or a chain
    followed by `nora.skip_nonfinite` on its own g, W, M and results) gets
    the guard in its kernel (a per-row probe, kept rows, a flagged-row
    count) and a second kernel, `nora_nonfinite_N`, that writes the i64
    count and with skip_step puts W and M back (docs/nonfinite.md).

    `mainloop` picks how a tile of g is computed: `simt` (exact f32 FMAs,
    64 x 64 tiles), `mma-sync` (tensor cores: mma.sync.m16n8k16 with f32
    accumulation fed by ldmatrix from a 4-stage cp.async ring, 128 x 128
    tiles; bf16 or f16 dy and x with rows and columns that are multiples of
    8), `wgmma` (sm_90a, opt-in: wgmma.mma_async m64n128k16 reading both
    operands from shared memory through descriptors, MN-major with the
    128-byte swizzle, fed by TMA through an mbarrier ring; dy and x get
    tensor maps in the workspace, `nora.tensor_maps` on the launch; the same
    inputs as mma-sync), `wgmma-ws` (sm_90a, opt-in: the wgmma tiles with
    warp specialization, 384 threads: a producer warpgroup issues the TMA
    copies on "full"/"empty" mbarrier pairs, setmaxnreg 56 for it and 184
    for the two consumer warpgroups, whose barriers are named barrier 1 of
    256 threads), `wgmma-pingpong` (sm_90a, opt-in: wgmma-ws's producer and
    ring with ping-pong consumers: each consumer warpgroup computes a whole
    128 x 128 tile, 128 accumulators a thread, setmaxnreg 88 and 200, and
    runs its epilogue on named barrier 1 + w of 128 threads while the other
    one's wgmmas run), `wgmma-tall` (sm_90a, opt-in: wgmma-ws's producer
    with 256 x 128 CTA tiles, each consumer warpgroup a worker on its own
    128 rows of the stage's 256 and the same 128 columns, so that x is read
    once for two row blocks; 3 stages of 64 tokens by default),
    `wgmma-wide` (sm_90a, opt-in: wgmma-tall on its side, 128 x 256 CTA
    tiles, each consumer warpgroup a worker on the same 128 rows and its
    own 128 columns of the stage's 256, so that dy is read once for two
    column tiles and a row block is half as many CTAs) or `auto`
    (mma-sync where it applies, simt
    elsewhere). f32 dy and x take the exact simt mainloop unless
    `allow-tf32` is set: then `auto` and `mma-sync` use tf32 tensor cores
    (mma.sync m16n8k8, inputs rounded to nearest tf32, f32 accumulation;
    rows and columns multiples of 4).

    `row-exchange` picks how the CTAs of a row block meet: `workspace` (the
    default: f64 slots and an arrival counter a row block in the workspace,
    a cooperative launch, the two-phase fallback) or `cluster` (sm_90a,
    opt-in: a step whose row block is at most 16 CTAs runs as
    thread-block clusters of them, `clusters in` on the launch, not
    cooperative; each CTA keeps its slots in dynamic shared memory, and
    after `barrier.cluster.arrive`/`wait` reads the others' through `mapa`
    and `ld.shared::cluster` in column tile order: no counters, no
    statistics workspace; with mainloop auto, simt, mma-sync, wgmma,
    wgmma-ws or wgmma-wide, whose cluster is a row block's 128 x 256 CTA
    tiles, at most 16: 4096 columns; a nonfinite guard keeps its probes and
    count in the workspace).
  }];
  let options = [
    Option<"mainloop", "mainloop", "std::string", /*default=*/"\"auto\"",
           "How a tile of g is computed: auto, simt, mma-sync, wgmma, "
           "wgmma-ws, wgmma-pingpong, wgmma-tall or wgmma-wide">,
    Option<"allowTf32", "allow-tf32", "bool", /*default=*/"false",
           "f32 dy and x may use tf32 tensor cores (mma.sync m16n8k8, "
           "inputs rounded to tf32): with auto and mma-sync">,
    Option<"ringStages", "ring-stages", "int64_t", /*default=*/"0",
           "mainloop=wgmma-ws, wgmma-pingpong, wgmma-tall or wgmma-wide: the "
           "TMA ring's stages, in dynamic shared memory (from 2; 0: 4, "
           "wgmma-tall and wgmma-wide 3, wgmma-wide with the cluster "
           "exchange 5)">,
    Option<"stageTokens", "stage-tokens", "int64_t", /*default=*/"0",
           "mainloop=wgmma-ws, wgmma-pingpong, wgmma-tall or wgmma-wide: the "
           "tokens of a ring stage, a k16 wgmma each 16 (a multiple of 16 up "
           "to 256; 0: 64, wgmma-wide with the cluster exchange 32); the "
           "stages take 512 bytes a token (wgmma-tall and wgmma-wide 768), "
           "at most 192 KiB (wgmma-pingpong 128, wgmma-tall and wgmma-wide "
           "144, wgmma-wide with the cluster exchange 132)">,
    Option<"l2PrefetchTokens", "l2-prefetch-tokens", "int64_t",
           /*default=*/"2048",
           "The kernels prefetch a tile's W and M into L2 this many tokens "
           "before its epilogue (0: no prefetch)">,
    Option<"rowExchange", "row-exchange", "std::string",
           /*default=*/"\"workspace\"",
           "How a row block's CTAs sum its rows' statistics: workspace "
           "(global slots and counters, a cooperative launch) or cluster "
           "(sm_90a, opt-in: the row block's column tiles, at most 16, are "
           "one thread-block cluster that reads its slots through "
           "distributed shared memory)">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect", "::mlir::LLVM::LLVMDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect", "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect", "::mlir::vector::VectorDialect"
  ];
}

def NoraGpuHostToRuntime : Pass<"nora-gpu-host-to-runtime", "::mlir::ModuleOp"> {
  let summary = "Lower the host side of nora-gpu-pipeline's output to LLVM calls into nora's runtime";
  let description = [{
    Runs after `--nora-gpu-pipeline` (format=bin; also its `host=runtime`
    option). Each function with fused-step launches (`gpu.launch_func` with
    the buffers, workspace and zero-fill around it) becomes an `llvm.func` of
    the same name in destination-passing style on device memory:

        i32 @step(ptr dy, ptr x, ptr w, ptr m, f32 lr, f32 wd,
                  ptr w_new, ptr m_new, ptr stream)

    one device pointer per tensor argument (dense, row-major, its declared
    element type, 16-byte aligned), f32 scalars by value, one device
    pointer per result (f32), then the CUstream (null: the default stream);
    it returns 0, or non-zero with the message in
    `nora_runtime_last_error()`. Its body embeds the step's artifact (the
    launch plan as JSON, from the same code as nora-compile, and the cubin
    as globals) and calls `nora_embedded_call` of the runtime library
    (libNoraRuntimeCAPI.so, no LLVM), which validates and loads it on first
    use, then encodes the tensor maps, zero-fills the counters and launches
    the persistent kernels cooperatively, as nora-exec does. The
    `gpu.binary` goes away when no launch is left.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // NORA_CONVERSION_PASSES_TD
