#pragma once
// CPython 3.11 `float(str)` and `int(str)` on text (specs/benchmarks.md §5.3): Unicode decimal
// digits map to ASCII, single underscores between digits are allowed, surrounding ASCII
// whitespace (and, for non-ASCII text, any str.isspace() character) is ignored, inf/infinity/nan
// in any case; the value is the correctly rounded IEEE double. ChartQA's relaxed accuracy and
// AI2D's `int(doc["answer"])` depend on exactly this grammar.
#include <cstdint>
#include <optional>
#include <string_view>

namespace mlab::evaluators {

// float(text), or nullopt where Python raises ValueError.
std::optional<double> python_float(std::u32string_view text);

// int(text) (base 10), or nullopt where Python raises ValueError or the value does not fit in
// int64 (lmms-eval only indexes short option lists with it).
std::optional<std::int64_t> python_int(std::u32string_view text);

}  // namespace mlab::evaluators
