// ChartQA relaxed accuracy, lmms-eval chartqa/utils.py.
#include "evaluators/chartqa_metric.hpp"

#include <cmath>
#include <optional>
#include <string>

#include "evaluators/python_float.hpp"
#include "evaluators/text_normalization.hpp"

namespace mlab::evaluators {
namespace {

std::optional<double> to_float(std::u32string_view text) {
  if (!text.empty() && text.back() == U'%') {
    std::optional<double> value = python_float(py_rstrip_char(text, U'%'));
    if (!value) return std::nullopt;
    return *value / 100.0;
  }
  return python_float(text);
}

}  // namespace

bool relaxed_correctness(std::u32string_view prediction, std::u32string_view target,
                         double max_relative_change) {
  const std::optional<double> p = to_float(prediction);
  const std::optional<double> t = to_float(target);
  if (p && t && *t != 0.0) {  // Python truthiness: NaN is true, 0.0 and -0.0 are false
    return std::fabs(*p - *t) / std::fabs(*t) <= max_relative_change;
  }
  return py_lower(prediction) == py_lower(target);
}

}  // namespace mlab::evaluators
