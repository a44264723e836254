#pragma once
// Python 3.11 `str` primitives on Unicode code points, as lmms-eval's metrics rely on them
// (specs/benchmarks.md §5): strip/split whitespace (str.isspace), full lower()/upper() case
// mapping with the Final_Sigma rule, the `\w` class of Python's `re`, and the normalisation of
// lmms-eval's `exact_match` (HF evaluate port on numpy arrays, api/metrics.py).
// Text is UTF-8 at the API boundary and std::u32string (one element per code point) inside.
#include <string>
#include <string_view>
#include <vector>

namespace mlab::evaluators {

// UTF-8 -> code points. Throws mlab::Error naming `what` and the byte offset on invalid UTF-8
// (overlong forms, surrogates, truncated sequences, code points above U+10FFFF).
std::u32string utf8_decode(std::string_view text, std::string_view what = "text");
// Code points -> UTF-8 (no validation needed: every char32_t we produce is a scalar value).
std::string utf8_encode(std::u32string_view text);

// str.isspace() of one code point (29 code points, U+001C..U+001F and U+0085 included).
bool py_isspace(char32_t c);
// str.isalnum() of one code point.
bool py_isalnum(char32_t c);
// Python `re` `\w` for str patterns: isalnum() or '_'.
bool py_is_word(char32_t c);
// Value 0..9 of a decimal digit (ASCII or any Unicode Nd), or -1.
int py_decimal_value(char32_t c);

// str.strip() / str.split() (no arguments).
std::u32string py_strip(std::u32string_view text);
std::vector<std::u32string> py_split(std::u32string_view text);
// str.rstrip(chars) for one character.
std::u32string py_rstrip_char(std::u32string_view text, char32_t c);
// str.lower() (full mapping, Final_Sigma) and str.upper() (full mapping, e.g. 'ß' -> "SS").
std::u32string py_lower(std::u32string_view text);
std::u32string py_upper(std::u32string_view text);

// The value lmms-eval's exact_match (ignore_case, ignore_punctuation) compares for `text`:
// numpy's fixed-width unicode array drops trailing U+0000 and truncates lower() to the input's
// width ('İ' -> "i", numpy quirk of specs §5.6), then the 32 ASCII punctuation characters of
// string.punctuation are deleted.
std::u32string exact_match_normalize(std::u32string_view text);
// lmms-eval `exact_match` of one prediction against one reference: 1.0 or 0.0.
double exact_match(std::u32string_view reference, std::u32string_view prediction);

}  // namespace mlab::evaluators
