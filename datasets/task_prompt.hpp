#pragma once
// The prompt text (lmms-eval's `ctx` = doc_to_text(doc, model kwargs)) of the eight tasks,
// written from the task utils lmms-eval runs (specs/benchmarks.md §4; tasks/<task>/utils.py,
// mmbench/en_utils.py + mmbench_evals.py create_options_prompt). The chat template and image
// tokens the model wrapper adds around it are the model's business (specs §3).
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "datasets/task_config.hpp"

namespace mlab::datasets {

// doc_to_text of `config.doc_to_text` for `doc` (a record in the lmms-eval dataset schema of the
// task) with the kwargs lmms-eval selects for `family`'s model. Python semantics: str.strip() is
// Unicode whitespace, missing keys and non-string fields throw mlab::Error naming the task and
// the field (where lmms-eval would raise KeyError/TypeError).
std::string render_prompt(const TaskConfig& config, const nlohmann::json& doc,
                          std::string_view family);

}  // namespace mlab::datasets
