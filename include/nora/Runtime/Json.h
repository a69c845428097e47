//===- Json.h - a small strict JSON parser (no LLVM) ------------*- C++ -*-===//
//
// The JSON reader of the artifact runtime (docs/artifact.md). It links no LLVM
// or MLIR, so that nora-exec builds on a machine without them. Strict RFC 8259:
// no comments, no trailing commas, no leading zeros, no duplicate keys, UTF-8
// checked, nesting depth limited. Any sequence of bytes gives either a value
// or a message; it never throws and never aborts.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_RUNTIME_JSON_H
#define NORA_RUNTIME_JSON_H

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mlir::nora::json {

/// One JSON value. Objects keep their members in document order.
struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind = Kind::Null;
  bool boolean = false;
  /// Every number as a double.
  double number = 0;
  /// True when the number was written without fraction or exponent and fits
  /// in int64_t; `integer` then holds it exactly.
  bool isInteger = false;
  int64_t integer = 0;
  std::string string;
  std::vector<Value> elements;
  std::vector<std::pair<std::string, Value>> members;

  /// The member named `key` of an object, or null when absent or when this
  /// is not an object.
  const Value *find(std::string_view key) const;

  /// "null", "a boolean", "a number", "a string", "an array", "an object".
  static const char *kindName(Kind kind);
};

/// The deepest nesting of arrays and objects `parse` accepts by default.
constexpr unsigned kDefaultMaxDepth = 64;

/// Parses `text` as one JSON document. Returns an empty string on success,
/// else "line L, column C: <what is wrong>".
std::string parse(std::string_view text, Value &out,
                  unsigned maxDepth = kDefaultMaxDepth);

} // namespace mlir::nora::json

#endif // NORA_RUNTIME_JSON_H
