#pragma once
// Option-letter extraction of the multiple-choice tasks, as lmms-eval's filters and
// process_results do it (specs/benchmarks.md §4.1, §4.4, §4.5):
//  - AI2D `flexible-extract`: ai2d/utils.py MultiChoiceRegexFilter, `^\s*([A-Z])\.` at the start;
//  - RealWorldQA `flexible-extract`: NumberWordsToDigitsFilter, then realworldqa/utils.py
//    MultiChoiceRegexFilter (choice texts parsed from the question, punctuation-stripped
//    response searched for them, leftmost match, first listed alternative on ties);
//  - SEED-Bench: the first code point of the stripped output.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mlab::evaluators {

// AI2D filter: the letter when the raw output starts with optional whitespace, [A-Z] and '.',
// else the raw output unchanged.
std::u32string ai2d_extract(std::u32string_view raw);

// AI2D target: chr('A' + i) for options[int(answer)] (Python int(), negative indices wrap).
// Throws mlab::Error when the answer is not an integer or out of range.
std::u32string ai2d_target(std::size_t option_count, std::u32string_view answer);

// RealWorldQA NumberWordsToDigitsFilter: "zero".."ten" (whole output, any case) -> "0".."10".
std::u32string rwq_number_words(std::u32string_view raw);

// re.findall(r"\b([A-Z])\.\s+([^\n]*)", question): (captured letter, choice text) in order.
std::vector<std::pair<char32_t, std::u32string>> rwq_find_choices(std::u32string_view question);

// RealWorldQA MultiChoiceRegexFilter on one (number-word-mapped) response.
std::u32string rwq_extract(std::u32string_view response, std::u32string_view question);

// Both RealWorldQA filters in order (the `flexible-extract` pipeline).
std::u32string rwq_flexible_extract(std::u32string_view raw, std::u32string_view question);

// Quirk Q1 (specs/benchmarks.md §7), compat switch: under lmms-eval data parallelism with
// `world_size` processes, the RealWorldQA filter of doc `doc_id` reads the question of doc
// doc_id / world_size (rank r's k-th instance is zipped with task_docs[k]). world_size 1 (the
// default, single process) returns doc_id itself.
std::size_t rwq_lmms_compat_doc_index(std::size_t doc_id, std::size_t world_size = 1);

// SEED-Bench: strip(), then the first code point when longer than one.
std::u32string seed_prediction(std::u32string_view prediction);

}  // namespace mlab::evaluators
