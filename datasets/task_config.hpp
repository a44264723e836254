#pragma once
// A benchmark task as data (STYLE.md rule 19): configs/tasks/<task>.json restates lmms-eval's
// task yaml (specs/benchmarks.md §2, §4): the Hugging Face source and split, the prompt pieces
// (lmms_eval_specific_kwargs exactly as the yaml has them), the generation settings, the filter,
// the metrics and the headline result key.
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mlab::datasets {

struct TaskDataset {
  std::string hf_path;                       // e.g. "lmms-lab/ai2d"
  std::optional<std::string> hf_config;      // e.g. "DocVQA"; nullopt = default config
  std::string split;                         // e.g. "test"
  std::int64_t samples = 0;                  // rows of the real split
  bool samples_verified = false;             // false: count not yet read from the parquet files
  std::optional<std::string> images_config;  // GQA: images live in another config
};

// What one model family does with the task (lmms-eval's wrapper behaviour, §3 and quirk Q2).
struct TaskFamily {
  std::string model_name;  // lmms-eval model name: llava_hf | qwen2_5_vl
  std::int64_t max_new_tokens = 0;
  std::vector<std::string> stop;  // stop strings the wrapper applies (llava_hf: none)
};

struct TaskMetric {
  std::string metric;       // lmms-eval metric name
  std::string aggregation;  // "mean" | "custom"
  bool higher_is_better = true;
};

struct TaskConfig {
  std::string task;  // lmms-eval task name
  std::string doc;   // one line
  TaskDataset dataset;
  std::string doc_to_text;         // renderer id: ai2d | gqa | pope | seedbench | ...
  std::string options_prompt;      // MMBench's sys_prompt ("There are several options:")
  nlohmann::json specific_kwargs;  // lmms_eval_specific_kwargs of the yaml (null if none)
  nlohmann::json generation;       // generation_kwargs (+ framework default until)
  std::map<std::string, TaskFamily> families;  // llava | llava_next | qwen2_5_vl
  std::string filter;                          // "none" | "flexible-extract"
  std::vector<TaskMetric> metrics;
  std::string headline;  // result key of the paper's column, "<metric>,<filter>"
  double scale = 100.0;  // factor to the paper's percentages (MMBench: 1)

  // Parses one config; unknown keys and wrong types throw mlab::Error naming `where` and the key.
  static TaskConfig from_json(const nlohmann::json& config, const std::string& where);
  // Reads <configs_dir>/<task>.json (task = the canonical lmms-eval name).
  static TaskConfig load(const std::filesystem::path& configs_dir, std::string_view task);

  // The family's settings; throws mlab::Error listing the known families.
  const TaskFamily& family(std::string_view name) const;
  // lmms-eval's model kwargs selection (api/task.py _prepare_model_specific_config): the entry
  // of the family's model name if present, else the dict updated with its "default" entry; null
  // when the task has none (doc_to_text is then called without kwargs).
  nlohmann::json model_kwargs(std::string_view family) const;
};

// The model families prompts are rendered for: llava, llava_next, qwen2_5_vl.
const std::vector<std::string>& family_names();

}  // namespace mlab::datasets
