// CPython 3.11 float()/int() parsing: _PyUnicode_TransformDecimalAndSpaceToASCII, then
// _Py_string_to_number_with_underscores, float_from_string_inner and _PyOS_ascii_strtod.
#include "evaluators/python_float.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "evaluators/text_normalization.hpp"

namespace mlab::evaluators {
namespace {

// ASCII text, or nullopt for a character Python turns into '?' (always a parse error).
std::optional<std::string> to_ascii(std::u32string_view text) {
  bool ascii = true;
  for (char32_t c : text) ascii = ascii && c < 128;
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (ascii || c < 127) {
      out.push_back(static_cast<char>(c));
    } else if (py_isspace(c)) {
      out.push_back(' ');
    } else {
      const int digit = py_decimal_value(c);
      if (digit < 0) return std::nullopt;
      out.push_back(static_cast<char>('0' + digit));
    }
  }
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Underscores only between digits (checked over the unstripped text, as CPython does).
std::optional<std::string> remove_underscores(const std::string& s) {
  if (s.find('_') == std::string::npos) return s;
  std::string out;
  char prev = '\0';
  for (char c : s) {
    if (c == '_') {
      if (!is_digit(prev)) return std::nullopt;
    } else {
      if (prev == '_' && !is_digit(c)) return std::nullopt;
      out.push_back(c);
    }
    prev = c;
  }
  if (prev == '_') return std::nullopt;
  return out;
}

std::string_view strip_ascii(std::string_view s) {
  while (!s.empty() && is_ascii_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != b[i]) return false;
  }
  return true;
}

std::optional<std::string> normalized(std::u32string_view text) {
  std::optional<std::string> ascii = to_ascii(text);
  if (!ascii) return std::nullopt;
  return remove_underscores(*ascii);
}

}  // namespace

std::optional<double> python_float(std::u32string_view text) {
  std::optional<std::string> clean = normalized(text);
  if (!clean) return std::nullopt;
  std::string_view s = strip_ascii(*clean);
  if (s.empty()) return std::nullopt;
  bool negative = false;
  std::string_view body = s;
  if (body.front() == '-' || body.front() == '+') {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  if (iequals(body, "inf") || iequals(body, "infinity")) {
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  }
  if (iequals(body, "nan")) {
    return negative ? -std::numeric_limits<double>::quiet_NaN()
                    : std::numeric_limits<double>::quiet_NaN();
  }
  // digits [. digits] | . digits, then optional exponent e[+-]digits.
  std::size_t i = 0;
  std::size_t mantissa_digits = 0;
  while (i < body.size() && is_digit(body[i])) ++i, ++mantissa_digits;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && is_digit(body[i])) ++i, ++mantissa_digits;
  }
  if (mantissa_digits == 0) return std::nullopt;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    std::size_t j = i + 1;
    if (j < body.size() && (body[j] == '+' || body[j] == '-')) ++j;
    std::size_t exponent_digits = 0;
    while (j < body.size() && is_digit(body[j])) ++j, ++exponent_digits;
    if (exponent_digits == 0) return std::nullopt;
    i = j;
  }
  if (i != body.size()) return std::nullopt;
  // The grammar is checked; glibc strtod rounds correctly (overflow -> inf, underflow -> 0).
  const std::string digits(body);
  errno = 0;
  const double value = std::strtod(digits.c_str(), nullptr);
  return negative ? -value : value;
}

std::optional<std::int64_t> python_int(std::u32string_view text) {
  std::optional<std::string> clean = normalized(text);
  if (!clean) return std::nullopt;
  std::string_view s = strip_ascii(*clean);
  bool negative = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  std::int64_t value = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    if (value > (std::numeric_limits<std::int64_t>::max() - 9) / 10) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

}  // namespace mlab::evaluators
