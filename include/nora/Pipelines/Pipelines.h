//===- Pipelines.h - nora's pass pipelines ----------------------*- C++ -*-===//
//
// The pipelines read as the table of contents of the compiler: each one is
// the list of passes that takes what a front end writes to what runs.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_PIPELINES_PIPELINES_H
#define NORA_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassOptions.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/Twine.h"

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::nora {

struct CpuPipelineOptions : public PassPipelineOptions<CpuPipelineOptions> {
  PassOptions::Option<bool> fuse{
      *this, "fuse",
      llvm::cl::desc("Fuse the weight-gradient matmul with the optimizer "
                     "chain (false: lower op by op)"),
      llvm::cl::init(true)};
  PassOptions::Option<int64_t> rowsPerPanel{
      *this, "rows-per-panel",
      llvm::cl::desc("Rows of W per panel of the fused CPU step (0: chosen "
                     "from the shapes)"),
      llvm::cl::init(0)};
  PassOptions::Option<bool> threads{
      *this, "threads",
      llvm::cl::desc("Run the row panels of fused steps on OpenMP threads"),
      llvm::cl::init(true)};
};

/// nora ops on tensors -> LLVM dialect for the CPU JIT. Functions take their
/// results as caller-allocated out-params (memrefs) after their arguments.
void buildCpuPipeline(OpPassManager &pm, const CpuPipelineOptions &options);

/// Registers `--nora-cpu-pipeline`.
void registerCpuPipeline();

struct GpuPipelineOptions : public PassPipelineOptions<GpuPipelineOptions> {
  PassOptions::Option<std::string> chip{
      *this, "chip",
      llvm::cl::desc("The GPU to compile for: sm_80 (Ampere and later) or "
                     "sm_90a (Hopper)"),
      llvm::cl::init("sm_90a")};
  PassOptions::Option<std::string> format{
      *this, "format",
      llvm::cl::desc("What the gpu.binary holds: bin (cubin), isa (PTX), "
                     "fatbin; none stops at the NVVM dialect"),
      llvm::cl::init("bin")};
  PassOptions::Option<std::string> mainloop{
      *this, "mainloop",
      llvm::cl::desc("How a tile of g is computed: auto (mma-sync for bf16 "
                     "and f16 inputs, simt for the rest), simt (exact f32 "
                     "FMAs), mma-sync (tensor cores), wgmma (sm_90a tensor "
                     "cores through descriptors, opt-in), wgmma-ws (wgmma "
                     "with a TMA producer warpgroup, opt-in) or "
                     "wgmma-pingpong (wgmma-ws with a tile a consumer "
                     "warpgroup, opt-in), wgmma-tall (wgmma-ws with 256 "
                     "x 128 CTA tiles, opt-in) or wgmma-wide (128 x 256 "
                     "CTA tiles, opt-in)"),
      llvm::cl::init("auto")};
  PassOptions::Option<bool> fuse{
      *this, "fuse",
      llvm::cl::desc("Fuse each weight gradient into its optimizer step (one "
                     "kernel); with fuse=0 the gradient is its own kernel "
                     "and the step reads it back"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> allowTf32{
      *this, "allow-tf32",
      llvm::cl::desc("f32 dy and x may use tf32 tensor cores (mma.sync "
                     "m16n8k8, inputs rounded to tf32) with mainloop=auto "
                     "or mma-sync; the default is exact f32"),
      llvm::cl::init(false)};
  PassOptions::Option<int64_t> ringStages{
      *this, "ring-stages",
      llvm::cl::desc("mainloop=wgmma-ws, wgmma-pingpong, wgmma-tall or "
                     "wgmma-wide: the TMA ring's stages (from 2; 0: 4, "
                     "wgmma-tall and wgmma-wide 3)"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> stageTokens{
      *this, "stage-tokens",
      llvm::cl::desc(
          "mainloop=wgmma-ws, wgmma-pingpong, wgmma-tall or wgmma-wide: the "
          "tokens of a ring stage (a multiple of 16 up to 256; 0: 64); the "
          "ring takes 512 bytes a token and stage (wgmma-tall and "
          "wgmma-wide 768), at most 192 KiB (wgmma-pingpong 128, wgmma-tall "
          "and wgmma-wide 144)"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> l2PrefetchTokens{
      *this, "l2-prefetch-tokens",
      llvm::cl::desc("The kernels prefetch a tile's W and M into L2 this "
                     "many tokens before its epilogue (0: no prefetch)"),
      llvm::cl::init(2048)};
  PassOptions::Option<std::string> rowExchange{
      *this, "row-exchange",
      llvm::cl::desc("How a row block's CTAs sum its rows' statistics: "
                     "workspace (global slots and counters, a cooperative "
                     "launch) or cluster (sm_90a, opt-in: one thread-block "
                     "cluster a row block of at most 16 CTAs, 2048 "
                     "columns, 4096 with wgmma-wide, through distributed "
                     "shared memory)"),
      llvm::cl::init("workspace")};
  PassOptions::Option<std::string> host{
      *this, "host",
      llvm::cl::desc("The host side: launch (gpu.launch_func on buffers, "
                     "what nora-compile reads) or runtime (LLVM functions "
                     "on device pointers that call nora's runtime: "
                     "--nora-gpu-host-to-runtime; needs format=bin)"),
      llvm::cl::init("launch")};
  PassOptions::Option<std::string> ptxasOptions{
      *this, "ptxas-options",
      llvm::cl::desc("Extra options for ptxas (e.g. -v)"), llvm::cl::init("")};
  PassOptions::Option<std::string> cudaPath{
      *this, "cuda-path",
      llvm::cl::desc("The CUDA toolkit (libdevice, and ptxas when it is not "
                     "on PATH)"),
      llvm::cl::init("/usr/local/cuda")};
};

/// Checks the chip and format of `options`; reports through `error`.
LogicalResult
checkGpuPipelineOptions(const GpuPipelineOptions &options,
                        function_ref<LogicalResult(const Twine &)> error);

/// nora ops on tensors -> a host function with one cooperative
/// gpu.launch_func per fused step (on buffers in the runtime's launch
/// convention) and a gpu.binary holding the kernels. `options` must pass
/// checkGpuPipelineOptions.
void buildGpuPipeline(OpPassManager &pm, const GpuPipelineOptions &options);

/// Registers `--nora-gpu-pipeline`.
void registerGpuPipeline();

} // namespace mlir::nora

#endif // NORA_PIPELINES_PIPELINES_H
