//===- Npy.h - .npy files and float conversions (no LLVM) -------*- C++ -*-===//
//
// Reading and writing NumPy's .npy format (version 1, 2 and 3 headers,
// little-endian, C order), and the float conversions the tools need. This
// file links no LLVM or MLIR: the GPU-side runner uses it too.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_RUNTIME_NPY_H
#define NORA_RUNTIME_NPY_H

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::nora::npy {

enum class DType { F32, F64, F16, U16, I32, I64, U8, Bool, Unsupported };

/// A dense array as stored in a .npy file.
struct Array {
  DType dtype = DType::Unsupported;
  std::string descr; ///< The dtype string of the header, e.g. "<f4".
  std::vector<int64_t> shape;
  std::vector<uint8_t> data; ///< numElements() * elementSize() bytes.

  int64_t numElements() const;
  size_t elementSize() const;
};

/// Reads `path`. Returns an empty string on success, else a message saying
/// what is wrong with the file (never throws, never aborts on bad input).
std::string read(const std::string &path, Array &out);

/// Parses .npy bytes already in memory; `what` names them in messages.
std::string parse(const uint8_t *bytes, size_t size, const std::string &what,
                  Array &out);

/// Writes a float32 array with the given shape. Returns an error message or
/// an empty string.
std::string writeF32(const std::string &path, const std::vector<int64_t> &shape,
                     const float *data);

/// Writes an int64 array with the given shape (an empty shape is a 0-d
/// array).
std::string writeI64(const std::string &path, const std::vector<int64_t> &shape,
                     const int64_t *data);

/// Writes `count(shape)` elements of `elementSize` bytes with the numpy dtype
/// string `descr` (e.g. "<f4").
std::string write(const std::string &path, const std::vector<int64_t> &shape,
                  const std::string &descr, size_t elementSize,
                  const void *data);

/// A human-readable dtype name for messages ("float32", "int32", ...).
std::string dtypeName(const Array &array);

/// The element types of a tensor argument of nora-run and nora-exec.
enum class ElementKind { F32, BF16, F16 };

/// Converts `array` to the bytes of `kind` elements, as nora-run and
/// nora-exec pass a tensor argument: f32, f64 and f16 files are converted
/// (rounded to nearest even for bf16/f16), a uint16 file gives raw bf16/f16
/// bits, an f16 file for an f16 argument is taken as is. Returns false when
/// the file's dtype cannot give `kind`.
bool toElements(const Array &array, ElementKind kind,
                std::vector<uint8_t> &out);

/// What parseF32 found in a command-line number.
enum class ScalarStatus { Ok, NotANumber, NotFinite, OutOfRange };

/// Parses `text` (all of it) as a finite number that fits in f32.
ScalarStatus parseF32(const std::string &text, float &value);

/// Float conversions, round to nearest even; NaN stays NaN.
float halfToFloat(uint16_t bits);
uint16_t floatToHalf(float value);
float bf16ToFloat(uint16_t bits);
uint16_t floatToBf16(float value);

} // namespace mlir::nora::npy

#endif // NORA_RUNTIME_NPY_H
