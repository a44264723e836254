#pragma once
// The per-task scoring pipeline of lmms-eval (specs/benchmarks.md §2 steps 5-8): the task's
// filters on the raw model output, the framework's strip(), then the task's process_results or
// metric function, under lmms-eval's metric names; and the task's aggregation over samples.
// Docs are JSON records in the lmms-eval dataset schema of the task (only the fields scoring
// reads are required). Task names are lmms-eval's: ai2d, chartqa, docvqa_val, gqa,
// mmbench_en_dev, pope, realworldqa, seedbench (aliases: docvqa, mmbench, mmbench_en).
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "evaluators/mmbench_metric.hpp"

namespace mlab::evaluators {

// The canonical lmms-eval name of `task` (aliases resolved). Throws mlab::Error listing the
// known tasks and the closest match for an unknown name.
std::string canonical_task(std::string_view task);

// lmms-eval's filter pipeline name for the task's headline key ("none" or "flexible-extract").
std::string filter_name(std::string_view task);

// The filtered response (lmms-eval's `filtered_resps[0]`, before the strip).
std::string filter_prediction(std::string_view task, std::string_view raw,
                              const nlohmann::json& doc);

// What lmms-eval's pipeline yields for one doc, e.g. {"exact_match": 1.0}, {"anls": 0.8},
// {"relaxed_overall": 1.0, "relaxed_human_split": 1.0}, POPE's five records, SEED's records,
// MMBench's gpt_eval_score/submission records. Throws mlab::Error naming the task and the
// field for missing or mistyped doc fields and invalid UTF-8.
nlohmann::json score_sample(std::string_view task, std::string_view raw_prediction,
                            const nlohmann::json& doc);

struct AggregateOptions {
  MmbenchOptions mmbench;  // the no-judge fallback of MMBench
};

// The task's aggregate metrics over the score_sample outputs of all its docs (in doc order),
// e.g. {"exact_match": 0.71}, POPE's five pooled values, {"seed_image": ..., "seed_all": ...},
// {"gpt_eval_score": 69.1} (x100, as lmms-eval). Metrics no sample produced are left out.
nlohmann::json aggregate_scores(std::string_view task, const std::vector<nlohmann::json>& samples,
                                const AggregateOptions& options = {});

}  // namespace mlab::evaluators
