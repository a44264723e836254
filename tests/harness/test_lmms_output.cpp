// `mla-bench score --output-dir` writes lmms-eval's results JSON and samples_<task>.jsonl
// (evaluators/lmms_output.hpp). Compared with what lmms-eval's own writer produced on the same
// docs and outputs (tests/data/lmms_output/<task>.json from tools/fixtures/lmms_output_oracle.py):
// the per-sample lines byte for byte, the results JSON key for key (order and JSON types), with
// values equal except the run's times, date, git hash, the dataset path (the authors' local
// path vs the HF path) and function addresses. Then the log round-trips through --predictions.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

using Result = mlab::test::BinaryResult;

Result run_binary(const std::string& args) { return mlab::test::run_mla_bench(args); }

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Paths whose values legitimately differ between two runs (types must still agree).
bool value_exempt(const std::string& path) {
  static const std::set<std::string> kExempt = {"/date", "/start_time", "/end_time",
                                                "/total_evaluation_time_seconds", "/git_hash"};
  if (kExempt.count(path)) return true;
  if (path.find("/dataset_path") != std::string::npos) return true;
  return path.rfind("/n-samples/", 0) == 0 && path.size() > 9 &&
         path.substr(path.size() - 9) == "/original";
}

std::string strip_address(const std::string& s) {
  static const std::regex kAddress(" at 0x[0-9a-f]+");
  return std::regex_replace(s, kAddress, "");
}

// Differences between our JSON and lmms-eval's: key order and sets, JSON types, values.
void compare(const ordered_json& ours, const ordered_json& theirs, const std::string& path,
             std::vector<std::string>& diffs) {
  if (path == "/git_hash" && ours.is_null()) return;  // lmms-eval writes null without git
  if (ours.type() != theirs.type()) {
    diffs.push_back(path + ": type " + ours.type_name() + " vs " + theirs.type_name());
    return;
  }
  if (ours.is_object()) {
    std::vector<std::string> a, b;
    for (const auto& [k, _] : ours.items()) a.push_back(k);
    for (const auto& [k, _] : theirs.items()) b.push_back(k);
    if (a != b) {
      diffs.push_back(path + ": keys " + json(a).dump() + " vs " + json(b).dump());
      return;
    }
    for (const auto& [k, v] : ours.items()) compare(v, theirs[k], path + "/" + k, diffs);
  } else if (ours.is_array()) {
    if (ours.size() != theirs.size()) {
      diffs.push_back(path + ": sizes differ");
      return;
    }
    for (std::size_t i = 0; i < ours.size(); ++i) {
      compare(ours[i], theirs[i], path + "/" + std::to_string(i), diffs);
    }
  } else if (!value_exempt(path)) {
    const bool same = ours.is_string() ? strip_address(ours.get<std::string>()) ==
                                             strip_address(theirs.get<std::string>())
                                       : ours == theirs;
    if (!same) diffs.push_back(path + ": " + ours.dump() + " vs " + theirs.dump());
  }
}

const std::vector<std::string> kTasks = {"ai2d", "docvqa_val", "pope", "realworldqa"};

}  // namespace

TEST_CASE("score --output-dir writes lmms-eval's results JSON and samples_<task>.jsonl",
          "[harness][score][lmms_output]") {
  for (const std::string& task : kTasks) {
    INFO(task);
    const ordered_json oracle =
        ordered_json::parse(read_text(mlab::test::data_dir() / "lmms_output" / (task + ".json")));
    const auto dir = mlab::test::scratch_dir("lmms_output_" + task);
    {
      std::ofstream out(dir / "predictions.jsonl");
      for (const auto& input : oracle.at("inputs")) out << input.dump() << "\n";
    }
    const Result r =
        run_binary("score --task " + task + " --predictions " +
                   (dir / "predictions.jsonl").string() + " --output-dir " +
                   (dir / "out").string() + " --model-args pretrained=llava-hf/llava-1.5-7b-hf");
    INFO(r.err);
    REQUIRE(r.code == 0);
    // Per-sample lines: byte for byte what EvaluationTracker.save_results_samples wrote.
    const std::vector<std::string> lines =
        split_lines(read_text(dir / "out" / ("samples_" + task + ".jsonl")));
    const auto& expected = oracle.at("samples_text");
    REQUIRE(lines.size() == expected.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
      CHECK(lines[i] == expected[i].get<std::string>());
    }
    // Results JSON: lmms-eval's keys in its order, its types, its values where comparable.
    const std::string results_text = read_text(dir / "out" / "results.json");
    const ordered_json results = ordered_json::parse(results_text);
    std::vector<std::string> diffs;
    compare(results, oracle.at("results"), "", diffs);
    INFO(json(diffs).dump(1));
    CHECK(diffs.empty());
    CHECK(results.at("task_hashes") == oracle.at("results").at("task_hashes"));
    // Same indentation and separators as json.dumps(indent=2): the first lines agree verbatim.
    const auto ours_head = split_lines(results_text),
               theirs_head = split_lines(oracle.at("results_text").get<std::string>());
    REQUIRE(ours_head.size() >= 10);
    for (std::size_t i = 0; i < 10; ++i) CHECK(ours_head[i] == theirs_head[i]);

    // Round trip: our per-sample log, rescored, gives the same aggregates.
    const json printed = json::parse(r.out);
    const Result again = run_binary("score --task " + task + " --predictions " +
                                    (dir / "out" / ("samples_" + task + ".jsonl")).string());
    REQUIRE(again.code == 0);
    const json rescored = json::parse(again.out);
    CHECK(rescored.at("results") == printed.at("results"));
    CHECK(rescored.at("samples") == printed.at("samples"));
    CHECK(rescored.at("log_comparison").at("differ") == 0);
    // And the aggregates in results.json are the printed ones.
    for (const auto& [key, value] : printed.at("results").items()) {
      CHECK(json(results.at("results").at(task).at(key)) == value);
    }
  }
}

TEST_CASE("score --output-dir works with --input and rejects an unknown family",
          "[harness][score][lmms_output]") {
  const ordered_json oracle =
      ordered_json::parse(read_text(mlab::test::data_dir() / "lmms_output" / "pope.json"));
  const auto dir = mlab::test::scratch_dir("lmms_output_input");
  {
    std::ofstream out(dir / "cases.jsonl");
    for (const auto& input : oracle.at("inputs")) out << input.dump() << "\n";
  }
  const std::string input = (dir / "cases.jsonl").string();
  Result r =
      run_binary("score --task pope --input " + input + " --output-dir " + (dir / "out").string());
  REQUIRE(r.code == 0);
  CHECK(split_lines(r.out).size() == oracle.at("inputs").size());
  CHECK(std::filesystem::exists(dir / "out" / "results.json"));
  CHECK(std::filesystem::exists(dir / "out" / "samples_pope.jsonl"));
  r = run_binary("score --task pope --family llama --input " + input + " --output-dir " +
                 (dir / "out2").string());
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Matchers::Contains("unknown family 'llama'"));
}
