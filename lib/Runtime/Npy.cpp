//===- Npy.cpp - .npy files and float conversions (no LLVM) ----*- C++ -*-===//

#include "nora/Runtime/Npy.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <sys/stat.h>

using namespace mlir::nora::npy;

int64_t Array::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

size_t Array::elementSize() const {
  switch (dtype) {
  case DType::F64:
  case DType::I64:
    return 8;
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F16:
  case DType::U16:
    return 2;
  case DType::U8:
  case DType::Bool:
    return 1;
  case DType::Unsupported:
    return 0;
  }
  return 0;
}

std::string mlir::nora::npy::dtypeName(const Array &array) {
  switch (array.dtype) {
  case DType::F32:
    return "float32";
  case DType::F64:
    return "float64";
  case DType::F16:
    return "float16";
  case DType::U16:
    return "uint16";
  case DType::I32:
    return "int32";
  case DType::I64:
    return "int64";
  case DType::U8:
    return "uint8";
  case DType::Bool:
    return "bool";
  case DType::Unsupported:
    break;
  }
  return "'" + array.descr + "'";
}

namespace {

/// Finds `'key':` in the header dict and returns the text after it.
bool findValue(const std::string &header, const std::string &key, size_t &pos) {
  for (const char *quote : {"'", "\""}) {
    std::string pattern = std::string(quote) + key + quote;
    size_t at = header.find(pattern);
    if (at == std::string::npos)
      continue;
    at = header.find(':', at + pattern.size());
    if (at == std::string::npos)
      return false;
    pos = at + 1;
    while (pos < header.size() && header[pos] == ' ')
      ++pos;
    return pos < header.size();
  }
  return false;
}

DType dtypeOf(const std::string &descr) {
  // '|' (not applicable) and '<' (little-endian) and '=' (native, which is
  // little-endian on every machine we run on).
  if (descr.size() < 2 ||
      (descr[0] != '<' && descr[0] != '|' && descr[0] != '='))
    return DType::Unsupported;
  std::string kind = descr.substr(1);
  if (kind == "f4")
    return DType::F32;
  if (kind == "f8")
    return DType::F64;
  if (kind == "f2")
    return DType::F16;
  if (kind == "u2")
    return DType::U16;
  if (kind == "i4")
    return DType::I32;
  if (kind == "i8")
    return DType::I64;
  if (kind == "u1")
    return DType::U8;
  if (kind == "b1")
    return DType::Bool;
  return DType::Unsupported;
}

std::string parseHeader(const std::string &header, const std::string &what,
                        Array &out) {
  size_t pos;
  if (!findValue(header, "descr", pos) ||
      (header[pos] != '\'' && header[pos] != '"'))
    return what + ": malformed .npy header (no 'descr')";
  size_t end = header.find(header[pos], pos + 1);
  if (end == std::string::npos)
    return what + ": malformed .npy header (unterminated 'descr')";
  out.descr = header.substr(pos + 1, end - pos - 1);
  out.dtype = dtypeOf(out.descr);

  if (!findValue(header, "fortran_order", pos))
    return what + ": malformed .npy header (no 'fortran_order')";
  if (header.compare(pos, 4, "True") == 0)
    return what + ": Fortran-order arrays are not supported (save a "
                  "C-contiguous array, e.g. np.ascontiguousarray)";
  if (header.compare(pos, 5, "False") != 0)
    return what + ": malformed .npy header (bad 'fortran_order')";

  if (!findValue(header, "shape", pos) || header[pos] != '(')
    return what + ": malformed .npy header (no 'shape')";
  end = header.find(')', pos);
  if (end == std::string::npos)
    return what + ": malformed .npy header (unterminated 'shape')";
  std::string dims = header.substr(pos + 1, end - pos - 1);
  out.shape.clear();
  std::stringstream stream(dims);
  std::string item;
  while (std::getline(stream, item, ',')) {
    size_t first = item.find_first_not_of(' ');
    if (first == std::string::npos)
      continue; // trailing comma of a 1-tuple
    item = item.substr(first, item.find_last_not_of(' ') - first + 1);
    if (item.empty() || item.size() > 18 ||
        item.find_first_not_of("0123456789") != std::string::npos)
      return what + ": malformed .npy header (bad shape entry '" + item + "')";
    out.shape.push_back(std::stoll(item));
  }
  // Guard the element count against overflow before anything is allocated.
  int64_t count = 1;
  for (int64_t d : out.shape) {
    if (d != 0 && count > std::numeric_limits<int64_t>::max() / 16 / d)
      return what + ": shape too large";
    count *= d;
  }
  return "";
}

} // namespace

std::string mlir::nora::npy::parse(const uint8_t *bytes, size_t size,
                                   const std::string &what, Array &out) {
  static const char magic[] = "\x93NUMPY";
  if (size < 10 || std::memcmp(bytes, magic, 6) != 0)
    return what + ": not a .npy file (bad magic)";
  unsigned major = bytes[6];
  size_t headerLen, headerStart;
  if (major == 1) {
    headerLen = bytes[8] | (size_t(bytes[9]) << 8);
    headerStart = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12)
      return what + ": truncated .npy header";
    headerLen = bytes[8] | (size_t(bytes[9]) << 8) | (size_t(bytes[10]) << 16) |
                (size_t(bytes[11]) << 24);
    headerStart = 12;
  } else {
    return what + ": unsupported .npy version " + std::to_string(major);
  }
  if (headerLen > size - headerStart)
    return what + ": truncated .npy header";
  std::string header(reinterpret_cast<const char *>(bytes + headerStart),
                     headerLen);
  std::string error = parseHeader(header, what, out);
  if (!error.empty())
    return error;
  size_t dataStart = headerStart + headerLen;
  if (out.dtype == DType::Unsupported)
    return what + ": unsupported dtype '" + out.descr + "'";
  uint64_t expected = uint64_t(out.numElements()) * out.elementSize();
  uint64_t available = size - dataStart;
  if (available < expected)
    return what + ": truncated data: expected " + std::to_string(expected) +
           " bytes for shape and dtype " + dtypeName(out) + ", found " +
           std::to_string(available);
  if (available > expected)
    return what + ": " + std::to_string(available - expected) +
           " unexpected bytes after the data";
  out.data.assign(bytes + dataStart, bytes + size);
  return "";
}

std::string mlir::nora::npy::read(const std::string &path, Array &out) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0)
    return "cannot open input file '" + path + "': " + std::strerror(errno);
  if (!S_ISREG(info.st_mode))
    return "input '" + path + "' is not a regular file";
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return "cannot open input file '" + path + "': " + std::strerror(errno);
  std::streamoff size = static_cast<std::streamoff>(info.st_size);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  file.seekg(0);
  if (size > 0 && !file.read(reinterpret_cast<char *>(bytes.data()), size))
    return "cannot read input file '" + path + "'";
  return parse(bytes.data(), bytes.size(), "'" + path + "'", out);
}

std::string mlir::nora::npy::writeF32(const std::string &path,
                                      const std::vector<int64_t> &shape,
                                      const float *data) {
  return write(path, shape, "<f4", sizeof(float), data);
}

std::string mlir::nora::npy::writeI64(const std::string &path,
                                      const std::vector<int64_t> &shape,
                                      const int64_t *data) {
  return write(path, shape, "<i8", sizeof(int64_t), data);
}

std::string mlir::nora::npy::write(const std::string &path,
                                   const std::vector<int64_t> &shape,
                                   const std::string &descr, size_t elementSize,
                                   const void *data) {
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  int64_t count = 1;
  for (int64_t d : shape) {
    header += std::to_string(d) + ",";
    count *= d;
  }
  if (shape.size() > 1)
    header.pop_back();
  header += "), }";
  // Pad so that the data starts on a 64-byte boundary; end with a newline.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  FILE *file = std::fopen(path.c_str(), "wb");
  if (!file)
    return "cannot write output file '" + path + "': " + std::strerror(errno);
  uint8_t preamble[10] = {0x93,
                          'N',
                          'U',
                          'M',
                          'P',
                          'Y',
                          1,
                          0,
                          uint8_t(header.size() & 0xff),
                          uint8_t(header.size() >> 8)};
  bool ok =
      std::fwrite(preamble, 1, 10, file) == 10 &&
      std::fwrite(header.data(), 1, header.size(), file) == header.size() &&
      std::fwrite(data, elementSize, size_t(count), file) == size_t(count);
  ok = (std::fclose(file) == 0) && ok;
  if (!ok) {
    std::remove(path.c_str());
    return "cannot write output file '" + path + "'";
  }
  return "";
}

//===----------------------------------------------------------------------===//
// Float conversions
//===----------------------------------------------------------------------===//

static uint32_t bitsOf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}

static float floatOf(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

float mlir::nora::npy::bf16ToFloat(uint16_t bits) {
  return floatOf(uint32_t(bits) << 16);
}

uint16_t mlir::nora::npy::floatToBf16(float value) {
  uint32_t bits = bitsOf(value);
  if ((bits & 0x7fffffff) > 0x7f800000) // NaN: keep it quiet and a NaN
    return uint16_t((bits >> 16) | 0x40);
  uint32_t roundingBias = 0x7fff + ((bits >> 16) & 1);
  return uint16_t((bits + roundingBias) >> 16);
}

float mlir::nora::npy::halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  if (exponent == 0x1f) // inf or NaN
    return floatOf(sign | 0x7f800000 | (mantissa << 13));
  if (exponent == 0) {
    if (mantissa == 0)
      return floatOf(sign);
    // Subnormal half: value = mantissa * 2^-24.
    float value = float(mantissa) * 5.9604644775390625e-8f;
    return sign ? -value : value;
  }
  return floatOf(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t mlir::nora::npy::floatToHalf(float value) {
  uint32_t bits = bitsOf(value);
  uint16_t sign = uint16_t((bits >> 16) & 0x8000);
  uint32_t absBits = bits & 0x7fffffff;
  if (absBits > 0x7f800000) // NaN
    return uint16_t(sign | 0x7e00);
  if (absBits >= 0x477ff000) // rounds to >= 65520: infinity
    return uint16_t(sign | 0x7c00);
  if (absBits < 0x38800000) { // below the smallest normal half (2^-14)
    // Subnormal: round value / 2^-24 to nearest even integer.
    float scaled = floatOf(absBits) * 16777216.0f; // exact: power of two
    uint32_t integer = uint32_t(scaled);
    float remainder = scaled - float(integer);
    if (remainder > 0.5f || (remainder == 0.5f && (integer & 1)))
      ++integer;
    return uint16_t(sign | integer);
  }
  // Normal: rebias the exponent, round the mantissa to 10 bits.
  uint32_t rounded = absBits + 0xfff + ((absBits >> 13) & 1);
  return uint16_t(sign | ((rounded - 0x38000000) >> 13));
}

/// Element `i` of a float file (f32, f64 or f16) as a float.
static float floatElement(const mlir::nora::npy::Array &array, int64_t i) {
  using mlir::nora::npy::DType;
  if (array.dtype == DType::F32) {
    float value;
    std::memcpy(&value, &array.data[size_t(i) * 4], 4);
    return value;
  }
  if (array.dtype == DType::F64) {
    double value;
    std::memcpy(&value, &array.data[size_t(i) * 8], 8);
    return float(value);
  }
  uint16_t bits;
  std::memcpy(&bits, &array.data[size_t(i) * 2], 2);
  return mlir::nora::npy::halfToFloat(bits);
}

bool mlir::nora::npy::toElements(const Array &array, ElementKind kind,
                                 std::vector<uint8_t> &out) {
  bool isFloatFile = array.dtype == DType::F32 || array.dtype == DType::F64 ||
                     array.dtype == DType::F16;
  int64_t n = array.numElements();
  if (kind == ElementKind::F32) {
    if (!isFloatFile)
      return false;
    out.resize(size_t(n) * 4);
    for (int64_t i = 0; i < n; ++i) {
      float value = floatElement(array, i);
      std::memcpy(&out[size_t(i) * 4], &value, 4);
    }
    return true;
  }
  if (array.dtype == DType::U16 ||
      (kind == ElementKind::F16 && array.dtype == DType::F16)) {
    out = array.data; // raw bits
    return true;
  }
  if (!isFloatFile)
    return false;
  out.resize(size_t(n) * 2);
  for (int64_t i = 0; i < n; ++i) {
    float value = floatElement(array, i);
    uint16_t bits =
        kind == ElementKind::BF16 ? floatToBf16(value) : floatToHalf(value);
    std::memcpy(&out[size_t(i) * 2], &bits, 2);
  }
  return true;
}

mlir::nora::npy::ScalarStatus mlir::nora::npy::parseF32(const std::string &text,
                                                        float &value) {
  char *end = nullptr;
  errno = 0;
  double parsed = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size())
    return ScalarStatus::NotANumber;
  if (!std::isfinite(parsed))
    return ScalarStatus::NotFinite;
  if (std::fabs(parsed) > double(std::numeric_limits<float>::max()))
    return ScalarStatus::OutOfRange;
  value = float(parsed);
  return ScalarStatus::Ok;
}
