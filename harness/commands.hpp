#pragma once
// The implemented subcommands of mla-bench, one function each; harness/cli.cpp parses the
// command line into these option structs and dispatches. Each returns the process exit code
// (0 ok, 1 failure) and throws mlab::Error / mlab::UsageError / c10::Error on failure.
#include <filesystem>
#include <iosfwd>
#include <string>

namespace mlab::harness {

struct ListOptions {
  std::string what;  // models | methods | tasks | metrics
};
// Prints the registry named by options.what (names, one-line docs, planned status).
int run_list(const ListOptions& options, std::ostream& out);

struct InspectOptions {
  std::filesystem::path path;  // a model dir, a .safetensors file or a config.json
  bool json = false;           // machine-readable output
  bool check = false;          // also read every tensor (detects truncated data)
};
// Prints the model config summary and the tensor table of a Hugging Face model directory.
int run_inspect(const InspectOptions& options, std::ostream& out);

struct QuickstartOptions {
  std::filesystem::path configs_dir;  // configs/models of the source tree
  std::filesystem::path work_dir;     // scratch output (a checkpoint round trip is written here)
  std::string device = "cpu";         // cpu | cuda
  int threads = 0;                    // 0 = LibTorch's default
  int64_t seed = 0;
};
// The embedded end-to-end job; grows with every issue (DESIGN.md §6).
int run_quickstart(const QuickstartOptions& options, std::ostream& out);

struct ScoreOptions {
  std::string task;                              // lmms-eval task name (aliases accepted)
  std::filesystem::path input;                   // raw {"prediction", "doc"} JSONL, or
  std::filesystem::path predictions;             // a per-sample log (ours or lmms-eval's)
  bool aggregate = false;                        // --input: also print the aggregates
  std::string mmbench_fallback = "random-2680";  // random-2680 | wrong
};
// `mla-bench score`: with `input`, one JSON object per line holding lmms-eval's per-sample metric
// values ({"exact_match": 1.0}, ...), then (with `aggregate`) one results line; with
// `predictions`, one results line {"task", "samples", "results": {"<metric>,<filter>": value,
// "<metric>_stderr,<filter>": ...}, "log_comparison"?}. Malformed lines throw "file:line: reason".
int run_score(const ScoreOptions& options, std::ostream& out);

struct PromptOptions {
  std::string task;                   // lmms-eval task name (aliases accepted)
  std::filesystem::path input;        // docs JSONL: lmms-eval records, or dataset-dir sample lines
  std::string family = "llava";       // llava | llava_next | qwen2_5_vl
  std::filesystem::path configs_dir;  // configs/tasks
};
// `mla-bench prompt`: each doc's rendered prompt text (lmms-eval's doc_to_text with the family's
// model kwargs), one JSON string per line.
int run_prompt(const PromptOptions& options, std::ostream& out);

}  // namespace mlab::harness
