//===- CudaArtifact.cpp - plan.json parsing and validation ----------------===//
//
// Turns a plan.json (docs/artifact.md) into a runtime::Plan, checking every
// field. Each message names the file and the field, e.g.
//   'step.nora/plan.json': field 'kernels[0].params[2].argument': index 5 out
//   of range (the plan has 3 arguments)
//
//===----------------------------------------------------------------------===//

#include "nora/Runtime/CudaArtifact.h"
#include "nora/Runtime/Json.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

using namespace mlir::nora;
using namespace mlir::nora::runtime;
using json::Value;

const char *runtime::elementTypeName(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return "f32";
  case ElementType::BF16:
    return "bf16";
  case ElementType::F16:
    return "f16";
  case ElementType::I64:
    return "i64";
  }
  return "?";
}

size_t runtime::elementTypeSize(ElementType type) {
  return type == ElementType::F32 ? 4 : type == ElementType::I64 ? 8 : 2;
}

std::string ValueSpec::typeString() const {
  std::string text = elementTypeName(dtype);
  if (!isTensor)
    return text + " scalar";
  text += "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? "x" : "") + std::to_string(shape[i]);
  return text + "]";
}

namespace {

/// Limits that keep a hostile plan from asking for absurd resources; far
/// above anything the compiler emits.
constexpr size_t kMaxRank = 8;
constexpr size_t kMaxKernels = 64;
constexpr size_t kMaxParams = 512;
constexpr int64_t kMaxDynamicShared = 256 * 1024;
constexpr int64_t kMaxPlanBytes = int64_t(16) << 20;
constexpr int64_t kMaxCubinBytes = int64_t(1) << 30;
constexpr int64_t kTensorMapBytes = 128;

/// Validates one plan, remembering the first error.
class PlanChecker {
public:
  explicit PlanChecker(std::string planPath) : planPath(std::move(planPath)) {}

  std::string error;

  bool check(const Value &root, Plan &plan);

private:
  std::string planPath;

  bool fail(const std::string &field, const std::string &what) {
    error = "'" + planPath + "': field '" + field + "': " + what;
    return false;
  }

  static std::string join(const std::string &parent, std::string_view key) {
    return parent.empty() ? std::string(key) : parent + "." + std::string(key);
  }

  static std::string index(const std::string &parent, size_t i) {
    return parent + "[" + std::to_string(i) + "]";
  }

  /// The member `key` of `object` of kind `kind`; null after an error. An
  /// absent optional member gives null with no error.
  const Value *member(const Value &object, const std::string &parent,
                      std::string_view key, Value::Kind kind,
                      bool required = true) {
    const Value *value = object.find(key);
    if (!value) {
      if (required)
        fail(join(parent, key), "missing");
      return nullptr;
    }
    if (value->kind != kind) {
      fail(join(parent, key), std::string("expected ") + Value::kindName(kind) +
                                  ", got " + Value::kindName(value->kind));
      return nullptr;
    }
    return value;
  }

  bool integer(const Value &value, const std::string &field, int64_t min,
               int64_t max, int64_t &out) {
    if (value.kind != Value::Kind::Number || !value.isInteger)
      return fail(field, "expected an integer");
    if (value.integer < min || value.integer > max)
      return fail(field, std::to_string(value.integer) + " is out of range [" +
                             std::to_string(min) + ", " + std::to_string(max) +
                             "]");
    out = value.integer;
    return true;
  }

  bool optionalInteger(const Value &object, const std::string &parent,
                       std::string_view key, int64_t min, int64_t max,
                       int64_t &out) {
    const Value *value = object.find(key);
    return !value || integer(*value, join(parent, key), min, max, out);
  }

  bool nonEmptyString(const Value &object, const std::string &parent,
                      std::string_view key, std::string &out) {
    const Value *value = member(object, parent, key, Value::Kind::String);
    if (!value)
      return false;
    if (value->string.empty())
      return fail(join(parent, key), "must not be empty");
    out = value->string;
    return true;
  }

  /// An array of three integers in [1, max] (product <= maxProduct).
  bool dims(const Value &object, const std::string &parent,
            std::string_view key, int64_t max, int64_t maxProduct,
            std::array<unsigned, 3> &out, bool required) {
    const Value *value =
        member(object, parent, key, Value::Kind::Array, required);
    if (!value)
      return error.empty();
    std::string field = join(parent, key);
    if (value->elements.size() != 3)
      return fail(field, "expected 3 integers, got " +
                             std::to_string(value->elements.size()));
    int64_t product = 1;
    for (size_t i = 0; i < 3; ++i) {
      int64_t dim;
      int64_t limit = i == 0 ? max : std::min<int64_t>(max, 65535);
      if (!integer(value->elements[i], index(field, i), 1, limit, dim))
        return false;
      out[i] = unsigned(dim);
      product *= dim;
    }
    if (product > maxProduct)
      return fail(field, "the product " + std::to_string(product) +
                             " exceeds " + std::to_string(maxProduct));
    return true;
  }

  bool elementType(const Value &object, const std::string &parent,
                   ElementType &out) {
    const Value *value = member(object, parent, "dtype", Value::Kind::String);
    if (!value)
      return false;
    if (value->string == "f32")
      out = ElementType::F32;
    else if (value->string == "bf16")
      out = ElementType::BF16;
    else if (value->string == "f16")
      out = ElementType::F16;
    else if (value->string == "i64")
      out = ElementType::I64;
    else
      return fail(join(parent, "dtype"),
                  "unknown dtype \"" + value->string +
                      "\" (expected f32, bf16, f16 or i64)");
    return true;
  }

  /// `[[offset, bytes], ...]` within a workspace of `workspaceBytes`.
  bool workspaceRanges(const Value &value, const std::string &field,
                       int64_t workspaceBytes,
                       std::vector<std::pair<int64_t, int64_t>> &out) {
    if (value.kind != Value::Kind::Array)
      return fail(field, "expected an array of [offset, bytes]");
    for (size_t i = 0; i < value.elements.size(); ++i) {
      const Value &range = value.elements[i];
      std::string at = index(field, i);
      if (range.kind != Value::Kind::Array || range.elements.size() != 2)
        return fail(at, "expected [offset, bytes]");
      int64_t offset = 0, bytes = 0;
      if (!integer(range.elements[0], at + "[0]", 0, workspaceBytes, offset) ||
          !integer(range.elements[1], at + "[1]", 1, workspaceBytes - offset,
                   bytes))
        return false;
      out.push_back({offset, bytes});
    }
    return true;
  }

  bool valueSpec(const Value &value, const std::string &field, bool isResult,
                 ValueSpec &out);
  bool chip(const Value &root, Plan &plan);
  bool kernel(const Value &value, const std::string &field, const Plan &plan,
              KernelSpec &out);
  bool grid(const Value &object, const std::string &parent, KernelSpec &out);
  bool param(const Value &value, const std::string &field, const Plan &plan,
             KernelParam &out);
  bool tensorMap(const Value &value, const std::string &field, const Plan &plan,
                 TensorMapSpec &out);
};

bool PlanChecker::tensorMap(const Value &value, const std::string &field,
                            const Plan &plan, TensorMapSpec &out) {
  if (value.kind != Value::Kind::Object)
    return fail(field, std::string("expected an object, got ") +
                           Value::kindName(value.kind));
  const Value *offset = member(value, field, "workspace", Value::Kind::Number);
  const Value *argument =
      offset ? member(value, field, "argument", Value::Kind::Number) : nullptr;
  const Value *box =
      argument ? member(value, field, "box", Value::Kind::Array) : nullptr;
  if (!box)
    return false;
  int64_t at = 0, index = 0;
  if (!integer(*offset, join(field, "workspace"), 0,
               plan.workspaceBytes - kTensorMapBytes, at) ||
      !integer(*argument, join(field, "argument"), 0,
               int64_t(plan.arguments.size()) - 1, index) ||
      !optionalInteger(value, field, "swizzle", 0, 128, out.swizzle))
    return false;
  out.workspaceOffset = at;
  out.argument = size_t(index);
  if (at % 64 != 0)
    return fail(join(field, "workspace"),
                "a tensor map must be 64-byte aligned, offset " +
                    std::to_string(at) + " is not");
  // The descriptor is written before every launch: no zero-fill may hit it.
  for (auto [ranges, key] :
       {std::pair{&plan.workspaceZero, "workspace_zero"},
        std::pair{&plan.workspaceZeroOnce, "workspace_zero_once"}})
    for (auto [zeroAt, zeroBytes] : *ranges)
      if (at < zeroAt + zeroBytes && zeroAt < at + kTensorMapBytes)
        return fail(join(field, "workspace"),
                    std::string("overlaps a ") + key + " range");
  if (plan.workspaceZeroAll)
    return fail(join(field, "workspace"),
                "the whole workspace is zero-filled (no workspace_zero)");
  if (out.swizzle != 0 && out.swizzle != 32 && out.swizzle != 64 &&
      out.swizzle != 128)
    return fail(join(field, "swizzle"), "expected 0, 32, 64 or 128, got " +
                                            std::to_string(out.swizzle));
  const ValueSpec &spec = plan.arguments[out.argument];
  std::string argumentField = join(field, "argument");
  if (!spec.isTensor || spec.shape.empty() || spec.shape.size() > 5)
    return fail(argumentField, "argument " + std::to_string(index) + " (" +
                                   spec.name + ", " + spec.typeString() +
                                   ") is not a tensor of rank 1 to 5");
  int64_t elemBytes = int64_t(elementTypeSize(spec.dtype));
  if ((spec.shape.back() * elemBytes) % 16 != 0 && spec.shape.size() > 1)
    return fail(argumentField, "argument " + std::to_string(index) + " (" +
                                   spec.name + ", " + spec.typeString() +
                                   "): its rows are not a multiple of 16 "
                                   "bytes (TMA strides)");
  std::string boxField = join(field, "box");
  if (box->elements.size() != spec.shape.size())
    return fail(boxField, "expected " + std::to_string(spec.shape.size()) +
                              " dimensions (the argument's rank), got " +
                              std::to_string(box->elements.size()));
  for (size_t d = 0; d < box->elements.size(); ++d) {
    int64_t dim;
    if (!integer(box->elements[d], this->index(boxField, d), 1, 256, dim))
      return false;
    out.box.push_back(dim);
  }
  int64_t inner = out.box.back() * elemBytes;
  if (inner % 16 != 0)
    return fail(boxField, "the innermost box dimension is " +
                              std::to_string(inner) +
                              " bytes, not a multiple of 16");
  if (out.swizzle && inner > out.swizzle)
    return fail(boxField, "the innermost box dimension is " +
                              std::to_string(inner) + " bytes, more than the " +
                              std::to_string(out.swizzle) + "-byte swizzle");
  return true;
}

bool PlanChecker::valueSpec(const Value &value, const std::string &field,
                            bool isResult, ValueSpec &out) {
  if (value.kind != Value::Kind::Object)
    return fail(field, std::string("expected an object, got ") +
                           Value::kindName(value.kind));
  if (!nonEmptyString(value, field, "name", out.name))
    return false;
  const Value *kind = member(value, field, "kind", Value::Kind::String);
  if (!kind)
    return false;
  if (kind->string != "tensor" && kind->string != "scalar")
    return fail(join(field, "kind"), "unknown kind \"" + kind->string +
                                         "\" (expected tensor or scalar)");
  out.isTensor = kind->string == "tensor";
  if (!elementType(value, field, out.dtype))
    return false;
  // Results: f32 tensors, or an i64 scalar (a guarded step's count).
  if (isResult && !out.isTensor && out.dtype != ElementType::I64)
    return fail(join(field, "dtype"),
                std::string("a scalar result must be i64, got ") +
                    elementTypeName(out.dtype));
  if (isResult && out.isTensor && out.dtype != ElementType::F32)
    return fail(join(field, "dtype"),
                std::string("a tensor result must be f32, got ") +
                    elementTypeName(out.dtype));
  if (!isResult && !out.isTensor && out.dtype != ElementType::F32)
    return fail(join(field, "dtype"),
                std::string("a scalar must be f32, got ") +
                    elementTypeName(out.dtype));
  if (!isResult && out.dtype == ElementType::I64)
    return fail(join(field, "dtype"), "a tensor argument is f32, bf16 or f16");
  const Value *shape = member(value, field, "shape", Value::Kind::Array,
                              /*required=*/out.isTensor);
  // A scalar: one element (an f32 argument, or a result's int64 count).
  out.numElements = 1;
  out.byteSize = int64_t(elementTypeSize(out.dtype));
  if (!shape)
    return error.empty();
  std::string shapeField = join(field, "shape");
  if (!out.isTensor && !shape->elements.empty())
    return fail(shapeField, "a scalar has no shape");
  if (shape->elements.size() > kMaxRank)
    return fail(shapeField, "rank " + std::to_string(shape->elements.size()) +
                                " exceeds " + std::to_string(kMaxRank));
  out.numElements = 1;
  for (size_t i = 0; i < shape->elements.size(); ++i) {
    int64_t dim;
    if (!integer(shape->elements[i], index(shapeField, i), 0, INT64_MAX, dim))
      return false;
    out.shape.push_back(dim);
    if (__builtin_mul_overflow(out.numElements, dim, &out.numElements))
      return fail(shapeField, "the number of elements overflows int64");
  }
  if (__builtin_mul_overflow(
          out.numElements, int64_t(elementTypeSize(out.dtype)), &out.byteSize))
    return fail(shapeField, "the size in bytes overflows int64");
  return true;
}

bool PlanChecker::chip(const Value &root, Plan &plan) {
  if (!nonEmptyString(root, "", "chip", plan.chip))
    return false;
  const std::string &name = plan.chip;
  size_t digits = 0;
  while (3 + digits < name.size() && std::isdigit(uint8_t(name[3 + digits])))
    ++digits;
  size_t end = 3 + digits;
  bool suffix = end + 1 == name.size() && name[end] == 'a';
  if (name.compare(0, 3, "sm_") != 0 || digits < 2 || digits > 3 ||
      (end != name.size() && !suffix))
    return fail("chip", "\"" + name +
                            "\" is not a chip name like sm_80 or "
                            "sm_90a");
  unsigned number = 0;
  for (size_t i = 0; i < digits; ++i)
    number = number * 10 + unsigned(name[3 + i] - '0');
  plan.chipMajor = number / 10;
  plan.chipMinor = number % 10;
  plan.chipArchSpecific = suffix;
  return true;
}

bool PlanChecker::grid(const Value &object, const std::string &parent,
                       KernelSpec &out) {
  const Value *value = object.find("grid");
  std::string field = join(parent, "grid");
  if (!value)
    return fail(field, "missing");
  if (value->kind == Value::Kind::Array)
    return dims(object, parent, "grid", INT32_MAX, INT64_MAX, out.grid,
                /*required=*/true);
  if (value->kind != Value::Kind::Object)
    return fail(field, std::string("expected [x, y, z] or "
                                   "{\"persistent\": tiles}, got ") +
                           Value::kindName(value->kind));
  const Value *tiles = member(*value, field, "persistent", Value::Kind::Number);
  if (!tiles)
    return false;
  out.persistent = true;
  return integer(*tiles, join(field, "persistent"), 1, INT32_MAX,
                 out.persistentTiles);
}

bool PlanChecker::param(const Value &value, const std::string &field,
                        const Plan &plan, KernelParam &out) {
  if (value.kind != Value::Kind::Object || value.members.size() != 1)
    return fail(field, "expected an object with one member: argument, "
                       "result, workspace, i32 or i64");
  const std::string &key = value.members[0].first;
  const Value &operand = value.members[0].second;
  std::string operandField = join(field, key);
  auto indexInto = [&](size_t count, const char *what, KernelParam::Kind kind) {
    out.kind = kind;
    if (count == 0)
      return fail(operandField, std::string("the plan has no ") + what + "s");
    if (operand.kind != Value::Kind::Number || !operand.isInteger)
      return fail(operandField, "expected an integer index");
    if (operand.integer < 0 || uint64_t(operand.integer) >= count)
      return fail(operandField, "index " + std::to_string(operand.integer) +
                                    " out of range (the plan has " +
                                    std::to_string(count) + " " + what +
                                    (count == 1 ? ")" : "s)"));
    out.value = operand.integer;
    return true;
  };
  if (key == "argument")
    return indexInto(plan.arguments.size(), "argument",
                     KernelParam::Kind::Argument);
  if (key == "result")
    return indexInto(plan.results.size(), "result", KernelParam::Kind::Result);
  if (key == "workspace") {
    out.kind = KernelParam::Kind::Workspace;
    if (plan.workspaceBytes == 0)
      return fail(operandField, "the plan has no workspace (workspace_bytes "
                                "is 0)");
    if (!integer(operand, operandField, 0, plan.workspaceBytes - 1, out.value))
      return false;
    if (out.value % 16 != 0)
      return fail(operandField, "byte offset " + std::to_string(out.value) +
                                    " is not a multiple of 16");
    return true;
  }
  if (key == "i32") {
    out.kind = KernelParam::Kind::I32;
    return integer(operand, operandField, INT32_MIN, INT32_MAX, out.value);
  }
  if (key == "i64") {
    out.kind = KernelParam::Kind::I64;
    return integer(operand, operandField, INT64_MIN, INT64_MAX, out.value);
  }
  return fail(operandField, "unknown parameter kind (expected argument, "
                            "result, workspace, i32 or i64)");
}

bool PlanChecker::kernel(const Value &value, const std::string &field,
                         const Plan &plan, KernelSpec &out) {
  if (value.kind != Value::Kind::Object)
    return fail(field, std::string("expected an object, got ") +
                           Value::kindName(value.kind));
  if (!nonEmptyString(value, field, "name", out.name) ||
      !nonEmptyString(value, field, "cubin", out.cubinFile))
    return false;
  // The cubin stays inside the artifact directory.
  const std::string &file = out.cubinFile;
  if (file[0] == '/' || file == ".." || file.compare(0, 3, "../") == 0 ||
      file.find("/../") != std::string::npos ||
      (file.size() >= 3 && file.compare(file.size() - 3, 3, "/..") == 0) ||
      file.find('\0') != std::string::npos)
    return fail(join(field, "cubin"),
                "\"" + file + "\" is not a path inside the artifact directory");
  if (!dims(value, field, "block", 1024, 1024, out.block, /*required=*/true) ||
      !grid(value, field, out))
    return false;
  int64_t shared = 0;
  if (!optionalInteger(value, field, "dynamic_shared_bytes", 0,
                       kMaxDynamicShared, shared))
    return false;
  out.dynamicSharedBytes = unsigned(shared);
  if (const Value *cooperative = value.find("cooperative")) {
    if (cooperative->kind != Value::Kind::Bool)
      return fail(join(field, "cooperative"), "expected a boolean");
    out.cooperative = cooperative->boolean;
  }
  if (!dims(value, field, "cluster", 16, 16, out.cluster, /*required=*/false))
    return false;
  std::string clusterField = join(field, "cluster");
  if (out.persistent && (out.cluster[1] != 1 || out.cluster[2] != 1))
    return fail(clusterField, "a persistent grid is one-dimensional: the "
                              "cluster must be [x, 1, 1]");
  for (size_t i = 0; !out.persistent && i < 3; ++i)
    if (out.grid[i] % out.cluster[i] != 0)
      return fail(clusterField, "the grid [" + std::to_string(out.grid[0]) +
                                    ", " + std::to_string(out.grid[1]) + ", " +
                                    std::to_string(out.grid[2]) +
                                    "] is not a multiple of the cluster");
  const Value *params = member(value, field, "params", Value::Kind::Array);
  if (!params)
    return false;
  std::string paramsField = join(field, "params");
  if (params->elements.size() > kMaxParams)
    return fail(paramsField,
                "more than " + std::to_string(kMaxParams) + " parameters");
  out.params.resize(params->elements.size());
  for (size_t i = 0; i < out.params.size(); ++i)
    if (!param(params->elements[i], index(paramsField, i), plan, out.params[i]))
      return false;
  return true;
}

bool PlanChecker::check(const Value &root, Plan &plan) {
  if (root.kind != Value::Kind::Object)
    return fail("<root>", std::string("expected an object, got ") +
                              Value::kindName(root.kind));
  // Format and version first: a newer format may change everything else.
  const Value *format = member(root, "", "format", Value::Kind::String);
  if (!format)
    return false;
  if (format->string != "nora-artifact")
    return fail("format",
                "expected \"nora-artifact\", got \"" + format->string + "\"");
  const Value *version = member(root, "", "version", Value::Kind::Number);
  if (!version)
    return false;
  if (!version->isInteger || version->integer < 1 ||
      version->integer > kArtifactVersion)
    return fail("version",
                "unsupported version " +
                    (version->isInteger ? std::to_string(version->integer)
                                        : std::to_string(version->number)) +
                    " (this runtime reads versions 1 to " +
                    std::to_string(kArtifactVersion) + ")");
  plan.version = version->integer;
  if (!nonEmptyString(root, "", "entry", plan.entry) || !chip(root, plan))
    return false;
  for (bool isResult : {false, true}) {
    const char *key = isResult ? "results" : "arguments";
    const Value *list = member(root, "", key, Value::Kind::Array);
    if (!list)
      return false;
    std::vector<ValueSpec> &specs = isResult ? plan.results : plan.arguments;
    specs.resize(list->elements.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      if (!valueSpec(list->elements[i], index(key, i), isResult, specs[i]))
        return false;
      // A version-2 runtime would copy an i64 back as an f32 tensor.
      if (isResult && !specs[i].isTensor && plan.version < 3)
        return fail(index(key, i), "an i64 result needs version 3 (the plan "
                                   "says version " +
                                       std::to_string(plan.version) + ")");
    }
  }
  if (plan.results.empty())
    return fail("results", "a step has at least one result");
  if (!optionalInteger(root, "", "workspace_bytes", 0, INT64_MAX,
                       plan.workspaceBytes))
    return false;
  if (const Value *zero = root.find("workspace_zero")) {
    plan.workspaceZeroAll = false;
    if (!workspaceRanges(*zero, "workspace_zero", plan.workspaceBytes,
                         plan.workspaceZero))
      return false;
  }
  if (const Value *once = root.find("workspace_zero_once")) {
    // A version-3 runtime ignores unknown keys: it would launch the kernels
    // on counters nobody zeroed.
    if (plan.version < 4)
      return fail("workspace_zero_once",
                  "needs version 4 (the plan says version " +
                      std::to_string(plan.version) + ")");
    if (!workspaceRanges(*once, "workspace_zero_once", plan.workspaceBytes,
                         plan.workspaceZeroOnce))
      return false;
  }
  if (const Value *maps = root.find("tensor_maps")) {
    // A version-1 runtime ignores unknown keys: it would launch the kernels
    // with no descriptors.
    if (plan.version < 2)
      return fail("tensor_maps", "needs version 2 (the plan says version " +
                                     std::to_string(plan.version) + ")");
    if (maps->kind != Value::Kind::Array)
      return fail("tensor_maps", "expected an array of objects");
    plan.tensorMaps.resize(maps->elements.size());
    for (size_t i = 0; i < plan.tensorMaps.size(); ++i)
      if (!tensorMap(maps->elements[i], index("tensor_maps", i), plan,
                     plan.tensorMaps[i]))
        return false;
  }
  const Value *kernels = member(root, "", "kernels", Value::Kind::Array);
  if (!kernels)
    return false;
  if (kernels->elements.empty() || kernels->elements.size() > kMaxKernels)
    return fail("kernels", "expected 1 to " + std::to_string(kMaxKernels) +
                               " kernels, got " +
                               std::to_string(kernels->elements.size()));
  plan.kernels.resize(kernels->elements.size());
  for (size_t i = 0; i < plan.kernels.size(); ++i)
    if (!kernel(kernels->elements[i], index("kernels", i), plan,
                plan.kernels[i]))
      return false;
  return true;
}

/// Reads a whole regular file; an empty string on success.
std::string readFile(const std::string &path, int64_t maxBytes,
                     std::vector<uint8_t> &out) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0)
    return std::string("cannot open: ") + std::strerror(errno);
  if (!S_ISREG(info.st_mode))
    return "not a regular file";
  if (info.st_size > maxBytes)
    return "larger than " + std::to_string(maxBytes) + " bytes";
  std::ifstream stream(path, std::ios::binary);
  if (!stream)
    return std::string("cannot open: ") + std::strerror(errno);
  out.assign(std::istreambuf_iterator<char>(stream),
             std::istreambuf_iterator<char>());
  if (stream.bad())
    return "read error";
  return "";
}

/// Checks that `bytes` are a cubin; `where` names them in the message.
std::string checkCubin(const std::vector<uint8_t> &bytes,
                       const std::string &where) {
  if (bytes.empty())
    return where + "the cubin is empty";
  static const uint8_t elfMagic[4] = {0x7f, 'E', 'L', 'F'};
  if (bytes.size() < 4 || std::memcmp(bytes.data(), elfMagic, 4) != 0)
    return where + "not an ELF file (a cubin starts with \\x7fELF)";
  return "";
}

} // namespace

std::string runtime::parsePlan(std::string_view text,
                               const std::string &planPath, Plan &out) {
  out = Plan();
  Value root;
  std::string error = json::parse(text, root);
  if (!error.empty())
    return "'" + planPath + "': not valid JSON: " + error;
  PlanChecker checker(planPath);
  if (!checker.check(root, out)) {
    out = Plan();
    return checker.error;
  }
  return "";
}

std::string runtime::loadArtifact(const std::string &directory, Plan &out) {
  out = Plan();
  struct stat info;
  if (::stat(directory.c_str(), &info) != 0)
    return "'" + directory +
           "': cannot open the artifact directory: " + std::strerror(errno);
  if (!S_ISDIR(info.st_mode))
    return "'" + directory +
           "': not an artifact directory (NAME.nora/ with "
           "plan.json)";
  std::string planPath = directory + "/plan.json";
  std::vector<uint8_t> bytes;
  std::string error = readFile(planPath, kMaxPlanBytes, bytes);
  if (!error.empty())
    return "'" + planPath + "': " + error;
  error =
      parsePlan(std::string_view(reinterpret_cast<const char *>(bytes.data()),
                                 bytes.size()),
                planPath, out);
  if (!error.empty())
    return error;
  out.directory = directory;
  for (size_t i = 0; i < out.kernels.size(); ++i) {
    KernelSpec &kernel = out.kernels[i];
    std::string path = directory + "/" + kernel.cubinFile;
    std::string where = "'" + path + "' (field 'kernels[" + std::to_string(i) +
                        "].cubin' of '" + planPath + "'): ";
    error = readFile(path, kMaxCubinBytes, kernel.cubin);
    if (error.empty())
      error = checkCubin(kernel.cubin, where);
    else
      error = where + error;
    if (!error.empty())
      return error;
  }
  return "";
}

std::string runtime::loadArtifactFromMemory(std::string_view planText,
                                            const std::string &cubin,
                                            Plan &out) {
  const std::string name = "<embedded artifact>";
  std::string error = parsePlan(planText, name + "/plan.json", out);
  if (!error.empty())
    return error;
  out.directory = name;
  std::vector<uint8_t> bytes(cubin.begin(), cubin.end());
  for (size_t i = 0; i < out.kernels.size(); ++i) {
    KernelSpec &kernel = out.kernels[i];
    if (kernel.cubinFile != out.kernels[0].cubinFile)
      return "'" + name + "/plan.json': field 'kernels[" + std::to_string(i) +
             "].cubin': an embedded artifact has one cubin, for every kernel";
    kernel.cubin = bytes;
  }
  error = checkCubin(bytes, "'" + name + "' (its cubin): ");
  if (!error.empty())
    out = Plan();
  return error;
}

std::string runtime::describePlan(const Plan &plan) {
  std::ostringstream os;
  auto dims = [](const std::array<unsigned, 3> &d) {
    return "[" + std::to_string(d[0]) + ", " + std::to_string(d[1]) + ", " +
           std::to_string(d[2]) + "]";
  };
  auto describeValues = [&](const char *title,
                            const std::vector<ValueSpec> &specs) {
    os << title << ": " << specs.size() << "\n";
    for (size_t i = 0; i < specs.size(); ++i) {
      os << "  #" << i << " " << specs[i].name << ": " << specs[i].typeString();
      if (specs[i].isTensor)
        os << " (" << specs[i].byteSize << " bytes)";
      os << "\n";
    }
  };
  os << "artifact: " << plan.directory << "\n"
     << "format: nora-artifact version " << plan.version << "\n"
     << "entry: " << plan.entry << "\n"
     << "chip: " << plan.chip << "\n";
  describeValues("arguments", plan.arguments);
  describeValues("results", plan.results);
  os << "workspace: " << plan.workspaceBytes << " bytes";
  auto ranges = [&](const std::vector<std::pair<int64_t, int64_t>> &list) {
    if (list.empty())
      os << " none";
    for (auto [offset, bytes] : list)
      os << " [" << offset << ", " << offset + bytes << ")";
  };
  os << " (zero-filled before every call";
  if (!plan.workspaceZeroAll) {
    os << ":";
    ranges(plan.workspaceZero);
  }
  // The kernels leave these at 0: zero-filled when allocated, and after a
  // failed call.
  if (!plan.workspaceZeroOnce.empty()) {
    os << "; once:";
    ranges(plan.workspaceZeroOnce);
  }
  os << ")\n";
  for (const TensorMapSpec &map : plan.tensorMaps) {
    const ValueSpec &spec = plan.arguments[map.argument];
    os << "tensor map: workspace+" << map.workspaceOffset << " for argument "
       << map.argument << " (" << spec.name << ", " << spec.typeString()
       << "), box [";
    for (size_t d = 0; d < map.box.size(); ++d)
      os << (d ? ", " : "") << map.box[d];
    os << "], swizzle "
       << (map.swizzle ? std::to_string(map.swizzle) + "B"
                       : std::string("none"))
       << "\n";
  }
  os << "kernels: " << plan.kernels.size() << " (in order, one stream)\n";
  for (size_t i = 0; i < plan.kernels.size(); ++i) {
    const KernelSpec &kernel = plan.kernels[i];
    os << "  #" << i << " " << kernel.name << " in " << kernel.cubinFile << " ("
       << kernel.cubin.size() << " bytes)\n"
       << "     block " << dims(kernel.block) << ", grid ";
    if (kernel.persistent)
      os << "persistent over " << kernel.persistentTiles << " tiles";
    else
      os << dims(kernel.grid);
    os << ", cluster " << dims(kernel.cluster) << ", dynamic shared "
       << kernel.dynamicSharedBytes << " bytes"
       << (kernel.cooperative ? ", cooperative" : "") << "\n"
       << "     params:";
    for (const KernelParam &param : kernel.params) {
      switch (param.kind) {
      case KernelParam::Kind::Argument: {
        const ValueSpec &spec = plan.arguments[size_t(param.value)];
        os << " argument " << param.value << " (" << spec.name
           << (spec.isTensor ? ", pointer)" : ", f32)");
        break;
      }
      case KernelParam::Kind::Result:
        os << " result " << param.value << " ("
           << plan.results[size_t(param.value)].name << ", pointer)";
        break;
      case KernelParam::Kind::Workspace:
        os << " workspace+" << param.value;
        break;
      case KernelParam::Kind::I32:
        os << " i32 " << param.value;
        break;
      case KernelParam::Kind::I64:
        os << " i64 " << param.value;
        break;
      }
      os << (&param == &kernel.params.back() ? "" : ",");
    }
    os << "\n";
  }
  return os.str();
}
