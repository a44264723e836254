#pragma once
// The scoring core of `mla-bench score`, shared with `mla-bench export`: one task's JSONL of
// {"prediction", "doc"[, "doc_id"]} lines (or a per-sample log) scored as lmms-eval scores it,
// optionally with lmms-eval's output layout (evaluators/lmms_output.hpp).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "evaluators/lmms_output.hpp"
#include "harness/commands.hpp"

namespace mlab::harness {

struct ScoredTask {
  // {"task", "samples", "results": {"<metric>,<filter>": value, ...}, "log_comparison"?}
  nlohmann::json results;
  std::optional<evaluators::LmmsTaskOutput> lmms;  // with lmms_logs
  std::string model_name;                          // lmms-eval's model name of the family
  double start_time = 0;                           // seconds, for the results JSON
};

// Scores options.input (printing each line's scores to `out`) or options.predictions; with
// `lmms_logs`, also builds the task's lmms-eval output (needs configs_dir and family). A line's
// optional "doc_id" becomes the logged doc_id (default: its position).
ScoredTask score_task_file(const ScoreOptions& options, bool lmms_logs, std::ostream& out);

// Writes <dir>/results.json (all tasks) and <dir>/samples_<task>.jsonl.
void write_lmms_logs(const std::filesystem::path& dir,
                     const std::vector<evaluators::LmmsTaskOutput>& tasks,
                     const evaluators::LmmsRunInfo& run);

}  // namespace mlab::harness
