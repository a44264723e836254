#pragma once
// DocVQA's ANLS (Biten et al. 2019, "Scene Text Visual Question Answering", §3), as lmms-eval's
// `anls` metric computes it (api/metrics.py): per gold answer, Levenshtein distance of the
// lower-cased, whitespace-collapsed strings divided by max(len(gold.upper()), len(pred.upper()))
// of the RAW strings; score = 1 - min over golds, zeroed below tau (exactly tau is kept).
#include <string>
#include <string_view>
#include <vector>

namespace mlab::evaluators {

// Levenshtein distance over code points (insert/delete/substitute cost 1).
std::size_t levenshtein_distance(std::u32string_view a, std::u32string_view b);

// ANLS of one prediction (already stripped by the pipeline) against its gold answers.
// Returns 0 when below `threshold`. Throws mlab::Error when `answers` is empty (Python's
// min() of an empty list).
double anls(const std::vector<std::u32string>& answers, std::u32string_view prediction,
            double threshold = 0.5);

}  // namespace mlab::evaluators
