// `mla-bench score`: lmms-eval's scoring pipeline (evaluators/task_scoring.hpp) over JSONL files.
// --input: raw {"prediction", "doc"} lines -> one line per doc with lmms-eval's per-sample metric
// values; --predictions: a per-sample log (ours or lmms-eval's samples_<task>.jsonl) -> the
// task's aggregates as lmms-eval's results.json names them ("<metric>,<filter>").
#include <cmath>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "datasets/jsonl_reader.hpp"
#include "evaluators/task_scoring.hpp"
#include "harness/commands.hpp"

namespace mlab::harness {
namespace {

using nlohmann::json;

// Metrics lmms-eval aggregates with `mean` (their stderr is the sample std / sqrt(n),
// api/metrics.py mean_stderr); every other metric of the eight tasks has a custom aggregation
// and stderr "N/A".
bool is_mean_metric(const std::string& metric) {
  static const std::set<std::string> kMean = {"exact_match", "anls", "relaxed_overall",
                                              "relaxed_human_split", "relaxed_augmented_split"};
  return kMean.count(metric) > 0;
}

// Python's mean_stderr: sqrt(sum((x - mu)^2) / (n - 1)) / sqrt(n), sums left to right.
double mean_stderr(const std::vector<double>& values) {
  double sum = 0.0;
  for (double v : values) sum += v;
  const double mu = sum / static_cast<double>(values.size());
  double squares = 0.0;
  for (double v : values) squares += (v - mu) * (v - mu);
  const double n = static_cast<double>(values.size());
  return std::sqrt(squares / (n - 1.0)) / std::sqrt(n);
}

// The raw model output of one log line: "prediction" (ours and --input), else lmms-eval's
// resps[0][0], else filtered_resps[0] (re-filtering a filtered answer is the identity for AI2D's
// and RealWorldQA's filters on their own outputs).
std::string raw_prediction(const json& line, const std::string& where) {
  if (auto it = line.find("prediction"); it != line.end()) {
    MLAB_CHECK(it->is_string(), where, ": field 'prediction' must be a string, got ",
               it->type_name());
    return it->get<std::string>();
  }
  if (auto it = line.find("resps"); it != line.end()) {
    MLAB_CHECK(it->is_array() && !it->empty() && (*it)[0].is_array() && !(*it)[0].empty() &&
                   (*it)[0][0].is_string(),
               where, ": field 'resps' must be [[\"<model output>\"]] as lmms-eval logs it, got ",
               it->dump());
    return (*it)[0][0].get<std::string>();
  }
  if (auto it = line.find("filtered_resps"); it != line.end()) {
    MLAB_CHECK(it->is_array() && !it->empty() && (*it)[0].is_string(), where,
               ": field 'filtered_resps' must be [\"<answer>\"], got ", it->dump());
    return (*it)[0].get<std::string>();
  }
  MLAB_FAIL(where,
            ": no prediction: expected a field 'prediction' (string), 'resps' or "
            "'filtered_resps' (lmms-eval log)");
}

const json& doc_of(const json& line, const std::string& where) {
  auto it = line.find("doc");
  MLAB_CHECK(it != line.end(), where, ": missing field 'doc' (the lmms-eval dataset record)");
  MLAB_CHECK(it->is_object(), where, ": field 'doc' must be an object, got ", it->type_name());
  return *it;
}

json score_line(const std::string& task, const json& line, const std::string& where) {
  const std::string raw = raw_prediction(line, where);
  const json& doc = doc_of(line, where);
  try {
    return evaluators::score_sample(task, raw, doc);
  } catch (const Error& e) {
    MLAB_FAIL(where, ": ", e.what());
  }
}

// results.json-style entry: {"<metric>,<filter>": value, "<metric>_stderr,<filter>": ...}.
json task_results(const std::string& task, const std::vector<json>& samples,
                  const ScoreOptions& options) {
  evaluators::AggregateOptions aggregate_options;
  aggregate_options.mmbench.fallback = options.mmbench_fallback == "wrong"
                                           ? evaluators::MmbenchFallback::kWrong
                                           : evaluators::MmbenchFallback::kRandom2680;
  const json aggregates = evaluators::aggregate_scores(task, samples, aggregate_options);
  const std::string filter = evaluators::filter_name(task);
  json results = json::object();
  for (const auto& [metric, value] : aggregates.items()) {
    results[metric + "," + filter] = value;
    json stderr_value = "N/A";
    if (is_mean_metric(metric)) {
      std::vector<double> values;
      for (const json& s : samples) {
        if (auto it = s.find(metric); it != s.end()) values.push_back(it->get<double>());
      }
      if (values.size() > 1) stderr_value = mean_stderr(values);
    }
    results[metric + "_stderr," + filter] = stderr_value;
  }
  return json{{"task", task}, {"samples", samples.size()}, {"results", results}};
}

// lmms-eval logs carry their own per-sample metric values: count where ours differ (e.g. the
// RealWorldQA data-parallel pairing quirk Q1 of specs/benchmarks.md §7).
void compare_with_log(const json& line, const json& ours, std::int64_t& compared,
                      std::int64_t& differ) {
  bool any = false, same = true;
  for (const auto& [metric, value] : ours.items()) {
    auto it = line.find(metric);
    if (it == line.end()) continue;
    any = true;
    if (value.is_number() && it->is_number()) {
      same = same && value.get<double>() == it->get<double>();
    } else {
      same = same && value == *it;
    }
  }
  if (!any) return;
  ++compared;
  if (!same) ++differ;
}

}  // namespace

int run_score(const ScoreOptions& options, std::ostream& out) {
  const bool has_input = !options.input.empty();
  const bool has_predictions = !options.predictions.empty();
  if (has_input == has_predictions) {
    throw UsageError(
        "mla-bench score: give exactly one of --input (raw {prediction, doc} lines) "
        "or --predictions (a per-sample log)");
  }
  if (options.mmbench_fallback != "random-2680" && options.mmbench_fallback != "wrong") {
    throw UsageError("mla-bench score: --mmbench-fallback must be random-2680 or wrong, got '" +
                     options.mmbench_fallback + "'");
  }
  const std::string task = evaluators::canonical_task(options.task);
  datasets::JsonlReader reader(has_input ? options.input : options.predictions);
  std::vector<json> samples;
  std::int64_t compared = 0, differ = 0;
  json line;
  while (reader.next(line)) {
    const std::string where = reader.where();
    if (has_input) {
      MLAB_CHECK(line.contains("prediction"), where, ": missing field 'prediction'");
    }
    json scores = score_line(task, line, where);
    if (has_input) {
      out << scores.dump() << "\n";
    } else {
      compare_with_log(line, scores, compared, differ);
    }
    samples.push_back(std::move(scores));
  }
  MLAB_CHECK(!samples.empty(), reader.path().string(), ": no samples");
  if (has_input && !options.aggregate) return 0;
  json results = task_results(task, samples, options);
  if (compared > 0) results["log_comparison"] = {{"compared", compared}, {"differ", differ}};
  out << results.dump() << "\n";
  return 0;
}

}  // namespace mlab::harness
