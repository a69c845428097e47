//===- NoraCAPI.cpp - the C API of nora ------------------------*- C++ -*-===//

#include "nora-c/Nora.h"

#include "nora/InitAllNora.h"
#include "nora/Runtime/CpuJit.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

using namespace mlir;
namespace runtime = mlir::nora::runtime;

struct nora_function {
  MLIRContext context;
  std::unique_ptr<runtime::CompiledFunction> compiled;
  struct Arg {
    bool isTensor;
    int dtype;
    std::vector<int64_t> dims;
  };
  std::vector<Arg> arguments;
};

namespace {

char *copyString(const std::string &s) {
  char *out = static_cast<char *>(std::malloc(s.size() + 1));
  if (out)
    std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

int fail(char **error, const std::string &message) {
  if (error)
    *error = copyString(message);
  return 1;
}

/// Collects the diagnostics of a context as text ("loc: error: message").
struct DiagnosticCollector {
  explicit DiagnosticCollector(MLIRContext &context)
      : handler(&context, [this](Diagnostic &diag) {
          llvm::raw_string_ostream os(text);
          os << diag.getLocation() << ": ";
          switch (diag.getSeverity()) {
          case DiagnosticSeverity::Error:
            os << "error: ";
            break;
          case DiagnosticSeverity::Warning:
            os << "warning: ";
            break;
          default:
            os << "note: ";
          }
          os << diag << "\n";
          for (Diagnostic &note : diag.getNotes())
            os << note.getLocation() << ": note: " << note << "\n";
          return success();
        }) {}
  std::string text;
  ScopedDiagnosticHandler handler;
};

/// The global pass registry, once (nora_lower parses textual pipelines).
void registerPassesOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerAllPasses();
    mlir::nora::registerAllNoraPasses();
  });
}

OwningOpRef<ModuleOp> parse(MLIRContext &context, const char *ir, size_t size) {
  // MLIR's lexer reads up to a terminating NUL: give it one.
  std::string text(ir, size);
  return parseSourceString<ModuleOp>(text, &context);
}

} // namespace

extern "C" {

int nora_api_version(void) { return NORA_C_API_VERSION; }

nora_function *nora_compile_cpu(const char *ir, size_t irSize,
                                const char *entry, int flags,
                                const char *nonfinite, char **error) {
  if (!ir || !entry) {
    fail(error, "nora_compile_cpu: no IR or no entry given");
    return nullptr;
  }
  auto function = std::make_unique<nora_function>();
  runtime::registerDialects(function->context);
  DiagnosticCollector diagnostics(function->context);
  OwningOpRef<ModuleOp> module = parse(function->context, ir, irSize);
  if (!module) {
    fail(error, "cannot parse the IR:\n" + diagnostics.text);
    return nullptr;
  }
  auto func = module->lookupSymbol<func::FuncOp>(entry);
  if (!func || func.isExternal()) {
    fail(error, std::string("no function @") + entry + " in the IR");
    return nullptr;
  }
  std::string message = runtime::checkSignature(func);
  if (!message.empty()) {
    fail(error, message);
    return nullptr;
  }
  for (Type type : func.getFunctionType().getInputs()) {
    nora_function::Arg arg{false, NORA_F32, {}};
    if (auto tensor = dyn_cast<RankedTensorType>(type)) {
      arg.isTensor = true;
      Type elem = tensor.getElementType();
      arg.dtype = elem.isF32()    ? NORA_F32
                  : elem.isBF16() ? NORA_BF16
                                  : NORA_F16;
      for (int64_t d : tensor.getShape())
        arg.dims.push_back(ShapedType::isDynamic(d) ? -1 : d);
      if (arg.dims.size() > NORA_MAX_RANK) {
        fail(error, "an argument has more than 8 dimensions");
        return nullptr;
      }
    }
    function->arguments.push_back(std::move(arg));
  }
  runtime::CompileOptions options;
  options.fuse = (flags & NORA_COMPILE_FUSE) != 0;
  options.threads = (flags & NORA_COMPILE_THREADS) != 0;
  options.nonfinite = nonfinite ? nonfinite : "";
  function->compiled = runtime::compile(*module, entry, options, message);
  if (!function->compiled) {
    fail(error,
         message + (diagnostics.text.empty() ? std::string()
                                             : ":\n" + diagnostics.text));
    return nullptr;
  }
  return function.release();
}

void nora_function_destroy(nora_function *function) { delete function; }

int nora_function_num_arguments(const nora_function *function) {
  return function ? int(function->arguments.size()) : 0;
}

int nora_function_argument(const nora_function *function, int index,
                           int *isTensor, int *dtype, int *rank,
                           int64_t *dims) {
  if (!function || index < 0 || size_t(index) >= function->arguments.size())
    return 1;
  const nora_function::Arg &arg = function->arguments[size_t(index)];
  *isTensor = arg.isTensor;
  *dtype = arg.dtype;
  *rank = int(arg.dims.size());
  for (size_t d = 0; d < arg.dims.size(); ++d)
    dims[d] = arg.dims[d];
  return 0;
}

int nora_function_num_results(const nora_function *function) {
  return function ? int(function->compiled->getResultLayouts().size()) : 0;
}

int nora_function_result(const nora_function *function, int index, int *isInt64,
                         int *rank, int64_t *dims) {
  if (!function || index < 0 ||
      size_t(index) >= function->compiled->getResultLayouts().size())
    return 1;
  const auto &layout = function->compiled->getResultLayouts()[size_t(index)];
  if (layout.shape.size() > NORA_MAX_RANK)
    return 1;
  *isInt64 = layout.isInteger;
  *rank = int(layout.shape.size());
  for (size_t d = 0; d < layout.shape.size(); ++d)
    dims[d] = layout.shape[d];
  return 0;
}

int nora_function_call(nora_function *function, const void *const *tensors,
                       const int64_t *const *shapes, const float *scalars,
                       void *const *results, char **error) {
  if (!function)
    return fail(error, "nora_function_call: no function");
  size_t n = function->arguments.size();
  std::vector<const void *> data(n, nullptr);
  std::vector<std::vector<int64_t>> dims(n);
  std::vector<float> values(n, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    const nora_function::Arg &arg = function->arguments[i];
    if (!arg.isTensor) {
      if (!scalars)
        return fail(error, "argument #" + std::to_string(i) +
                               " is an f32 scalar and no scalars were given");
      values[i] = scalars[i];
      continue;
    }
    if (!tensors || !tensors[i] || !shapes || !shapes[i])
      return fail(error, "argument #" + std::to_string(i) +
                             " is a tensor and got no data or no shape");
    dims[i].assign(shapes[i], shapes[i] + arg.dims.size());
    for (size_t d = 0; d < arg.dims.size(); ++d)
      if (dims[i][d] < 0 || (arg.dims[d] >= 0 && dims[i][d] != arg.dims[d]))
        return fail(error, "argument #" + std::to_string(i) + ": size " +
                               std::to_string(dims[i][d]) + " of dimension " +
                               std::to_string(d) +
                               " does not match the function's " +
                               std::to_string(arg.dims[d]));
    data[i] = tensors[i];
  }
  size_t numResults = function->compiled->getResultLayouts().size();
  std::vector<void *> out(numResults);
  for (size_t k = 0; k < numResults; ++k) {
    if (!results || !results[k])
      return fail(error, "result #" + std::to_string(k) + " has no buffer");
    out[k] = results[k];
  }
  std::string message;
  if (!function->compiled->runOnPointers(data, dims, values, out, message))
    return fail(error, message);
  return 0;
}

char *nora_lower(const char *ir, size_t irSize, const char *pipeline,
                 char **error) {
  if (!ir || !pipeline) {
    fail(error, "nora_lower: no IR or no pipeline given");
    return nullptr;
  }
  registerPassesOnce();
  MLIRContext context;
  runtime::registerDialects(context);
  DiagnosticCollector diagnostics(context);
  OwningOpRef<ModuleOp> module = parse(context, ir, irSize);
  if (!module) {
    fail(error, "cannot parse the IR:\n" + diagnostics.text);
    return nullptr;
  }
  // The pass manager is anchored on the module: "builtin.module(a,b)" means
  // the passes a, b on it (as mlir-opt's --pass-pipeline), and so does "a,b".
  PassManager pm(&context);
  std::string parseErrors;
  llvm::raw_string_ostream errorStream(parseErrors);
  llvm::StringRef passes = llvm::StringRef(pipeline).trim();
  if (passes.consume_front("builtin.module(")) {
    if (!passes.consume_back(")")) {
      fail(error, "bad pass pipeline '" + std::string(pipeline) +
                      "': unbalanced parentheses");
      return nullptr;
    }
  }
  if (failed(parsePassPipeline(passes, pm, errorStream))) {
    fail(error,
         "bad pass pipeline '" + std::string(pipeline) + "': " + parseErrors);
    return nullptr;
  }
  if (failed(pm.run(*module))) {
    fail(error, "the pipeline failed:\n" + diagnostics.text);
    return nullptr;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  return copyString(text);
}

void nora_string_free(char *string) { std::free(string); }

} // extern "C"
