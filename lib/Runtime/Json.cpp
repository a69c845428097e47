//===- Json.cpp - a small strict JSON parser (no LLVM) --------------------===//
//
// A recursive-descent parser over a byte range. Recursion is bounded by the
// depth limit, so hostile input cannot overflow the stack.
//
//===----------------------------------------------------------------------===//

#include "nora/Runtime/Json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

using namespace mlir::nora;
using namespace mlir::nora::json;

const Value *Value::find(std::string_view key) const {
  if (kind != Kind::Object)
    return nullptr;
  for (const auto &member : members)
    if (member.first == key)
      return &member.second;
  return nullptr;
}

const char *Value::kindName(Kind kind) {
  switch (kind) {
  case Kind::Null:
    return "null";
  case Kind::Bool:
    return "a boolean";
  case Kind::Number:
    return "a number";
  case Kind::String:
    return "a string";
  case Kind::Array:
    return "an array";
  case Kind::Object:
    return "an object";
  }
  return "?";
}

namespace {

class Parser {
public:
  Parser(std::string_view text, unsigned maxDepth)
      : text(text), maxDepth(maxDepth) {}

  bool parseDocument(Value &out) {
    skipSpace();
    if (!parseValue(out, 0))
      return false;
    skipSpace();
    if (pos != text.size())
      return fail("unexpected data after the JSON value");
    return true;
  }

  /// "line L, column C: message" for the first error.
  std::string error;

private:
  std::string_view text;
  unsigned maxDepth;
  size_t pos = 0;

  bool fail(const std::string &message) {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < pos && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    error = "line " + std::to_string(line) + ", column " +
            std::to_string(column) + ": " + message;
    return false;
  }

  bool atEnd() const { return pos >= text.size(); }
  char peek() const { return text[pos]; }

  void skipSpace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' ||
                        peek() == '\r'))
      ++pos;
  }

  bool expectWord(std::string_view word) {
    if (text.substr(pos, word.size()) != word)
      return fail("invalid literal (expected '" + std::string(word) + "')");
    pos += word.size();
    return true;
  }

  bool parseValue(Value &out, unsigned depth) {
    if (atEnd())
      return fail("unexpected end of input (expected a value)");
    switch (peek()) {
    case '{':
      return parseObject(out, depth + 1);
    case '[':
      return parseArray(out, depth + 1);
    case '"':
      out.kind = Value::Kind::String;
      return parseString(out.string);
    case 't':
      out.kind = Value::Kind::Bool;
      out.boolean = true;
      return expectWord("true");
    case 'f':
      out.kind = Value::Kind::Bool;
      out.boolean = false;
      return expectWord("false");
    case 'n':
      out.kind = Value::Kind::Null;
      return expectWord("null");
    default:
      if (peek() == '-' || (peek() >= '0' && peek() <= '9'))
        return parseNumber(out);
      return fail("unexpected character (expected a value)");
    }
  }

  bool parseObject(Value &out, unsigned depth) {
    if (depth > maxDepth)
      return fail("nesting deeper than " + std::to_string(maxDepth));
    out.kind = Value::Kind::Object;
    ++pos; // '{'
    skipSpace();
    if (!atEnd() && peek() == '}') {
      ++pos;
      return true;
    }
    // Duplicate keys are found in O(log n) each, also in huge objects.
    std::set<std::string> keys;
    while (true) {
      skipSpace();
      if (atEnd() || peek() != '"')
        return fail("expected a string key");
      std::string key;
      if (!parseString(key))
        return false;
      if (!keys.insert(key).second)
        return fail("duplicate key \"" + key + "\"");
      skipSpace();
      if (atEnd() || peek() != ':')
        return fail("expected ':' after a key");
      ++pos;
      skipSpace();
      Value member;
      if (!parseValue(member, depth))
        return false;
      out.members.emplace_back(std::move(key), std::move(member));
      skipSpace();
      if (atEnd())
        return fail("unexpected end of input in an object");
      if (peek() == '}') {
        ++pos;
        return true;
      }
      if (peek() != ',')
        return fail("expected ',' or '}' in an object");
      ++pos;
    }
  }

  bool parseArray(Value &out, unsigned depth) {
    if (depth > maxDepth)
      return fail("nesting deeper than " + std::to_string(maxDepth));
    out.kind = Value::Kind::Array;
    ++pos; // '['
    skipSpace();
    if (!atEnd() && peek() == ']') {
      ++pos;
      return true;
    }
    while (true) {
      skipSpace();
      Value element;
      if (!parseValue(element, depth))
        return false;
      out.elements.push_back(std::move(element));
      skipSpace();
      if (atEnd())
        return fail("unexpected end of input in an array");
      if (peek() == ']') {
        ++pos;
        return true;
      }
      if (peek() != ',')
        return fail("expected ',' or ']' in an array");
      ++pos;
    }
  }

  static void appendUtf8(std::string &out, uint32_t code) {
    if (code < 0x80) {
      out += char(code);
    } else if (code < 0x800) {
      out += char(0xC0 | (code >> 6));
      out += char(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += char(0xE0 | (code >> 12));
      out += char(0x80 | ((code >> 6) & 0x3F));
      out += char(0x80 | (code & 0x3F));
    } else {
      out += char(0xF0 | (code >> 18));
      out += char(0x80 | ((code >> 12) & 0x3F));
      out += char(0x80 | ((code >> 6) & 0x3F));
      out += char(0x80 | (code & 0x3F));
    }
  }

  bool parseHex4(uint32_t &code) {
    if (text.size() - pos < 4)
      return fail("truncated \\u escape");
    code = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text[pos++];
      code <<= 4;
      if (c >= '0' && c <= '9')
        code |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f')
        code |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        code |= uint32_t(c - 'A' + 10);
      else
        return fail("invalid hex digit in a \\u escape");
    }
    return true;
  }

  bool parseEscape(std::string &out) {
    if (atEnd())
      return fail("unterminated string");
    char c = text[pos++];
    switch (c) {
    case '"':
    case '\\':
    case '/':
      out += c;
      return true;
    case 'b':
      out += '\b';
      return true;
    case 'f':
      out += '\f';
      return true;
    case 'n':
      out += '\n';
      return true;
    case 'r':
      out += '\r';
      return true;
    case 't':
      out += '\t';
      return true;
    case 'u': {
      uint32_t code = 0;
      if (!parseHex4(code))
        return false;
      if (code >= 0xDC00 && code <= 0xDFFF)
        return fail("unpaired low surrogate in a \\u escape");
      if (code >= 0xD800 && code <= 0xDBFF) {
        uint32_t low = 0;
        if (text.substr(pos, 2) != "\\u")
          return fail("unpaired high surrogate in a \\u escape");
        pos += 2;
        if (!parseHex4(low))
          return false;
        if (low < 0xDC00 || low > 0xDFFF)
          return fail("invalid low surrogate in a \\u escape");
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
      }
      appendUtf8(out, code);
      return true;
    }
    default:
      --pos;
      return fail("invalid escape in a string");
    }
  }

  /// Copies one well-formed UTF-8 sequence (shortest form, no surrogates).
  bool copyUtf8(std::string &out) {
    auto lead = uint8_t(text[pos]);
    size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    uint32_t code = lead & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07);
    if (lead < 0xC2 || lead > 0xF4 || text.size() - pos < length)
      return fail("invalid UTF-8 in a string");
    for (size_t i = 1; i < length; ++i) {
      auto next = uint8_t(text[pos + i]);
      if ((next & 0xC0) != 0x80)
        return fail("invalid UTF-8 in a string");
      code = (code << 6) | (next & 0x3F);
    }
    if ((length == 3 && code < 0x800) || (length == 4 && code < 0x10000) ||
        code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
      return fail("invalid UTF-8 in a string");
    out.append(text.substr(pos, length));
    pos += length;
    return true;
  }

  bool parseString(std::string &out) {
    ++pos; // '"'
    while (true) {
      if (atEnd())
        return fail("unterminated string");
      auto c = uint8_t(peek());
      if (c == '"') {
        ++pos;
        return true;
      }
      if (c < 0x20)
        return fail("control character in a string");
      if (c == '\\') {
        ++pos;
        if (!parseEscape(out))
          return false;
      } else if (c >= 0x80) {
        if (!copyUtf8(out))
          return false;
      } else {
        out += char(c);
        ++pos;
      }
    }
  }

  bool parseNumber(Value &out) {
    size_t start = pos;
    auto digit = [&]() { return !atEnd() && peek() >= '0' && peek() <= '9'; };
    if (peek() == '-')
      ++pos;
    if (!digit())
      return fail("invalid number");
    if (peek() == '0') {
      ++pos;
      if (digit())
        return fail("invalid number (leading zero)");
    } else {
      while (digit())
        ++pos;
    }
    bool integral = true;
    if (!atEnd() && peek() == '.') {
      integral = false;
      ++pos;
      if (!digit())
        return fail("invalid number (no digit after '.')");
      while (digit())
        ++pos;
    }
    if (!atEnd() && (peek() == 'e' || peek() == 'E')) {
      integral = false;
      ++pos;
      if (!atEnd() && (peek() == '+' || peek() == '-'))
        ++pos;
      if (!digit())
        return fail("invalid number (no digit in the exponent)");
      while (digit())
        ++pos;
    }
    std::string token(text.substr(start, pos - start));
    out.kind = Value::Kind::Number;
    out.number = std::strtod(token.c_str(), nullptr);
    if (!std::isfinite(out.number))
      return fail("number out of range");
    if (integral) {
      errno = 0;
      long long value = std::strtoll(token.c_str(), nullptr, 10);
      if (errno == 0) {
        out.isInteger = true;
        out.integer = int64_t(value);
      }
    }
    return true;
  }
};

} // namespace

std::string json::parse(std::string_view text, Value &out, unsigned maxDepth) {
  out = Value();
  Parser parser(text, maxDepth);
  if (!parser.parseDocument(out)) {
    out = Value();
    return parser.error;
  }
  return "";
}
