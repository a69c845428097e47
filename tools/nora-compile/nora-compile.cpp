//===- nora-compile.cpp - compile a step into a GPU artifact ---*- C++ -*-===//
//
//   nora-compile FILE.mlir -o STEP.nora [--entry=NAME] [--chip=sm_90a|sm_80]
//                [--emit-ptx=FILE] [--cuda-path=DIR]
//
// Runs the GPU pipeline (decompose, fuse, one persistent kernel a fused
// step, NVVM, ptxas) on function NAME and writes the artifact directory that
// nora-exec runs on the GPU machine (docs/artifact.md). Any error: a message
// on stderr, exit status 1, and no artifact (or PTX file) written.
//
//===----------------------------------------------------------------------===//

#include "nora/Artifact/StepArtifact.h"
#include "nora/InitAllNora.h"
#include "nora/Pipelines/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::nora;
namespace cl = llvm::cl;

static cl::OptionCategory category("nora-compile options");
static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<file.mlir>"),
                                      cl::Required, cl::cat(category));
static cl::opt<std::string> outputDir("o",
                                      cl::desc("The artifact directory to "
                                               "write (e.g. step.nora)"),
                                      cl::value_desc("dir"), cl::Required,
                                      cl::cat(category));
static cl::opt<std::string>
    entry("entry",
          cl::desc("The function to compile (default: the only public one)"),
          cl::cat(category));
static cl::opt<std::string> chip("chip", cl::desc("sm_90a (default) or sm_80"),
                                 cl::init("sm_90a"), cl::cat(category));
static cl::opt<std::string>
    mainloop("mainloop",
             cl::desc("How the kernel computes a tile of the gradient: auto "
                      "(default: tensor cores for bf16/f16 inputs), simt "
                      "(exact f32 FMAs), mma-sync (tensor cores), wgmma "
                      "(sm_90a tensor cores, opt-in), wgmma-ws (wgmma "
                      "with a TMA producer warpgroup, opt-in) or "
                      "wgmma-pingpong (wgmma-ws with a tile a consumer "
                      "warpgroup, opt-in), wgmma-tall (wgmma-ws with "
                      "256 x 128 CTA tiles, opt-in) or wgmma-wide (128 x "
                      "256 CTA tiles, opt-in)"),
             cl::init("auto"), cl::cat(category));
static cl::opt<bool>
    allowTf32("allow-tf32",
              cl::desc("f32 inputs may use tf32 tensor cores (inputs "
                       "rounded to tf32; the default is exact f32)"),
              cl::init(false), cl::cat(category));
static cl::opt<int64_t> ringStages(
    "ring-stages",
    cl::desc("--mainloop=wgmma-ws, wgmma-pingpong, wgmma-tall or "
             "wgmma-wide: the TMA ring's stages, in dynamic shared memory "
             "(from 2; default 4, wgmma-tall and wgmma-wide 3)"),
    cl::init(0), cl::cat(category));
static cl::opt<int64_t> stageTokens(
    "stage-tokens",
    cl::desc("--mainloop=wgmma-ws, wgmma-pingpong, wgmma-tall or "
             "wgmma-wide: the tokens of a ring stage, one k16 wgmma each 16 "
             "(a multiple of 16 up to 256; default 64); the stages take 512 "
             "bytes a token (wgmma-tall and wgmma-wide 768), at most 192 KiB "
             "(wgmma-pingpong 128, wgmma-tall and wgmma-wide 144)"),
    cl::init(0), cl::cat(category));
static cl::opt<int64_t> l2PrefetchTokens(
    "l2-prefetch-tokens",
    cl::desc("The kernels prefetch a tile's W and M into L2 this many "
             "tokens before its epilogue (0: no prefetch; default 2048)"),
    cl::init(2048), cl::cat(category));
static cl::opt<std::string> rowExchange(
    "row-exchange",
    cl::desc("How a row block's CTAs sum its rows' statistics: workspace "
             "(default; global slots and counters, a cooperative launch) or "
             "cluster (sm_90a, opt-in: one thread-block cluster a row block "
             "of at most 16 CTAs, 2048 columns, 4096 with wgmma-wide, "
             "through distributed shared memory)"),
    cl::init("workspace"), cl::cat(category));
static cl::opt<bool>
    noFuse("no-fuse",
           cl::desc("Do not fuse weight gradients into their steps: the "
                    "gradient is its own kernel (g through the workspace)"),
           cl::init(false), cl::cat(category));
static cl::opt<std::string> emitPtx("emit-ptx",
                                    cl::desc("Also write the kernels' PTX"),
                                    cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string> cudaPath("cuda-path",
                                     cl::desc("The CUDA toolkit (ptxas, "
                                              "libdevice)"),
                                     cl::init("/usr/local/cuda"),
                                     cl::cat(category));

static int fail(const Twine &message) {
  llvm::errs() << "nora-compile: error: " << message << "\n";
  return 1;
}

/// The function to compile: --entry, or the only public function.
static FailureOr<std::string> chooseEntry(ModuleOp module) {
  if (!entry.empty())
    return entry.getValue();
  SmallVector<func::FuncOp> candidates;
  for (auto func : module.getOps<func::FuncOp>())
    if (func.isPublic() && !func.isExternal())
      candidates.push_back(func);
  if (candidates.size() != 1) {
    fail(Twine(candidates.size()) +
         " public functions in the module; choose one with --entry");
    return failure();
  }
  return candidates.front().getSymName().str();
}

/// Runs the GPU pipeline on `module` with `format`.
static LogicalResult lower(ModuleOp module, StringRef format) {
  GpuPipelineOptions options;
  options.chip = chip;
  options.mainloop = mainloop;
  options.allowTf32 = allowTf32;
  options.ringStages = ringStages;
  options.stageTokens = stageTokens;
  options.l2PrefetchTokens = l2PrefetchTokens;
  options.rowExchange = rowExchange;
  options.fuse = !noFuse;
  options.format = format.str();
  options.cudaPath = cudaPath;
  if (failed(checkGpuPipelineOptions(options, [](const Twine &message) {
        return failure(fail(message) != 0);
      })))
    return failure();
  PassManager pm(module->getContext());
  buildGpuPipeline(pm, options);
  return pm.run(module);
}

/// The PTX of the kernels (format=isa) of a copy of `original`.
static FailureOr<std::string> lowerToPtx(ModuleOp original) {
  OwningOpRef<ModuleOp> module(original.clone());
  if (failed(lower(*module, "isa")))
    return failure();
  auto binary = module->lookupSymbol<gpu::BinaryOp>("nora_kernels");
  if (!binary || binary.getObjects().empty())
    return failure();
  return cast<gpu::ObjectAttr>(binary.getObjects()[0])
      .getObject()
      .getValue()
      .str();
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "nora-compile: compile a nora step into a GPU artifact (plan.json + "
      "cubin) for nora-exec\n");

  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  registerNoraDialect(registry);
  MLIRContext context(registry);
  // A diagnostic names its source line; the op dumped after it would
  // print operands defined elsewhere as <<UNKNOWN SSA VALUE>>.
  context.printOpOnDiagnostic(false);
  context.loadAllAvailableDialects();

  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> buffer = openInputFile(inputFile, &error);
  if (!buffer)
    return fail(error);
  llvm::SourceMgr sources;
  sources.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  SourceMgrDiagnosticHandler diagnostics(sources, &context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sources, &context);
  if (!module)
    return 1;
  FailureOr<std::string> name = chooseEntry(*module);
  if (failed(name))
    return 1;
  if (!module->lookupSymbol<func::FuncOp>(*name))
    return fail("no function @" + *name + " in '" + inputFile + "'");

  std::optional<std::string> ptx;
  if (!emitPtx.empty()) {
    FailureOr<std::string> text = lowerToPtx(*module);
    if (failed(text))
      return 1;
    ptx = std::move(*text);
  }
  if (failed(lower(*module, "bin")))
    return 1;
  FailureOr<StepArtifact> artifact = extractStepArtifact(*module, *name, chip);
  if (failed(artifact))
    return 1;

  // Outputs last, each complete or not at all.
  std::unique_ptr<llvm::ToolOutputFile> ptxFile;
  if (ptx) {
    ptxFile = openOutputFile(emitPtx, &error);
    if (!ptxFile)
      return fail(error);
    ptxFile->os() << *ptx;
  }
  if (failed(writeStepArtifact(*artifact, outputDir, error)))
    return fail(error);
  if (ptxFile)
    ptxFile->keep();

  llvm::outs() << "nora-compile: wrote " << outputDir << " (@" << *name << ", "
               << chip << ", " << artifact->numKernels << " kernel(s), cubin "
               << artifact->cubin.size() << " bytes)\n";
  return 0;
}
