//===- CudaRun.cpp - nora-run --device=cuda -------------------------------===//

#include "CudaRun.h"

#include "nora/Artifact/StepArtifact.h"
#include "nora/Pipelines/Pipelines.h"
#include "nora/Runtime/CudaArtifact.h"
#include "nora/Runtime/CudaDriver.h"
#include "nora/Runtime/CudaExecutable.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

#include <cstring>

using namespace mlir;
using namespace mlir::nora;

void mlir::nora::registerCudaRunDialects(MLIRContext &context) {
  DialectRegistry registry;
  registerAllToLLVMIRTranslations(registry);
  context.appendDialectRegistry(registry);
}

/// The chip to compile for on a device of compute capability major.minor.
static std::string chipFor(int major, int minor, std::string &error) {
  if (major == 9 && minor == 0)
    return "sm_90a";
  if (major == 8)
    return "sm_80";
  error = "--device=cuda: the GPU pipeline compiles for sm_80 (compute "
          "capability 8.x) and sm_90a (9.0), but the device is sm_" +
          std::to_string(major) + std::to_string(minor);
  return "";
}

std::string mlir::nora::runOnCuda(ModuleOp module, StringRef entry,
                                  const std::vector<runtime::Argument> &args,
                                  StringRef mainloop, bool allowTf32, bool fuse,
                                  unsigned repeat, CudaRunResult &out) {
  // Which chip: ask the device before compiling anything.
  runtime::cuda::Device probe;
  std::string error = runtime::cuda::Device::open(0, probe);
  if (!error.empty())
    return "--device=cuda: no usable CUDA driver or GPU: " + error;
  int major = probe.computeMajor, minor = probe.computeMinor;
  probe.close();
  std::string chip = chipFor(major, minor, error);
  if (chip.empty())
    return error;

  // The artifact nora-compile would write, in memory.
  GpuPipelineOptions options;
  options.chip = chip;
  options.mainloop = mainloop.str();
  options.allowTf32 = allowTf32;
  options.fuse = fuse;
  options.format = "bin";
  if (failed(checkGpuPipelineOptions(options, [&](const Twine &message) {
        error = message.str();
        return failure();
      })))
    return error;
  OwningOpRef<ModuleOp> lowered(module.clone());
  PassManager pm(module->getContext());
  buildGpuPipeline(pm, options);
  if (failed(pm.run(*lowered)))
    return "--device=cuda: the GPU pipeline failed (see the diagnostics "
           "above)";
  FailureOr<StepArtifact> artifact = extractStepArtifact(*lowered, entry, chip);
  if (failed(artifact))
    return "--device=cuda: the function cannot run as a GPU artifact (see "
           "the diagnostics above)";

  runtime::Plan plan;
  error = runtime::parsePlan(artifact->planJson, "<in-memory artifact>", plan);
  if (!error.empty())
    return error;
  for (runtime::KernelSpec &kernel : plan.kernels)
    kernel.cubin.assign(artifact->cubin.begin(), artifact->cubin.end());

  // Arguments in the plan's order, the function's (setArguments checks
  // their count and sizes).
  std::vector<runtime::HostArgument> hostArgs(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    hostArgs[i].isTensor = args[i].isTensor;
    hostArgs[i].bytes = args[i].tensor.data;
    hostArgs[i].scalar = args[i].scalar;
  }

  std::unique_ptr<runtime::Executable> executable;
  error = runtime::Executable::load(plan, 0, executable);
  if (error.empty())
    error = executable->setArguments(hostArgs);
  runtime::Timing timing;
  if (error.empty())
    error = repeat > 0 ? executable->time(repeat, timing) : executable->run();
  std::vector<std::vector<uint8_t>> results;
  if (error.empty())
    error = executable->getResults(results);
  if (!error.empty())
    return "--device=cuda: " + error;
  out.medianMs = timing.medianMs;
  out.minMs = timing.minMs;
  out.results.clear();
  for (size_t i = 0; i < results.size(); ++i) {
    runtime::Buffer buffer;
    buffer.shape = plan.results[i].shape;
    buffer.isInteger = plan.results[i].dtype == runtime::ElementType::I64;
    buffer.data = std::move(results[i]);
    out.results.push_back(std::move(buffer));
  }
  return "";
}
