// MMBench circular evaluation, lmms-eval mmbench/mmbench_evals.py (eval_result, eval_sub_data,
// can_infer_option, can_infer_text, extract_answer_from_item without an API).
#include "evaluators/mmbench_metric.hpp"

#include <algorithm>
#include <unordered_map>

#include "core/error.hpp"
#include "evaluators/python_random.hpp"
#include "evaluators/text_normalization.hpp"

namespace mlab::evaluators {
namespace {

constexpr std::int64_t kCircularStride = 1000000;
constexpr std::u32string_view kLetters = U"ABCDE";

std::int64_t python_mod(std::int64_t a, std::int64_t b) {
  const std::int64_t r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

bool contains(const std::vector<std::u32string>& tokens, std::u32string_view token) {
  return std::find(tokens.begin(), tokens.end(), token) != tokens.end();
}

}  // namespace

char32_t mmbench_infer_option(std::u32string_view answer) {
  if (answer.find(U"Failed to obtain answer via API") != std::u32string_view::npos) return 0;
  const std::vector<std::u32string> tokens = py_split(answer);  // x.strip() is a no-op after split
  auto count = [&](std::u32string_view prefix, std::u32string_view suffix) {
    int n = 0;
    for (char32_t c : kLetters) {
      std::u32string token(prefix);
      token.push_back(c);
      token += suffix;
      n += contains(tokens, token) ? 1 : 0;
    }
    return n;
  };
  if (count(U"", U"") == 1) {
    for (char32_t c : kLetters) {
      if (contains(tokens, U"A") && tokens.size() > 3) break;  // 'A' may be an article
      if (contains(tokens, std::u32string(1, c))) return c;
    }
  }
  static const std::pair<std::u32string_view, std::u32string_view> kAffixes[] = {
      {U"", U"."},   {U"", U","}, {U"", U":"},  {U"", U")"},  {U"", U")."}, {U"(", U")"},
      {U"(", U")."}, {U":", U""}, {U":", U","}, {U":", U"."}, {U":", U")"}, {U":", U")."}};
  for (const auto& [prefix, suffix] : kAffixes) {
    if (count(prefix, suffix) == 1) {
      for (char32_t c : kLetters) {
        std::u32string token(prefix);
        token.push_back(c);
        token += suffix;
        if (contains(tokens, token)) return c;
      }
    }
  }
  return 0;
}

char32_t mmbench_infer_text(std::u32string_view answer,
                            const std::array<std::optional<std::u32string>, 4>& options) {
  const std::u32string lowered = py_lower(answer);
  char32_t found = 0;
  int count = 0;
  for (std::size_t k = 0; k < options.size(); ++k) {
    if (!options[k]) continue;
    if (lowered.find(py_lower(*options[k])) != std::u32string::npos) {
      ++count;
      if (count == 1) found = static_cast<char32_t>(U'A' + k);
    }
  }
  return count == 1 ? found : 0;
}

char32_t mmbench_infer(std::u32string_view answer,
                       const std::array<std::optional<std::u32string>, 4>& options) {
  const char32_t option = mmbench_infer_option(answer);
  return option != 0 ? option : mmbench_infer_text(answer, options);
}

MmbenchResult mmbench_circular_eval(std::vector<MmbenchRow> rows, const MmbenchOptions& options) {
  PythonRandom rng(options.seed);
  std::stable_sort(rows.begin(), rows.end(),
                   [](const MmbenchRow& a, const MmbenchRow& b) { return a.index < b.index; });
  std::unordered_map<std::int64_t, std::u32string> answer_map;
  for (const MmbenchRow& row : rows) answer_map[row.index] = row.answer;

  MmbenchResult result;
  std::int64_t main_rows = 0;
  std::int64_t hit_sum = 0;
  for (const MmbenchRow& main : rows) {
    if (main.index >= kCircularStride) continue;
    ++main_rows;
    auto done = result.hits.find(main.index);
    if (done != result.hits.end()) {
      hit_sum += done->second;
      continue;
    }
    std::vector<const MmbenchRow*> group;
    for (const MmbenchRow& row : rows) {
      if (python_mod(row.index, kCircularStride) == main.index) group.push_back(&row);
    }
    // eval_sub_data: pass 1 rejects on any matched wrong letter, pass 2 resolves the rest.
    int hit = 1;
    std::vector<char32_t> predicted(group.size(), 0);
    for (std::size_t i = 0; i < group.size() && hit; ++i) {
      predicted[i] = mmbench_infer(group[i]->prediction, group[i]->options);
      const std::u32string& gold = answer_map.at(group[i]->index);
      if (predicted[i] != 0 && std::u32string(1, predicted[i]) != gold) hit = 0;
    }
    for (std::size_t i = 0; i < group.size() && hit; ++i) {
      if (predicted[i] != 0) continue;
      ++result.fallback_draws;
      if (options.fallback == MmbenchFallback::kWrong) {
        hit = 0;
        break;
      }
      // num_options is 4 (every record carries A..D), so chars = "ABCDE", randint(0, 4).
      const char32_t letter = kLetters[static_cast<std::size_t>(rng.randint(0, 4))];
      if (std::u32string(1, letter) != answer_map.at(group[i]->index)) hit = 0;
    }
    result.hits[main.index] = hit;
    hit_sum += hit;
  }
  MLAB_CHECK(main_rows > 0, "MMBench: no main rows (index < 1000000) among ", rows.size(), " rows");
  result.gpt_eval_score = static_cast<double>(hit_sum) / static_cast<double>(main_rows) * 100;
  return result;
}

}  // namespace mlab::evaluators
