#pragma once
// ChartQA relaxed accuracy (Masry et al. 2022, §5.1; Methani et al. 2020): a numeric answer is
// correct within 5% relative error, anything else needs a case-insensitive exact match. As
// lmms-eval's chartqa/utils.py `relaxed_correctness`: numbers are Python float() (a trailing
// '%' divides by 100), a target of 0 falls back to the string comparison, IEEE doubles decide
// the edge (1.05 vs 1 is wrong).
#include <string_view>

namespace mlab::evaluators {

// `prediction` as the pipeline hands it (stripped), `target` the raw doc answer.
bool relaxed_correctness(std::u32string_view prediction, std::u32string_view target,
                         double max_relative_change = 0.05);

}  // namespace mlab::evaluators
