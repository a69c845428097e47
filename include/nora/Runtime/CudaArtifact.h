//===- CudaArtifact.h - the compiled-step artifact (no LLVM) ----*- C++ -*-===//
//
// A compiled optimizer step as it travels to the GPU machine: a directory
// NAME.nora/ with plan.json (the launch plan) and the cubins it names. The
// format is specified in docs/artifact.md. Loading validates everything and
// reports the first problem with the file and the field it is in; nothing in
// here needs a GPU or links LLVM/MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_RUNTIME_CUDAARTIFACT_H
#define NORA_RUNTIME_CUDAARTIFACT_H

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mlir::nora::runtime {

/// The newest "version" this runtime reads (it reads 1 to 4; version 2
/// adds "tensor_maps", 3 i64 results, 4 "workspace_zero_once").
constexpr int64_t kArtifactVersion = 4;

/// The element types an argument may have ("f32", "bf16", "f16").
/// I64: only a result, the i64 count of a guarded step (version 3).
enum class ElementType { F32, BF16, F16, I64 };

/// "f32", "bf16", "f16" or "i64".
const char *elementTypeName(ElementType type);
/// Bytes per element: 4, 2 or 8.
size_t elementTypeSize(ElementType type);

/// One argument or result of the step.
struct ValueSpec {
  std::string name;
  bool isTensor = false;
  ElementType dtype = ElementType::F32;
  std::vector<int64_t> shape; ///< Empty for a scalar.
  int64_t numElements = 1;
  int64_t byteSize = 0;

  /// "bf16[64x128]" or "f32 scalar".
  std::string typeString() const;
};

/// One kernel parameter under the bare-pointer convention.
struct KernelParam {
  enum class Kind {
    Argument,  ///< A tensor argument's CUdeviceptr, or an f32 scalar by value.
    Result,    ///< A result's CUdeviceptr (f32).
    Workspace, ///< The workspace's CUdeviceptr plus `value` bytes.
    I32,       ///< An immediate int32_t.
    I64        ///< An immediate int64_t.
  };
  Kind kind = Kind::I32;
  /// The argument or result index, the workspace byte offset, or the
  /// immediate.
  int64_t value = 0;
};

/// One kernel launch of the step.
struct KernelSpec {
  std::string name;      ///< The entry point in the cubin.
  std::string cubinFile; ///< Relative to the artifact directory.
  std::vector<uint8_t> cubin;
  std::array<unsigned, 3> block = {1, 1, 1};
  /// grid: {"persistent": K}: K work tiles, min(K, co-resident CTAs) CTAs.
  bool persistent = false;
  int64_t persistentTiles = 0;
  std::array<unsigned, 3> grid = {1, 1, 1}; ///< When not persistent.
  unsigned dynamicSharedBytes = 0;
  bool cooperative = false;
  std::array<unsigned, 3> cluster = {1, 1, 1};
  std::vector<KernelParam> params;
};

/// A TMA descriptor (CUtensorMap) the runtime encodes for a tensor argument
/// before every call and writes into the workspace, where a kernel finds it
/// through a {"workspace": offset} parameter.
struct TensorMapSpec {
  int64_t workspaceOffset = 0; ///< 64-byte aligned; 128 bytes.
  size_t argument = 0;         ///< A tensor argument of rank 1 to 5.
  /// The box a copy moves, in the argument's dimension order (row-major:
  /// outermost first).
  std::vector<int64_t> box;
  /// Shared-memory swizzle span in bytes: 0 (none), 32, 64 or 128.
  int64_t swizzle = 0;
};

/// A validated plan.json with its cubins loaded.
struct Plan {
  std::string directory; ///< The artifact directory.
  std::string entry;
  std::string chip; ///< "sm_90a", "sm_80", ...
  unsigned chipMajor = 0, chipMinor = 0;
  bool chipArchSpecific = false; ///< The "a" suffix: runs on exactly that chip.
  std::vector<ValueSpec> arguments;
  std::vector<ValueSpec> results;
  int64_t workspaceBytes = 0;
  /// The byte ranges (offset, size) of the workspace zero-filled before
  /// every call ("workspace_zero"); absent from the plan: all of it.
  std::vector<std::pair<int64_t, int64_t>> workspaceZero;
  bool workspaceZeroAll = true;
  /// The ranges zero-filled only when the workspace is allocated (and after
  /// a failed call): the kernels leave them at 0 ("workspace_zero_once",
  /// version 4; the fused steps' arrival counters).
  std::vector<std::pair<int64_t, int64_t>> workspaceZeroOnce;
  std::vector<TensorMapSpec> tensorMaps;
  int64_t version = kArtifactVersion;
  std::vector<KernelSpec> kernels;
};

/// Parses and validates the text of a plan.json; `planPath` names it in
/// messages. Does not read the cubins. Returns an empty string on success,
/// else "'<planPath>': field '<field>': <what is wrong>".
std::string parsePlan(std::string_view text, const std::string &planPath,
                      Plan &out);

/// Loads the artifact directory `directory`: reads and validates plan.json,
/// then reads every cubin (it must exist, be non-empty and be an ELF file).
/// Returns an empty string on success, else a message naming the file and the
/// field.
std::string loadArtifact(const std::string &directory, Plan &out);

/// An artifact held in memory (a program that embeds it): `planText` is its
/// plan.json and `cubin` the cubin that every kernel of the plan names.
/// Validated as loadArtifact does; messages name "<embedded artifact>".
std::string loadArtifactFromMemory(std::string_view planText,
                                   const std::string &cubin, Plan &out);

/// A readable multi-line summary of a plan (nora-exec --print-plan).
std::string describePlan(const Plan &plan);

} // namespace mlir::nora::runtime

#endif // NORA_RUNTIME_CUDAARTIFACT_H
