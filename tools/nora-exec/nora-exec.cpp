//===- nora-exec.cpp - run a compiled step artifact on a GPU ----*- C++ -*-===//
//
//   nora-exec ARTIFACT --input=@a.npy --input=0.01 ... --output=@out.npy ...
//             [--repeat=N] [--device=ORDINAL]
//   nora-exec ARTIFACT --print-plan
//   nora-exec --probe
//
// The GPU-side half of "compile here, run there": it links no LLVM or MLIR.
// Inputs in argument order: .npy files for tensors (f32, f64 and f16 files are
// rounded to nearest even for bf16/f16 arguments, uint16 files give raw
// bf16/f16 bits), plain numbers for f32 scalars. Outputs in result order,
// written as f32 .npy. Any error: "nora-exec: error: ..." on stderr, exit 1,
// and no output file.
//
//===----------------------------------------------------------------------===//

#include "nora/Runtime/CudaArtifact.h"
#include "nora/Runtime/CudaExecutable.h"
#include "nora/Runtime/Npy.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <unistd.h>
#include <vector>

using namespace mlir::nora;
using namespace mlir::nora::runtime;

namespace {

const char *const kUsage =
    "usage: nora-exec ARTIFACT [--input=@file.npy|--input=NUMBER]...\n"
    "                 [--output=@file.npy]... [--repeat=N] [--device=N]\n"
    "                 [--max-ctas=N]\n"
    "       nora-exec ARTIFACT --print-plan\n"
    "       nora-exec --probe\n"
    "\n"
    "Runs a compiled nora step (a NAME.nora/ directory with plan.json and\n"
    "cubins, see docs/artifact.md) on a CUDA GPU.\n"
    "\n"
    "  --input=SPEC     one per argument, in order: @file.npy for a tensor\n"
    "                   (f32/f64/f16 files are rounded to bf16/f16; uint16\n"
    "                   files give raw bf16/f16 bits), a number for an f32\n"
    "                   scalar\n"
    "  --output=@FILE   one per result, in order, written as f32 .npy\n"
    "  --repeat=N       run N times and print\n"
    "                   'time_ms median=<ms> min=<ms> runs=<N>'\n"
    "  --device=N       the CUDA device ordinal (default 0)\n"
    "  --max-ctas=N     launch persistent kernels on at most N CTAs (default:\n"
    "                   as many as can be resident; a smaller grid exercises\n"
    "                   a kernel's small-grid path, e.g. the fused step's\n"
    "                   two phases)\n"
    "  --print-plan     validate the artifact and print a summary (no GPU)\n"
    "  --probe          exit 0 when a CUDA driver and device are usable\n"
    "  --help           print this message\n";

/// Every failure is reported through this: message, exit status 1.
[[noreturn]] void fail(const std::string &message) {
  std::fprintf(stderr, "nora-exec: error: %s\n", message.c_str());
  std::exit(1);
}

struct Options {
  std::string artifact;
  std::vector<std::string> inputs, outputs;
  unsigned repeat = 0;
  int device = 0;
  int64_t maxCtas = 0;
  bool printPlan = false, probe = false;
};

bool startsWith(const std::string &text, const char *prefix) {
  return text.compare(0, std::strlen(prefix), prefix) == 0;
}

/// A non-negative decimal integer no larger than `max`, or fail.
int64_t parseCount(const std::string &option, const std::string &text,
                   int64_t max) {
  if (text.empty() || text.size() > 18 ||
      text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoll(text) > max)
    fail(option + " expects an integer in [0, " + std::to_string(max) +
         "], got '" + text + "'");
  return std::stoll(text);
}

Options parseCommandLine(int argc, char **argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (startsWith(arg, "--input=")) {
      options.inputs.push_back(arg.substr(8));
    } else if (startsWith(arg, "--output=")) {
      options.outputs.push_back(arg.substr(9));
    } else if (startsWith(arg, "--repeat=")) {
      options.repeat = unsigned(parseCount("--repeat", arg.substr(9), 1000000));
    } else if (startsWith(arg, "--device=")) {
      options.device = int(parseCount("--device", arg.substr(9), 1024));
    } else if (startsWith(arg, "--max-ctas=")) {
      options.maxCtas = parseCount("--max-ctas", arg.substr(11),
                                   std::numeric_limits<int32_t>::max());
      if (options.maxCtas == 0)
        fail("--max-ctas expects at least 1 CTA");
    } else if (arg == "--print-plan") {
      options.printPlan = true;
    } else if (arg == "--probe") {
      options.probe = true;
    } else if (startsWith(arg, "-") && arg != "-") {
      fail("unknown option '" + arg + "' (see --help)");
    } else if (options.artifact.empty()) {
      options.artifact = arg;
    } else {
      fail("more than one artifact given: '" + options.artifact + "' and '" +
           arg + "'");
    }
  }
  if (options.artifact.empty() && !options.probe)
    fail("no artifact given (see --help)");
  return options;
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? "x" : "") + std::to_string(shape[i]);
  return text.empty() ? "scalar" : text;
}

/// Reads the .npy file for tensor argument `index` and converts it to the
/// bytes of the argument's dtype.
HostArgument loadTensor(size_t index, const std::string &spec,
                        const ValueSpec &argument) {
  std::string where = "input #" + std::to_string(index) + " (" + argument.name +
                      ", " + argument.typeString() + ")";
  if (!startsWith(spec, "@") || spec.size() < 2)
    fail(where + " is a tensor: pass it as @file.npy, got '" + spec + "'");
  std::string path = spec.substr(1);
  npy::Array array;
  std::string error = npy::read(path, array);
  if (!error.empty())
    fail(where + ": " + error);
  if (array.shape != argument.shape)
    fail(where + ": shape mismatch: the file '" + path + "' holds shape " +
         shapeString(array.shape) + ", the argument is " +
         shapeString(argument.shape));

  HostArgument host;
  host.isTensor = true;
  npy::ElementKind kind =
      argument.dtype == ElementType::F32    ? npy::ElementKind::F32
      : argument.dtype == ElementType::BF16 ? npy::ElementKind::BF16
                                            : npy::ElementKind::F16;
  if (!npy::toElements(array, kind, host.bytes))
    fail(where + ": dtype mismatch: the file '" + path + "' holds " +
         npy::dtypeName(array) + " (use float32, float64 or float16" +
         (argument.dtype != ElementType::F32 ? "; uint16 for raw bits)" : ")"));
  return host;
}

HostArgument parseScalar(size_t index, const std::string &text,
                         const ValueSpec &argument) {
  std::string where = "input #" + std::to_string(index) + " (" + argument.name +
                      ", " + argument.typeString() + ")";
  if (startsWith(text, "@"))
    fail(where + " is a scalar: pass a number, got '" + text + "'");
  HostArgument host;
  switch (npy::parseF32(text, host.scalar)) {
  case npy::ScalarStatus::Ok:
    break;
  case npy::ScalarStatus::NotANumber:
    fail(where + ": '" + text + "' is not a number");
  case npy::ScalarStatus::NotFinite:
    fail(where + ": '" + text + "' is not a finite number");
  case npy::ScalarStatus::OutOfRange:
    fail(where + ": '" + text + "' is out of range for f32");
  }
  return host;
}

/// Writes all outputs, each first to a temporary name and renamed only when
/// every file is complete: an error leaves no output file behind.
void writeOutputs(const Options &options, const Plan &plan,
                  const std::vector<std::vector<uint8_t>> &results) {
  std::vector<std::string> temporaries;
  auto cleanup = [&]() {
    for (const std::string &temporary : temporaries)
      std::remove(temporary.c_str());
  };
  for (size_t i = 0; i < results.size(); ++i) {
    std::string path = options.outputs[i].substr(1);
    std::string temporary =
        path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(i);
    // An i64 count is a 0-d int64 .npy, as nora-run writes it.
    std::string error =
        plan.results[i].dtype == ElementType::I64
            ? npy::writeI64(
                  temporary, {},
                  reinterpret_cast<const int64_t *>(results[i].data()))
            : npy::writeF32(temporary, plan.results[i].shape,
                            reinterpret_cast<const float *>(results[i].data()));
    if (!error.empty()) {
      std::remove(temporary.c_str());
      cleanup();
      fail("output #" + std::to_string(i) + " (" + plan.results[i].name +
           "): cannot write '" + path + "'");
    }
    temporaries.push_back(temporary);
  }
  for (size_t i = 0; i < results.size(); ++i) {
    std::string path = options.outputs[i].substr(1);
    if (std::rename(temporaries[i].c_str(), path.c_str()) != 0) {
      std::string reason = std::strerror(errno);
      for (size_t j = 0; j < i; ++j)
        std::remove(options.outputs[j].substr(1).c_str());
      cleanup();
      fail("output #" + std::to_string(i) + ": cannot write '" + path +
           "': " + reason);
    }
  }
}

} // namespace

int main(int argc, char **argv) {
  Options options = parseCommandLine(argc, argv);
  if (options.probe) {
    cuda::Device device;
    std::string error = cuda::Device::open(options.device, device);
    if (!error.empty())
      fail(error);
    std::printf("cuda device %d: %s\n", options.device,
                device.describe().c_str());
    device.close();
    return 0;
  }

  Plan plan;
  std::string error = loadArtifact(options.artifact, plan);
  if (!error.empty())
    fail(error);
  if (options.printPlan) {
    if (!options.inputs.empty() || !options.outputs.empty())
      fail("--print-plan takes no --input or --output");
    std::fputs(describePlan(plan).c_str(), stdout);
    return 0;
  }

  // The command line against the plan, and every input, before the GPU.
  if (options.inputs.size() != plan.arguments.size())
    fail("the step '" + plan.entry + "' takes " +
         std::to_string(plan.arguments.size()) + " arguments but " +
         std::to_string(options.inputs.size()) + " --input were given");
  if (options.outputs.size() != plan.results.size())
    fail("the step '" + plan.entry + "' returns " +
         std::to_string(plan.results.size()) + " results but " +
         std::to_string(options.outputs.size()) + " --output were given");
  for (size_t i = 0; i < options.outputs.size(); ++i)
    if (!startsWith(options.outputs[i], "@") || options.outputs[i].size() < 2)
      fail("output #" + std::to_string(i) + ": pass it as @file.npy, got '" +
           options.outputs[i] + "'");
  std::vector<HostArgument> arguments;
  for (size_t i = 0; i < plan.arguments.size(); ++i)
    arguments.push_back(
        plan.arguments[i].isTensor
            ? loadTensor(i, options.inputs[i], plan.arguments[i])
            : parseScalar(i, options.inputs[i], plan.arguments[i]));

  std::unique_ptr<Executable> executable;
  error = Executable::load(plan, options.device, executable, options.maxCtas);
  if (error.empty())
    error = executable->setArguments(arguments);
  Timing timing;
  if (error.empty())
    error = options.repeat > 0 ? executable->time(options.repeat, timing)
                               : executable->run();
  std::vector<std::vector<uint8_t>> results;
  if (error.empty())
    error = executable->getResults(results);
  if (!error.empty())
    fail(error);
  executable.reset();
  writeOutputs(options, plan, results);
  if (options.repeat > 0)
    std::printf("time_ms median=%.4f min=%.4f runs=%u\n", timing.medianMs,
                timing.minMs, timing.runs);
  return 0;
}
