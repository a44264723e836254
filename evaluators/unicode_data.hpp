#pragma once
// Unicode property tables of CPython 3.11 (Unicode 14.0), generated into unicode_data.cpp by
// tools/fixtures/metric_oracle.py tables. Used by text_normalization.cpp only.
#include <cstddef>
#include <cstdint>

namespace mlab::evaluators::unicode {

// Code point `cp` maps to kCasePool[offset, offset + length) (full case mapping, SpecialCasing
// unconditional expansions included). Sorted by cp; code points not listed map to themselves.
struct CaseMapping {
  char32_t cp;
  std::uint32_t offset;
  std::uint32_t length;
};

// Inclusive code point range; tables are sorted and disjoint.
struct Range {
  char32_t first;
  char32_t last;
};

// Decimal digits (category Nd): first..last carry the values value_of_first, +1, ...
struct DecimalRange {
  char32_t first;
  char32_t last;
  int value_of_first;
};

extern const CaseMapping kLowerMappings[];
extern const std::size_t kLowerMappingsSize;
extern const CaseMapping kUpperMappings[];
extern const std::size_t kUpperMappingsSize;
extern const char32_t kCasePool[];
extern const Range kSpaceRanges[];  // str.isspace()
extern const std::size_t kSpaceRangesSize;
extern const Range kAlnumRanges[];  // str.isalnum()
extern const std::size_t kAlnumRangesSize;
extern const Range kCasedRanges[];  // DerivedCoreProperties Cased
extern const std::size_t kCasedRangesSize;
extern const Range kCaseIgnorableRanges[];  // DerivedCoreProperties Case_Ignorable
extern const std::size_t kCaseIgnorableRangesSize;
extern const DecimalRange kDecimalRanges[];  // non-ASCII decimal digits (Py_UNICODE_TODECIMAL)
extern const std::size_t kDecimalRangesSize;

}  // namespace mlab::evaluators::unicode
