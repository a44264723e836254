// `mla-bench check-dataset` through the binary on the committed dataset dirs (tests/data/
// datasets, the broken ones under bad/): the first bad sample aborts naming file:line and the
// problem; --skip-bad lists every bad sample as a failed sample and exits 0 (issue F4,
// acceptance 4).
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

using Result = mlab::test::BinaryResult;

Result run_binary(const std::string& args) { return mlab::test::run_mla_bench(args); }

std::string dataset(const std::string& name) {
  return (mlab::test::data_dir() / "datasets" / name).string();
}

}  // namespace

TEST_CASE("check-dataset reads every good dataset dir with no failures", "[harness][check]") {
  for (const char* task : {"ai2d", "chartqa", "docvqa_val", "gqa", "mmbench_en_dev", "pope",
                           "realworldqa", "seedbench"}) {
    INFO(task);
    const Result r = run_binary(std::string("check-dataset --decode-images --json --task ") + task +
                                " --dataset " + dataset(task));
    REQUIRE(r.code == 0);
    const json summary = json::parse(r.out);
    CHECK(summary.at("task") == task);
    CHECK(summary.at("samples").get<int>() > 0);
    CHECK(summary.at("ok") == summary.at("samples"));
    CHECK(summary.at("failed") == 0);
    CHECK(summary.at("failures").empty());
    // Progress goes to stderr (plain lines: not a terminal), never to stdout.
    CHECK_THAT(r.err, Contains("check-dataset " + std::string(task)) && Contains("(done)"));
  }
  const Result text = run_binary("check-dataset --task pope --dataset " + dataset("pope"));
  REQUIRE(text.code == 0);
  CHECK_THAT(text.out, Contains("samples: 3 read, 3 ok, 0 failed"));
}

TEST_CASE("check-dataset aborts on the first bad sample naming file:line and the problem",
          "[harness][check]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"malformed_json", "malformed JSON"},
      {"not_an_object", "expected a JSON object"},
      {"missing_field", "no field 'answer'"},
      {"bad_category", "'sideways'"},
      {"duplicate_id", "duplicate id '1'"},
      {"escaping_path", "leaves the dataset dir"},
      {"missing_image", "missing_image/images/1.png"},
      {"corrupt_image", "corrupt"}};
  for (const auto& [name, reason] : cases) {
    INFO(name);
    const Result r = run_binary("check-dataset --task pope --dataset " + dataset("bad/" + name));
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Contains(name + "/samples.jsonl:2:") && Contains(reason));
    CHECK(r.out.empty());
  }
  // A truncated PNG has a valid header: only --decode-images finds it.
  Result r = run_binary("check-dataset --task pope --dataset " + dataset("bad/truncated_image"));
  CHECK(r.code == 0);
  r = run_binary("check-dataset --task pope --decode-images --dataset " +
                 dataset("bad/truncated_image"));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("truncated_image/samples.jsonl:2:") &&
                        Contains("truncated_image/images/1.png") && Contains("corrupt"));
}

TEST_CASE("check-dataset --skip-bad lists every bad sample as a failed sample and exits 0",
          "[harness][check]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"malformed_json", "line 2"}, {"not_an_object", "line 2"}, {"missing_field", "2"},
      {"bad_category", "2"},        {"duplicate_id", "1"},       {"escaping_path", "2"},
      {"missing_image", "2"},       {"corrupt_image", "2"}};
  for (const auto& [name, id] : cases) {
    INFO(name);
    const Result r = run_binary("check-dataset --task pope --skip-bad --json --dataset " +
                                dataset("bad/" + name));
    REQUIRE(r.code == 0);
    const json summary = json::parse(r.out);
    CHECK(summary.at("samples") == 3);
    CHECK(summary.at("ok") == 2);
    CHECK(summary.at("failed") == 1);
    REQUIRE(summary.at("failures").size() == 1);
    const json& failure = summary.at("failures")[0];
    CHECK(failure.at("row") == 1);
    CHECK(failure.at("id") == id);
    CHECK_THAT(failure.at("error").get<std::string>(), Contains(name + "/samples.jsonl:2:"));
  }
  const Result text = run_binary("check-dataset --task pope --skip-bad --decode-images --dataset " +
                                 dataset("bad/truncated_image"));
  REQUIRE(text.code == 0);
  CHECK_THAT(text.out, Contains("samples: 3 read, 2 ok, 1 failed") &&
                           Contains("failed row 1 (id '2'): ") &&
                           Contains("truncated_image/samples.jsonl:2:") && Contains("corrupt"));
}

TEST_CASE("check-dataset fails on dir-level problems even with --skip-bad", "[harness][check]") {
  Result r =
      run_binary("check-dataset --task pope --skip-bad --dataset " + dataset("bad/count_mismatch"));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("holds 3 samples, dataset.json says 5"));
  r = run_binary("check-dataset --task pope --skip-bad --dataset " + dataset("bad/wrong_task"));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("holds task 'gqa', expected 'pope'"));
  r = run_binary("check-dataset --task pope --dataset " + dataset("bad/no_such_dir"));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("not a dataset dir"));
  r = run_binary("check-dataset --task popee --dataset " + dataset("pope"));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("did you mean 'pope'"));
  r = run_binary("check-dataset --task pope");
  CHECK(r.code == 2);
  r = run_binary("check-dataset --help");
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Contains("--skip-bad") && Contains("exit code is 0"));
}
