// `mla-bench score`: lmms-eval's scoring pipeline (evaluators/task_scoring.hpp) over JSONL files.
// --input: raw {"prediction", "doc"} lines -> one line per doc with lmms-eval's per-sample metric
// values; --predictions: a per-sample log (ours or lmms-eval's samples_<task>.jsonl) -> the
// task's aggregates as lmms-eval's results.json names them ("<metric>,<filter>").
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "datasets/jsonl_reader.hpp"
#include "datasets/task_config.hpp"
#include "datasets/task_prompt.hpp"
#include "evaluators/lmms_output.hpp"
#include "evaluators/task_scoring.hpp"
#include "harness/commands.hpp"
#include "harness/score_files.hpp"

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

using evaluators::OrderedJson;

// The same lines JsonlReader returns (blank ones skipped), parsed keeping the key order, so the
// docs of the per-sample log keep the dataset's field order as lmms-eval's do.
class OrderedLines {
 public:
  explicit OrderedLines(const std::filesystem::path& path) : in_(path) {}
  OrderedJson next() {
    for (std::string line; std::getline(in_, line);) {
      if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
      return OrderedJson::parse(line);
    }
    MLAB_FAIL("internal: ordered re-read ran past the end of the file");
  }

 private:
  std::ifstream in_;
};

// A task config file with its key order (nlohmann::json sorts keys; lmms-eval's dicts keep the
// yaml's order, e.g. the positions in a sample's "arguments").
OrderedJson ordered_config(const std::filesystem::path& configs_dir, const std::string& task) {
  const auto path = configs_dir / (task + ".json");
  std::ifstream in(path);
  MLAB_CHECK(in.good(), path.string(), ": cannot open");
  return OrderedJson::parse(in);
}

// lmms-eval's _prepare_model_specific_config on the yaml's lmms_eval_specific_kwargs: the model's
// own entry is selected (and the dict left as is), else the dict is updated in place with its
// "default" entry, which then shows in the config dump.
OrderedJson dumped_specific_kwargs(OrderedJson kwargs, const std::string& model_name) {
  if (!kwargs.is_object() || kwargs.contains(model_name)) return kwargs;
  if (kwargs.contains("default")) {
    const OrderedJson defaults = kwargs["default"];
    for (const auto& [k, v] : defaults.items()) kwargs[k] = v;
  }
  return kwargs;
}

// process_results' dict order: the order of the yaml's metric_list.
OrderedJson ordered_metrics(const std::string& task, const json& scores) {
  OrderedJson out = OrderedJson::object();
  const OrderedJson metric_list = evaluators::lmms_higher_is_better(task);
  for (const auto& [metric, _] : metric_list.items()) {
    if (scores.contains(metric)) out[metric] = scores[metric];
  }
  for (const auto& [metric, value] : scores.items()) {
    if (!out.contains(metric)) out[metric] = value;
  }
  return out;
}

double perf_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  MLAB_CHECK(out.good(), path.string(), ": cannot write");
  out << text;
  MLAB_CHECK(out.good(), path.string(), ": write failed");
}

}  // namespace

ScoredTask score_task_file(const ScoreOptions& options, bool lmms_logs, std::ostream& out) {
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
  ScoredTask scored;
  scored.start_time = perf_seconds();
  const bool write_logs = lmms_logs;
  std::optional<datasets::TaskConfig> config;
  std::optional<OrderedLines> ordered;
  OrderedJson raw_config, generation;
  std::vector<OrderedJson> sample_lines;
  if (write_logs) {
    config = datasets::TaskConfig::load(options.configs_dir, task);
    config->family(options.family);  // unknown family: fail before reading anything
    raw_config = ordered_config(options.configs_dir, task);
    generation = raw_config.at("generation");
    ordered.emplace(has_input ? options.input : options.predictions);
  }
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
    if (write_logs) {
      const OrderedJson ordered_line = ordered->next();
      evaluators::LmmsSample sample;
      sample.doc_id = ordered_line.contains("doc_id")
                          ? ordered_line.at("doc_id").get<std::int64_t>()
                          : static_cast<std::int64_t>(samples.size());
      sample.doc = ordered_line.at("doc");
      sample.generation_kwargs = generation;
      sample.response = raw_prediction(line, where);
      try {
        sample.prompt = datasets::render_prompt(*config, line.at("doc"), options.family);
        sample.filtered = evaluators::filter_prediction(task, sample.response, line.at("doc"));
        sample.metrics = ordered_metrics(task, scores);
        sample_lines.push_back(evaluators::lmms_sample_line(task, sample));
      } catch (const Error& e) {
        MLAB_FAIL(where, ": ", e.what());
      }
    }
    if (has_input) {
      out << scores.dump() << "\n";
    } else {
      compare_with_log(line, scores, compared, differ);
    }
    samples.push_back(std::move(scores));
  }
  MLAB_CHECK(!samples.empty(), reader.path().string(), ": no samples");
  scored.results = task_results(task, samples, options);
  if (compared > 0) scored.results["log_comparison"] = {{"compared", compared}, {"differ", differ}};
  if (write_logs) {
    // results.json's metric order: lmms-eval's (metric, filter) first-seen order over the docs.
    OrderedJson metrics = OrderedJson::object();
    const std::string filter = evaluators::filter_name(task);
    const OrderedJson metric_list = evaluators::lmms_higher_is_better(task);
    const json& results = scored.results;
    for (const OrderedJson& sample_line : sample_lines) {
      for (const auto& [metric, _] : metric_list.items()) {
        const std::string key = metric + "," + filter;
        if (!sample_line.contains(metric) || metrics.contains(key)) continue;
        if (!results["results"].contains(key)) continue;
        metrics[key] = results["results"][key];
        metrics[metric + "_stderr," + filter] = results["results"][metric + "_stderr," + filter];
      }
    }
    scored.model_name = config->family(options.family).model_name;
    evaluators::LmmsConfigInputs inputs{
        .dataset_path = config->dataset.hf_path,
        .dataset_name = config->dataset.hf_config,
        .split = config->dataset.split,
        .generation_kwargs = generation,
        .specific_kwargs = dumped_specific_kwargs(
            raw_config.at("prompt").value("lmms_eval_specific_kwargs", OrderedJson()),
            scored.model_name)};
    scored.lmms = evaluators::LmmsTaskOutput{
        .task = task,
        .metrics = metrics,
        .config = evaluators::lmms_task_config(task, inputs),
        .n_original = std::max<std::int64_t>(config->dataset.samples,
                                             static_cast<std::int64_t>(samples.size())),
        .n_effective = static_cast<std::int64_t>(samples.size()),
        .samples = sample_lines};
  }
  return scored;
}

void write_lmms_logs(const std::filesystem::path& dir,
                     const std::vector<evaluators::LmmsTaskOutput>& tasks,
                     const evaluators::LmmsRunInfo& run) {
  std::filesystem::create_directories(dir);
  write_text(dir / "results.json",
             evaluators::python_json_dumps(evaluators::lmms_results_json(tasks, run), 2));
  for (const auto& task : tasks) {
    std::string text;
    for (const OrderedJson& l : task.samples) text += evaluators::python_json_dumps(l) + "\n";
    write_text(dir / ("samples_" + task.task + ".jsonl"), text);
  }
}

int run_score(const ScoreOptions& options, std::ostream& out) {
  const bool write_logs = !options.output_dir.empty();
  const ScoredTask scored = score_task_file(options, write_logs, out);
  if (write_logs) {
    evaluators::LmmsRunInfo run{.model = scored.model_name,
                                .model_args = options.model_args,
                                .date = format_now("%Y%m%d_%H%M%S", false),
                                .start_time = scored.start_time,
                                .end_time = perf_seconds()};
    write_lmms_logs(options.output_dir, {*scored.lmms}, run);
  }
  if (!options.input.empty() && !options.aggregate) return 0;
  out << scored.results.dump() << "\n";
  return 0;
}

}  // namespace mlab::harness
