// Python 3.11 str primitives (specs/benchmarks.md §5) over the generated CPython tables.
#include "evaluators/text_normalization.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "evaluators/unicode_data.hpp"

namespace mlab::evaluators {
namespace {

bool in_ranges(const unicode::Range* table, std::size_t size, char32_t c) {
  const unicode::Range* end = table + size;
  const unicode::Range* it = std::upper_bound(
      table, end, c, [](char32_t v, const unicode::Range& r) { return v < r.first; });
  return it != table && c <= (it - 1)->last;
}

const unicode::CaseMapping* find_mapping(const unicode::CaseMapping* table, std::size_t size,
                                         char32_t c) {
  const unicode::CaseMapping* end = table + size;
  const unicode::CaseMapping* it = std::lower_bound(
      table, end, c, [](const unicode::CaseMapping& m, char32_t v) { return m.cp < v; });
  return (it != end && it->cp == c) ? it : nullptr;
}

void append_mapped(std::u32string& out, const unicode::CaseMapping* table, std::size_t size,
                   char32_t c) {
  const unicode::CaseMapping* m = find_mapping(table, size, c);
  if (m == nullptr) {
    out.push_back(c);
  } else {
    out.append(unicode::kCasePool + m->offset, m->length);
  }
}

bool is_cased(char32_t c) { return in_ranges(unicode::kCasedRanges, unicode::kCasedRangesSize, c); }
bool is_case_ignorable(char32_t c) {
  return in_ranges(unicode::kCaseIgnorableRanges, unicode::kCaseIgnorableRangesSize, c);
}

// CPython's handle_capital_sigma: U+03A3 lowers to final sigma U+03C2 after a cased letter
// (case-ignorables skipped) unless a cased letter follows (case-ignorables skipped).
char32_t lower_capital_sigma(std::u32string_view text, std::size_t i) {
  std::size_t j = i;
  char32_t c = 0;
  bool found = false;
  while (j > 0) {
    c = text[--j];
    if (!is_case_ignorable(c)) {
      found = true;
      break;
    }
  }
  bool final_sigma = found && is_cased(c);
  if (final_sigma && i + 1 < text.size()) {
    std::size_t k = i + 1;
    for (; k < text.size(); ++k) {
      c = text[k];
      if (!is_case_ignorable(c)) break;
    }
    final_sigma = k == text.size() || !is_cased(c);
  }
  return final_sigma ? U'\u03C2' : U'\u03C3';
}

bool is_ascii_punctuation(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

std::u32string_view rstrip_nul(std::u32string_view text) {
  while (!text.empty() && text.back() == U'\0') text.remove_suffix(1);
  return text;
}

}  // namespace

std::u32string utf8_decode(std::string_view text, std::string_view what) {
  std::u32string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    int extra = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    } else if ((b0 & 0xE0) == 0xC0) {
      extra = 1, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      extra = 2, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      extra = 3, cp = b0 & 0x07, min = 0x10000;
    } else {
      MLAB_FAIL(what, ": invalid UTF-8 lead byte 0x", std::hex, int(b0), std::dec, " at byte ", i);
    }
    MLAB_CHECK(i + extra < text.size(), what, ": truncated UTF-8 sequence at byte ", i);
    for (int k = 1; k <= extra; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      MLAB_CHECK((b & 0xC0) == 0x80, what, ": invalid UTF-8 continuation byte at byte ", i + k);
      cp = (cp << 6) | (b & 0x3F);
    }
    MLAB_CHECK(cp >= min, what, ": overlong UTF-8 sequence at byte ", i);
    MLAB_CHECK(cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF), what,
               ": UTF-8 sequence encodes an invalid code point at byte ", i);
    out.push_back(cp);
    i += extra + 1;
  }
  return out;
}

std::string utf8_encode(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

bool py_isspace(char32_t c) {
  return in_ranges(unicode::kSpaceRanges, unicode::kSpaceRangesSize, c);
}

bool py_isalnum(char32_t c) {
  return in_ranges(unicode::kAlnumRanges, unicode::kAlnumRangesSize, c);
}

bool py_is_word(char32_t c) { return c == U'_' || py_isalnum(c); }

int py_decimal_value(char32_t c) {
  if (c >= U'0' && c <= U'9') return static_cast<int>(c - U'0');
  const unicode::DecimalRange* end = unicode::kDecimalRanges + unicode::kDecimalRangesSize;
  const unicode::DecimalRange* it =
      std::upper_bound(unicode::kDecimalRanges, end, c,
                       [](char32_t v, const unicode::DecimalRange& r) { return v < r.first; });
  if (it == unicode::kDecimalRanges) return -1;
  --it;
  if (c > it->last) return -1;
  return it->value_of_first + static_cast<int>(c - it->first);
}

std::u32string py_strip(std::u32string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && py_isspace(text[begin])) ++begin;
  while (end > begin && py_isspace(text[end - 1])) --end;
  return std::u32string(text.substr(begin, end - begin));
}

std::vector<std::u32string> py_split(std::u32string_view text) {
  std::vector<std::u32string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && py_isspace(text[i])) ++i;
    if (i == text.size()) break;
    std::size_t j = i;
    while (j < text.size() && !py_isspace(text[j])) ++j;
    out.emplace_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

std::u32string py_rstrip_char(std::u32string_view text, char32_t c) {
  while (!text.empty() && text.back() == c) text.remove_suffix(1);
  return std::u32string(text);
}

std::u32string py_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == U'\u03A3') {
      out.push_back(lower_capital_sigma(text, i));
    } else {
      append_mapped(out, unicode::kLowerMappings, unicode::kLowerMappingsSize, text[i]);
    }
  }
  return out;
}

std::u32string py_upper(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text)
    append_mapped(out, unicode::kUpperMappings, unicode::kUpperMappingsSize, c);
  return out;
}

std::u32string exact_match_normalize(std::u32string_view text) {
  // np.asarray([s]): dtype <U{len(s)}; reading an element drops trailing NULs.
  const std::size_t width = text.size();
  std::u32string lowered = py_lower(rstrip_nul(text));
  if (lowered.size() > width) lowered.resize(width);
  std::u32string out;
  out.reserve(lowered.size());
  for (char32_t c : rstrip_nul(lowered)) {
    if (!is_ascii_punctuation(c)) out.push_back(c);
  }
  return std::u32string(rstrip_nul(out));
}

double exact_match(std::u32string_view reference, std::u32string_view prediction) {
  return exact_match_normalize(reference) == exact_match_normalize(prediction) ? 1.0 : 0.0;
}

}  // namespace mlab::evaluators
