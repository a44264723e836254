// Multiple-choice extraction of AI2D, RealWorldQA and SEED-Bench (lmms-eval task utils).
#include "evaluators/multiple_choice.hpp"

#include <map>

#include "core/error.hpp"
#include "evaluators/python_float.hpp"
#include "evaluators/text_normalization.hpp"

namespace mlab::evaluators {

std::u32string ai2d_extract(std::u32string_view raw) {
  std::size_t i = 0;
  while (i < raw.size() && py_isspace(raw[i])) ++i;
  if (i + 1 < raw.size() && raw[i] >= U'A' && raw[i] <= U'Z' && raw[i + 1] == U'.') {
    return std::u32string(1, raw[i]);
  }
  return std::u32string(raw);
}

std::u32string ai2d_target(std::size_t option_count, std::u32string_view answer) {
  const std::optional<std::int64_t> index = python_int(answer);
  MLAB_CHECK(index.has_value(), "AI2D answer '", utf8_encode(answer), "' is not an integer");
  const auto n = static_cast<std::int64_t>(option_count);
  MLAB_CHECK(*index < n && *index >= -n, "AI2D answer index ", *index, " is out of range for ",
             option_count, " options");
  const std::int64_t k = *index < 0 ? *index + n : *index;
  return std::u32string(1, static_cast<char32_t>(U'A' + k));
}

std::u32string rwq_number_words(std::u32string_view raw) {
  static const std::map<std::u32string, std::u32string> kWords = {
      {U"zero", U"0"},  {U"one", U"1"},  {U"two", U"2"}, {U"three", U"3"},
      {U"four", U"4"},  {U"five", U"5"}, {U"six", U"6"}, {U"seven", U"7"},
      {U"eight", U"8"}, {U"nine", U"9"}, {U"ten", U"10"}};
  auto it = kWords.find(py_lower(raw));
  return it == kWords.end() ? std::u32string(raw) : it->second;
}

std::vector<std::pair<char32_t, std::u32string>> rwq_find_choices(std::u32string_view question) {
  std::vector<std::pair<char32_t, std::u32string>> out;
  std::size_t pos = 0;
  while (pos < question.size()) {
    bool matched = false;
    for (std::size_t i = pos; i + 2 < question.size(); ++i) {
      const char32_t letter = question[i];
      if (letter < U'A' || letter > U'Z') continue;
      if (i > 0 && py_is_word(question[i - 1])) continue;  // \b before a word character
      if (question[i + 1] != U'.' || !py_isspace(question[i + 2])) continue;
      std::size_t j = i + 2;
      while (j < question.size() && py_isspace(question[j])) ++j;  // \s+ is greedy
      std::size_t k = j;
      while (k < question.size() && question[k] != U'\n') ++k;
      out.emplace_back(letter, std::u32string(question.substr(j, k - j)));
      pos = k;
      matched = true;
      break;
    }
    if (!matched) break;
  }
  return out;
}

std::u32string rwq_extract(std::u32string_view response, std::u32string_view question) {
  std::vector<std::u32string> alternatives;
  std::map<std::u32string, char32_t> choice_to_alpha;
  char32_t next_alpha = U'A';
  for (const auto& [letter, text] : rwq_find_choices(question)) {
    std::u32string choice = py_strip(text);
    choice_to_alpha[choice] = next_alpha++;  // a later duplicate text overwrites
    alternatives.push_back(std::move(choice));
  }
  if (alternatives.empty()) alternatives.emplace_back();  // re.compile("") matches at 0

  std::u32string kept;  // re.sub(r"[^\w\s]", "", response)
  for (char32_t c : response) {
    if (py_is_word(c) || py_isspace(c)) kept.push_back(c);
  }
  const std::u32string cleaned = py_strip(kept);
  // re.search over the alternation of literal texts: leftmost start, first alternative.
  for (std::size_t start = 0; start <= cleaned.size(); ++start) {
    for (const std::u32string& alt : alternatives) {
      if (cleaned.compare(start, alt.size(), alt) == 0 && start + alt.size() <= cleaned.size()) {
        auto it = choice_to_alpha.find(alt);
        return it == choice_to_alpha.end() ? cleaned : std::u32string(1, it->second);
      }
    }
  }
  return cleaned;
}

std::u32string rwq_flexible_extract(std::u32string_view raw, std::u32string_view question) {
  return rwq_extract(rwq_number_words(raw), question);
}

std::size_t rwq_lmms_compat_doc_index(std::size_t doc_id, std::size_t world_size) {
  MLAB_CHECK(world_size >= 1, "RealWorldQA compat: world size must be >= 1, got ", world_size);
  return doc_id / world_size;
}

std::u32string seed_prediction(std::u32string_view prediction) {
  std::u32string p = py_strip(prediction);
  if (p.size() > 1) p.resize(1);
  return p;
}

}  // namespace mlab::evaluators
