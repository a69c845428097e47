//===- nora-run.cpp - compile and run one nora function --------*- C++ -*-===//
//
//   nora-run FILE.mlir --entry=NAME --input=@a.npy --input=0.01 ...
//            --output=@out.npy ... [--no-fuse] [--device=cpu|cuda]
//            [--repeat=N] [--nonfinite=skip_step|skip_row]
//            [--mainloop=auto|simt|mma-sync|wgmma|wgmma-ws|wgmma-pingpong|
//                        wgmma-tall|wgmma-wide]
//            [--allow-tf32]
//                                              (--device=cuda)
//
// Inputs in argument order: .npy files for tensors (f32 files are rounded to
// nearest even for bf16/f16 arguments, uint16 files give raw bf16/f16 bits,
// f64 and f16 files are converted), plain numbers for f32 scalars. Outputs in
// result order, written as f32 .npy (i64 results as int64 .npy, scalar
// results as 0-d arrays). Any error: a message on stderr, exit 1, and no
// output file.
//
// --device=cuda compiles the function for the GPU (the artifact nora-compile
// writes, kept in memory: CudaRun.h) and runs it with the runtime of
// nora-exec, on CUDA device 0.
//
//===----------------------------------------------------------------------===//

#include "CudaRun.h"

#include "nora/Dialect/Nora/Transforms/Passes.h"
#include "nora/Runtime/CpuJit.h"
#include "nora/Runtime/Npy.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <malloc.h>
#include <unistd.h>

using namespace mlir;
using namespace mlir::nora;
namespace cl = llvm::cl;

static cl::OptionCategory category("nora-run options");
static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<file.mlir>"),
                                      cl::Required, cl::cat(category));
static cl::opt<std::string> entry("entry", cl::desc("Function to run"),
                                  cl::Required, cl::cat(category));
static cl::list<std::string>
    inputs("input",
           cl::desc("Argument: @file.npy for a tensor, a number for "
                    "an f32 scalar (in argument order)"),
           cl::cat(category));
static cl::list<std::string>
    outputs("output", cl::desc("Result: @file.npy (in result order)"),
            cl::cat(category));
static cl::opt<bool> noFuse("no-fuse",
                            cl::desc("Lower op by op (no fusion pass)"),
                            cl::cat(category));
static cl::opt<int64_t> rowsPerPanel(
    "rows-per-panel",
    cl::desc("Rows of W per panel of a fused step on the CPU (0: automatic)"),
    cl::init(0), cl::cat(category));
static cl::opt<std::string> device("device", cl::desc("cpu (default) or cuda"),
                                   cl::init("cpu"), cl::cat(category));
static cl::opt<std::string> mainloop(
    "mainloop",
    cl::desc("--device=cuda: how the kernel computes a tile of the gradient: "
             "auto (tensor cores for bf16/f16), simt, mma-sync, wgmma, "
             "wgmma-ws, wgmma-pingpong, wgmma-tall or wgmma-wide (sm_90a)"),
    cl::init("auto"), cl::cat(category));
static cl::opt<bool> allowTf32(
    "allow-tf32",
    cl::desc("--device=cuda: f32 inputs may use tf32 tensor cores (inputs "
             "rounded to tf32; the default is exact f32)"),
    cl::init(false), cl::cat(category));
static cl::opt<std::string> nonfinite(
    "nonfinite",
    cl::desc("Guard every step against a non-finite gradient: skip_step (W "
             "and M stay bit for bit unchanged) or skip_row (only those "
             "rows); prints 'nonfinite skipped_steps=K' or "
             "'nonfinite skipped_rows=K' (--device=cuda: one step, whose "
             "kernels count)"),
    cl::init(""), cl::cat(category));
static cl::opt<unsigned>
    repeat("repeat",
           cl::desc("Run N times and print 'time_ms median=.. min=.. runs=N'"),
           cl::init(0), cl::cat(category));

namespace {

/// Every failure is reported through this: message, exit status 1.
[[noreturn]] void fail(const llvm::Twine &message) {
  llvm::errs() << "nora-run: error: " << message << "\n";
  std::exit(1);
}

std::string typeString(Type type) {
  std::string str;
  llvm::raw_string_ostream os(str);
  os << type;
  return str;
}

std::string shapeString(llvm::ArrayRef<int64_t> shape) {
  std::string str;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      str += "x";
    str += ShapedType::isDynamic(shape[i]) ? "?" : std::to_string(shape[i]);
  }
  return str.empty() ? "scalar" : str;
}

/// Reads the .npy file of argument `index` and converts it to the bytes of
/// a tensor of type `type`.
nora::runtime::Buffer loadTensor(unsigned index, llvm::StringRef spec,
                                 RankedTensorType type) {
  std::string where = "input #" + std::to_string(index);
  if (!spec.starts_with("@"))
    fail(where + " is a tensor of type " + typeString(type) +
         ": pass it as @file.npy, got '" + spec.str() + "'");
  std::string path = spec.drop_front().str();
  nora::npy::Array array;
  std::string error = nora::npy::read(path, array);
  if (!error.empty())
    fail(where + ": " + error);
  if (array.shape.size() != size_t(type.getRank()))
    fail(where + " ('" + path + "'): shape mismatch: the argument is " +
         typeString(type) + " but the file holds shape " +
         shapeString(array.shape));
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (!type.isDynamicDim(d) && type.getDimSize(d) != array.shape[d])
      fail(where + " ('" + path + "'): shape mismatch: the argument is " +
           typeString(type) + " but the file holds shape " +
           shapeString(array.shape));

  nora::runtime::Buffer buffer;
  buffer.shape = array.shape;
  Type elem = type.getElementType();
  nora::npy::ElementKind kind = elem.isF32()    ? nora::npy::ElementKind::F32
                                : elem.isBF16() ? nora::npy::ElementKind::BF16
                                                : nora::npy::ElementKind::F16;
  if (!nora::npy::toElements(array, kind, buffer.data))
    fail(where + " ('" + path + "'): dtype mismatch: the argument is " +
         typeString(type) + " but the file holds " +
         nora::npy::dtypeName(array) +
         " (use float32, float64 or float16; uint16 for raw bf16/f16 bits)");
  return buffer;
}

float parseScalar(unsigned index, llvm::StringRef spec) {
  std::string where = "input #" + std::to_string(index);
  if (spec.starts_with("@"))
    fail(where + " is an f32 scalar: pass a number, got '" + spec.str() + "'");
  std::string text = spec.str();
  float value = 0.0f;
  switch (nora::npy::parseF32(text, value)) {
  case nora::npy::ScalarStatus::Ok:
    break;
  case nora::npy::ScalarStatus::NotANumber:
    fail(where + " is an f32 scalar: '" + text + "' is not a number");
  case nora::npy::ScalarStatus::NotFinite:
    fail(where + ": '" + text +
         "' is not a finite number (a non-finite lr "
         "or wd would corrupt every weight)");
  case nora::npy::ScalarStatus::OutOfRange:
    fail(where + ": '" + text + "' is out of range for f32");
  }
  return value;
}

/// --device and the options that only one device has.
void checkDevice() {
  if (device == "cpu") {
    if (mainloop.getNumOccurrences())
      fail("--mainloop is an option of --device=cuda");
    if (allowTf32)
      fail("--allow-tf32 is an option of --device=cuda");
    return;
  }
  if (device != "cuda")
    fail("unknown --device='" + device + "' (expected cpu or cuda)");
  // The GPU kernel has no panels; it guards the steps the IR guards.
  if (rowsPerPanel.getNumOccurrences())
    fail("--rows-per-panel is an option of --device=cpu");
}

/// --device=cuda --nonfinite: guards the one unguarded step of `func`,
/// which then also returns the step's count (an i64: a GPU artifact has no
/// host arithmetic to sum the counts of several steps).
void guardForCuda(func::FuncOp func) {
  PassManager pm(func.getContext(), func::FuncOp::getOperationName());
  NoraGuardNonfiniteOptions options;
  options.mode = nonfinite;
  options.appendSingleCount = true;
  pm.addPass(createNoraGuardNonfinite(options));
  if (failed(pm.run(func)))
    fail("--device=cuda --nonfinite guards one optimizer step and returns "
         "its count (see the diagnostics above); to guard several, guard "
         "them in the IR (nonfinite = \"skip_row\" or \"skip_step\", "
         "docs/nonfinite.md): the function returns each count");
}

/// Prints the count of a run with --nonfinite (its last result, an i64)
/// and drops it from `results`.
void printSkipped(std::vector<nora::runtime::Buffer> &results) {
  const nora::runtime::Buffer &count = results.back();
  int64_t skipped = 0;
  std::memcpy(&skipped, count.data.data(), sizeof(skipped));
  results.pop_back();
  std::printf("nonfinite skipped_%s=%lld\n",
              nonfinite == "skip_row" ? "rows" : "steps",
              static_cast<long long>(skipped));
}

/// Writes all outputs, each first to a temporary name and renamed only when
/// every file is complete: an error leaves no output file behind.
void writeOutputs(const std::vector<nora::runtime::Buffer> &results) {
  std::vector<std::string> temporaries;
  auto cleanup = [&]() {
    for (const std::string &t : temporaries)
      std::remove(t.c_str());
  };
  for (size_t i = 0; i < results.size(); ++i) {
    std::string path = llvm::StringRef(outputs[i]).drop_front().str();
    std::string temporary =
        path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(i);
    std::string error =
        results[i].isInteger
            ? nora::npy::writeI64(
                  temporary, results[i].shape,
                  reinterpret_cast<const int64_t *>(results[i].data.data()))
            : nora::npy::writeF32(
                  temporary, results[i].shape,
                  reinterpret_cast<const float *>(results[i].data.data()));
    if (!error.empty()) {
      cleanup();
      // Name the file the user asked for, not the temporary one.
      std::string reason = error.substr(error.find("':") == std::string::npos
                                            ? error.size()
                                            : error.find("':") + 2);
      fail("output #" + std::to_string(i) + ": cannot write output file '" +
           path + "'" + (reason.empty() ? "" : ":" + reason));
    }
    temporaries.push_back(temporary);
  }
  for (size_t i = 0; i < results.size(); ++i) {
    std::string path = llvm::StringRef(outputs[i]).drop_front().str();
    if (std::rename(temporaries[i].c_str(), path.c_str()) != 0) {
      cleanup();
      fail("cannot write output file '" + path + "'");
    }
  }
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  // The compiled steps allocate panel-sized temporaries on every call; keep
  // freed memory in the heap instead of returning it to the kernel, so that
  // repeated steps do not page-fault it back in.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "nora-run: compile and run one nora function\n");
  checkDevice();
  if (!nonfinite.empty() && nonfinite != "skip_step" && nonfinite != "skip_row")
    fail("unknown --nonfinite='" + nonfinite +
         "' (expected skip_step or skip_row)");

  MLIRContext context;
  nora::runtime::registerDialects(context);
  if (device == "cuda")
    registerCudaRunDialects(context);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context, llvm::errs());
  std::string openError;
  auto file = openInputFile(inputFile, &openError);
  if (!file)
    fail("cannot open '" + inputFile + "': " + openError);
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    fail("'" + inputFile +
         "' is not valid nora IR (see the diagnostics above)");

  auto func = module->lookupSymbol<func::FuncOp>(entry);
  if (!func) {
    std::string names;
    module->walk([&](func::FuncOp f) {
      names += (names.empty() ? "" : ", ") + f.getSymName().str();
    });
    fail("no function '" + entry + "' in '" + inputFile +
         "' (it has: " + (names.empty() ? std::string("none") : names) + ")");
  }

  // Check the signature and the command line against each other.
  FunctionType type = func.getFunctionType();
  if (inputs.size() != type.getNumInputs())
    fail("@" + entry + " takes " + std::to_string(type.getNumInputs()) +
         " arguments but " + std::to_string(inputs.size()) +
         " --input were given");
  if (outputs.size() != type.getNumResults())
    fail("@" + entry + " returns " + std::to_string(type.getNumResults()) +
         " results but " + std::to_string(outputs.size()) +
         " --output were given");
  for (auto [i, spec] : llvm::enumerate(outputs))
    if (!llvm::StringRef(spec).starts_with("@") || spec.size() < 2)
      fail("output #" + std::to_string(i) + ": pass it as @file.npy, got '" +
           spec + "'");

  std::string signatureError = nora::runtime::checkSignature(func);
  if (!signatureError.empty())
    fail(signatureError);

  // Load every input before compiling, so that bad input fails fast.
  std::vector<nora::runtime::Argument> arguments;
  for (auto [i, argType] : llvm::enumerate(type.getInputs())) {
    nora::runtime::Argument argument;
    if (auto tensor = dyn_cast<RankedTensorType>(argType)) {
      argument.tensor = loadTensor(i, inputs[i], tensor);
      argument.isTensor = true;
    } else {
      argument.scalar = parseScalar(i, inputs[i]);
    }
    arguments.push_back(std::move(argument));
  }

  if (device == "cuda") {
    if (!nonfinite.empty())
      guardForCuda(func);
    CudaRunResult run;
    std::string error = runOnCuda(*module, entry, arguments, mainloop,
                                  allowTf32, !noFuse, repeat, run);
    if (!error.empty())
      fail(error);
    if (!nonfinite.empty())
      printSkipped(run.results);
    writeOutputs(run.results);
    if (repeat > 0)
      std::printf("time_ms median=%.4f min=%.4f runs=%u\n", run.medianMs,
                  run.minMs, unsigned(repeat));
    return 0;
  }

  nora::runtime::CompileOptions options;
  options.fuse = !noFuse;
  options.rowsPerPanel = rowsPerPanel;
  options.nonfinite = nonfinite;
  std::string error;
  std::unique_ptr<nora::runtime::CompiledFunction> compiled =
      nora::runtime::compile(*module, entry, options, error);
  if (!compiled)
    fail(error);

  std::vector<nora::runtime::Buffer> results;
  unsigned runs = std::max(1u, unsigned(repeat));
  std::vector<double> times;
  for (unsigned r = 0; r < runs; ++r) {
    auto start = std::chrono::steady_clock::now();
    if (!compiled->run(arguments, results, error))
      fail(error);
    auto stop = std::chrono::steady_clock::now();
    times.push_back(
        std::chrono::duration<double, std::milli>(stop - start).count());
  }
  // The guard's count is the one result past the function's own.
  if (!nonfinite.empty())
    printSkipped(results);
  writeOutputs(results);
  if (repeat > 0) {
    std::sort(times.begin(), times.end());
    double median =
        times.size() % 2
            ? times[times.size() / 2]
            : 0.5 * (times[times.size() / 2 - 1] + times[times.size() / 2]);
    std::printf("time_ms median=%.4f min=%.4f runs=%u\n", median, times[0],
                runs);
  }
  return 0;
}
