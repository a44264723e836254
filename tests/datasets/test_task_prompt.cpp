// Replays tests/data/prompts/*.jsonl (tools/fixtures/prompt_oracle.py: lmms-eval's own
// doc_to_text with the kwargs lmms-eval selects for llava_hf and qwen2_5_vl) through
// datasets/task_prompt with the shipped configs/tasks/*.json (issue F4, acceptance 2).
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.hpp"
#include "datasets/jsonl_reader.hpp"
#include "datasets/registry.hpp"
#include "datasets/task_config.hpp"
#include "datasets/task_prompt.hpp"
#include "tests/support/catch_torch.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;
namespace ds = mlab::datasets;

namespace {
std::filesystem::path configs_dir() {
  return std::filesystem::path(MLAB_TEST_DATA_DIR).parent_path().parent_path() / "configs" /
         "tasks";
}
}  // namespace

TEST_CASE("every registered task has a config that parses", "[datasets][prompt]") {
  for (const auto& entry : ds::task_entries()) {
    const ds::TaskConfig config = ds::TaskConfig::load(configs_dir(), entry.name);
    CHECK(config.task == entry.name);
    CHECK(config.dataset.samples > 0);
    CHECK(config.headline.find(',') != std::string::npos);
    for (const std::string& family : ds::family_names()) {
      CHECK(config.family(family).max_new_tokens > 0);
    }
  }
  const ds::TaskConfig pope = ds::TaskConfig::load(configs_dir(), "pope");
  CHECK(pope.dataset.samples == 9000);
  CHECK(pope.model_kwargs("qwen2_5_vl").at("post_prompt") ==
        "\nAnswer the question using a single word or phrase.");
  CHECK(ds::TaskConfig::load(configs_dir(), "seedbench").model_kwargs("llava").is_null());
}

TEST_CASE("task configs reject unknown keys and families", "[datasets][prompt]") {
  std::ifstream in(configs_dir() / "gqa.json");
  json config = json::parse(in);
  config["promt"] = 1;
  CHECK_THROWS_WITH(
      ds::TaskConfig::from_json(config, "gqa.json"),
      Contains("gqa.json") && Contains("'promt'") && Contains("did you mean 'prompt'"));
  const ds::TaskConfig gqa = ds::TaskConfig::load(configs_dir(), "gqa");
  CHECK_THROWS_WITH(gqa.family("qwen"), Contains("qwen2_5_vl"));
}

TEST_CASE("prompts equal lmms-eval's doc_to_text for every task and family", "[datasets][prompt]") {
  for (const auto& entry : ds::task_entries()) {
    const ds::TaskConfig config = ds::TaskConfig::load(configs_dir(), entry.name);
    ds::JsonlReader reader(mlab::test::data_dir() / "prompts" / (entry.name + ".jsonl"));
    json line;
    int compared = 0, differ = 0;
    std::string first;
    while (reader.next(line)) {
      for (const auto& [family, expected] : line.at("prompts").items()) {
        const std::string got = ds::render_prompt(config, line.at("doc"), family);
        ++compared;
        if (got != expected.get<std::string>() && differ++ == 0) {
          first = family + " " + line.at("doc").dump() + "\n expected " + expected.dump() +
                  "\n got      " + json(got).dump();
        }
      }
    }
    INFO(entry.name << ": " << differ << " of " << compared << " differ; first: " << first);
    CHECK(compared >= 60);  // >= 20 docs x 3 families
    CHECK(differ == 0);
  }
}

TEST_CASE("prompt rendering names the task and the missing field", "[datasets][prompt]") {
  const ds::TaskConfig ai2d = ds::TaskConfig::load(configs_dir(), "ai2d");
  CHECK_THROWS_WITH(ds::render_prompt(ai2d, json{{"question", "q"}}, "llava"),
                    Contains("ai2d") && Contains("'options'"));
  CHECK_THROWS_WITH(ds::render_prompt(ai2d, json{{"question", 3}, {"options", {"a"}}}, "llava"),
                    Contains("'question' must be a string"));
  const ds::TaskConfig mmb = ds::TaskConfig::load(configs_dir(), "mmbench_en_dev");
  CHECK_THROWS_WITH(ds::render_prompt(mmb, json{{"question", "q"}}, "qwen2_5_vl"),
                    Contains("mmbench_en_dev") && Contains("'category'"));
}
