#pragma once
// lmms-eval's output files (specs/benchmarks.md §6), written without Torch: the results JSON of
// evaluator.py + loggers/evaluation_tracker.py (save_results_aggregated) and the per-sample lines
// of samples_<task>.jsonl (evaluator.py's log_samples `example` as save_results_samples
// sanitizes it), with the content hashes computed as lmms-eval does (utils.hash_string =
// sha256 hex of UTF-8). Text is rendered as Python's json.dumps(..., ensure_ascii=False) would,
// keys in lmms-eval's insertion order. tools/fixtures/lmms_output_oracle.py makes the expected
// files with lmms-eval's own code.
//
// NOTE(lmms-eval): `doc_hash` hashes json.dumps(Instance.doc), and lmms-eval never sets
// Instance.doc (construct_requests leaves `doc=doc` commented out), so every doc_hash is
// sha256("null"). We reproduce that.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mlab::evaluators {

using OrderedJson = nlohmann::ordered_json;

// Python's json.dumps(value, ensure_ascii=False) (indent < 0: one line with ", " and ": "), or
// with indent=n (",", ": " and newlines). Floats as Python's repr, NaN/Infinity as Python writes.
std::string python_json_dumps(const OrderedJson& value, int indent = -1);

// Python's str(value) of a doc_to_target value: strings verbatim, lists/dicts/numbers/None as
// Python's repr. NOTE(repr): non-printable characters are escaped for controls, spaces other
// than ' ', line/paragraph separators, common format characters and private use; unassigned
// code points are kept (CPython would escape them).
std::string python_str(const nlohmann::json& value);

// lmms-eval's doc_to_target of the task for one doc (before str()): doc["answer"], DocVQA's
// doc["answers"] list, AI2D's option letter (ai2d_doc_to_target with "mcq"). Throws mlab::Error
// naming the field for a doc that lacks it.
nlohmann::json lmms_target(std::string_view task, const nlohmann::json& doc);

// What lmms-eval's TaskConfig.to_dict() holds for the task, from the values our task config
// has plus the yaml facts it does not restate (function names, metric kwargs, filter_list,
// metadata). Function values are "<function NAME>" (lmms-eval appends " at 0x<address>").
struct LmmsConfigInputs {
  std::string dataset_path;                 // HF path (lmms-eval's yaml: the authors' path)
  std::optional<std::string> dataset_name;  // HF config
  std::string split;                        // test_split
  OrderedJson generation_kwargs;            // in the yaml's key order
  OrderedJson specific_kwargs;              // lmms_eval_specific_kwargs after the model's selection
};
OrderedJson lmms_task_config(std::string_view task, const LmmsConfigInputs& inputs);

// lmms-eval's higher_is_better of the task, {"<metric>": true, ...}.
OrderedJson lmms_higher_is_better(std::string_view task);

// One scored doc, the raw material of a samples_<task>.jsonl line.
struct LmmsSample {
  std::int64_t doc_id = 0;
  OrderedJson doc;                // the lmms-eval record (image columns already removed)
  std::string prompt;             // doc_to_text (the request's context)
  OrderedJson generation_kwargs;  // the task's generation kwargs (only the keys are logged)
  std::string response;           // raw model output (resps)
  std::string filtered;           // filtered_resps[0]
  OrderedJson metrics;            // process_results' dict, in its order
};

// The line save_results_samples writes for `sample`: doc_id, doc, target, arguments (the
// generation kwargs' keys by position), resps, filtered_resps, doc_hash, prompt_hash,
// target_hash, the metric values, input.
OrderedJson lmms_sample_line(std::string_view task, const LmmsSample& sample);

// One task's part of the results JSON.
struct LmmsTaskOutput {
  std::string task;
  OrderedJson metrics;           // {"<metric>,<filter>": value, "<metric>_stderr,<filter>": ...}
  OrderedJson config;            // lmms_task_config(...)
  std::int64_t n_original = 0;   // docs of the split
  std::int64_t n_effective = 0;  // docs evaluated
  std::vector<OrderedJson> samples;  // lmms_sample_line(...) of its docs (for task_hashes)
};

// The run-level fields (simple_evaluate's "config", GeneralConfigTracker's fields).
struct LmmsRunInfo {
  std::string model = "llava_hf";  // lmms-eval model name
  std::string model_args;          // e.g. "pretrained=llava-hf/llava-1.5-7b-hf"
  std::string batch_size = "1";
  std::string date;  // "%Y%m%d_%H%M%S"
  std::optional<std::string> git_hash;
  double start_time = 0.0;  // seconds (lmms-eval: time.perf_counter())
  double end_time = 0.0;
};

// The results JSON of save_results_aggregated: results, group_subtasks, configs, versions,
// n-shot, higher_is_better, n-samples, config, git_hash, date, task_hashes, then the
// GeneralConfigTracker fields.
OrderedJson lmms_results_json(const std::vector<LmmsTaskOutput>& tasks, const LmmsRunInfo& run);

// lmms-eval's sanitize_model_name: the last two path parts with ["<>:/\|?*[]] runs -> "__".
std::string lmms_sanitize_model_name(std::string_view model_name);

}  // namespace mlab::evaluators
