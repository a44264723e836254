#pragma once
// POPE (Li et al. 2023, "Evaluating Object Hallucination in LVLMs", §3): yes/no questions scored
// as lmms-eval's pope/utils.py does: strict equality of lower().strip() prediction and answer
// per sample; accuracy, precision/recall/F1 of the "yes" class and the ground-truth yes ratio
// pooled over all questions (unparseable predictions count in accuracy only).
#include <span>
#include <string>
#include <string_view>

namespace mlab::evaluators {

// One scored question (the record pope_process_results stores under every POPE metric).
struct PopeRecord {
  double score = 0.0;           // 1.0 when prediction == ground_truth
  std::u32string prediction;    // lower().strip() of the stripped model output
  std::u32string ground_truth;  // lower().strip() of doc["answer"]: "yes" or "no"
};

// Scores one prediction. Throws mlab::Error when the answer is not yes/no (lmms-eval asserts).
PopeRecord pope_score(std::u32string_view prediction, std::u32string_view answer);

struct PopeAggregate {
  double accuracy = 0.0;
  double precision = 0.0;
  double recall = 0.0;
  double f1_score = 0.0;
  double yes_ratio = 0.0;  // ground-truth "yes" fraction (lmms-eval's definition)
};

// The five pooled aggregates over `records` (any subset, e.g. one POPE category).
// Throws mlab::Error when `records` is empty (lmms-eval divides by zero).
PopeAggregate pope_aggregate(std::span<const PopeRecord> records);

}  // namespace mlab::evaluators
