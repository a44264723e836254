// `mla-bench prompt`: lmms-eval's doc_to_text for each doc of a JSONL file (datasets/task_prompt).
#include <nlohmann/json.hpp>
#include <ostream>

#include "core/error.hpp"
#include "datasets/jsonl_reader.hpp"
#include "datasets/task_config.hpp"
#include "datasets/task_prompt.hpp"
#include "evaluators/task_scoring.hpp"
#include "harness/commands.hpp"

namespace mlab::harness {

int run_prompt(const PromptOptions& options, std::ostream& out) {
  const std::string task = evaluators::canonical_task(options.task);
  const datasets::TaskConfig config = datasets::TaskConfig::load(options.configs_dir, task);
  config.family(options.family);  // unknown family: fail before reading anything
  datasets::JsonlReader reader(options.input);
  nlohmann::json line;
  while (reader.next(line)) {
    // A dataset-dir sample line carries the lmms-eval record under "doc"; else the line is it.
    auto it = line.find("doc");
    const nlohmann::json& doc = it != line.end() && it->is_object() ? *it : line;
    try {
      out << nlohmann::json(datasets::render_prompt(config, doc, options.family)).dump() << "\n";
    } catch (const Error& e) {
      MLAB_FAIL(reader.where(), ": ", e.what());
    }
  }
  return 0;
}

}  // namespace mlab::harness
