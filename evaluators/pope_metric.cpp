// POPE per-sample score and pooled aggregates, lmms-eval pope/utils.py.
#include "evaluators/pope_metric.hpp"

#include <cstdint>

#include "core/error.hpp"
#include "evaluators/text_normalization.hpp"

namespace mlab::evaluators {

PopeRecord pope_score(std::u32string_view prediction, std::u32string_view answer) {
  PopeRecord record;
  record.prediction = py_strip(py_lower(prediction));
  record.ground_truth = py_strip(py_lower(answer));
  MLAB_CHECK(record.ground_truth == U"yes" || record.ground_truth == U"no",
             "POPE answer must be 'yes' or 'no', got '", utf8_encode(answer), "'");
  record.score = record.prediction == record.ground_truth ? 1.0 : 0.0;
  return record;
}

PopeAggregate pope_aggregate(std::span<const PopeRecord> records) {
  MLAB_CHECK(!records.empty(), "POPE aggregate over zero samples");
  double total_score = 0.0;
  std::int64_t tp = 0, fp = 0, fn = 0, yes = 0, no = 0;
  for (const PopeRecord& r : records) {
    total_score += r.score;
    const bool gt_yes = r.ground_truth == U"yes";
    const bool gt_no = r.ground_truth == U"no";
    if (gt_yes && r.prediction == U"yes") ++tp;
    if (gt_no && r.prediction == U"yes") ++fp;
    if (gt_yes && r.prediction == U"no") ++fn;
    yes += gt_yes ? 1 : 0;
    no += gt_no ? 1 : 0;
  }
  PopeAggregate out;
  out.accuracy = total_score / static_cast<double>(records.size());
  out.precision = tp + fp > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0.0;
  out.recall = tp + fn > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 0.0;
  out.f1_score = out.precision + out.recall > 0
                     ? 2 * (out.precision * out.recall) / (out.precision + out.recall)
                     : 0.0;
  out.yes_ratio = yes + no > 0 ? static_cast<double>(yes) / static_cast<double>(yes + no) : 0.0;
  return out;
}

}  // namespace mlab::evaluators
