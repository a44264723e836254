// ANLS, lmms-eval api/metrics.py `anls` (threshold 0.5) and `levenshtein_distance`.
#include "evaluators/docvqa_metric.hpp"

#include <algorithm>
#include <numeric>

#include "core/error.hpp"
#include "evaluators/text_normalization.hpp"

namespace mlab::evaluators {
namespace {

// " ".join(text.strip().lower().split())
std::u32string collapse(std::u32string_view text) {
  std::u32string out;
  for (const std::u32string& word : py_split(py_lower(py_strip(text)))) {
    if (!out.empty()) out.push_back(U' ');
    out += word;
  }
  return out;
}

}  // namespace

std::size_t levenshtein_distance(std::u32string_view a, std::u32string_view b) {
  if (a.size() > b.size()) std::swap(a, b);
  std::vector<std::size_t> row(a.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  std::vector<std::size_t> next(a.size() + 1);
  for (std::size_t j = 0; j < b.size(); ++j) {
    next[0] = j + 1;
    for (std::size_t i = 0; i < a.size(); ++i) {
      next[i + 1] = a[i] == b[j] ? row[i] : 1 + std::min({row[i], row[i + 1], next[i]});
    }
    std::swap(row, next);
  }
  return row[a.size()];
}

double anls(const std::vector<std::u32string>& answers, std::u32string_view prediction,
            double threshold) {
  MLAB_CHECK(!answers.empty(), "anls: the doc has no gold answers");
  const std::u32string pred_norm = collapse(prediction);
  const std::size_t pred_upper = py_upper(prediction).size();
  double best = 0.0;
  for (std::size_t k = 0; k < answers.size(); ++k) {
    const std::size_t dist = levenshtein_distance(collapse(answers[k]), pred_norm);
    const std::size_t length = std::max(py_upper(answers[k]).size(), pred_upper);
    const double value =
        length == 0 ? 0.0 : static_cast<double>(dist) / static_cast<double>(length);
    best = k == 0 ? value : std::min(best, value);
  }
  const double result = 1.0 - best;
  return result < threshold ? 0.0 : result;
}

}  // namespace mlab::evaluators
