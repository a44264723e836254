#include "tests/support/catch_torch.hpp"

#include "core/error.hpp"
#include "core/registry.hpp"
#include "datasets/registry.hpp"
#include "evaluators/registry.hpp"

using Catch::Matchers::Contains;

TEST_CASE("find_entry answers unknown names with the closest match and planned ones with the issue",
          "[core][registry]") {
  const std::vector<mlab::RegistryEntry> entries = {
      {"full", "dense", ""}, {"h2o", "heavy hitters", "F7"}, {"tova", "omission", "F7"}};
  CHECK(mlab::find_entry("method", entries, "full").doc == "dense");
  REQUIRE_THROWS_WITH(mlab::find_entry("method", entries, "h20"),
                      Contains("unknown method 'h20'") && Contains("did you mean 'h2o'?") &&
                          Contains("known: full, h2o, tova"));
  REQUIRE_THROWS_WITH(mlab::find_entry("method", entries, "h2o"),
                      Contains("not implemented yet") && Contains("F7"));
  CHECK(mlab::find_entry("method", entries, "h2o", /*allow_planned=*/true).name == "h2o");
  CHECK_THROWS_AS(mlab::find_entry("method", entries, "nothing-like-it"), mlab::Error);
}

TEST_CASE("duplicate registry names are rejected", "[core][registry]") {
  REQUIRE_THROWS_WITH(mlab::check_unique("task", {{"gqa", "", ""}, {"gqa", "", ""}}),
                      Contains("duplicate task name 'gqa'"));
}

TEST_CASE("the task and metric registries hold the paper's eight benchmarks and lmms-eval metrics",
          "[core][registry]") {
  const auto tasks = mlab::entry_names(mlab::datasets::task_entries());
  CHECK(tasks == std::vector<std::string>{"ai2d", "chartqa", "docvqa_val", "gqa", "mmbench_en_dev",
                                          "pope", "realworldqa", "seedbench"});
  CHECK(mlab::datasets::find_task("gqa", true).name == "gqa");
  REQUIRE_THROWS_WITH(mlab::evaluators::find_metric("ansl", true), Contains("did you mean 'anls'?"));
}

TEST_CASE("format_entries aligns names and marks planned entries", "[core][registry]") {
  const auto text = mlab::format_entries({{"a", "first", ""}, {"long", "second", "F9"}});
  CHECK(text == "a     first\nlong  second  [planned: F9]\n");
}
