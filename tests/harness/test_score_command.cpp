// `mla-bench score` and `mla-bench prompt` through the binary, against the committed lmms-eval
// fixtures (tests/data/metrics: lmms-eval's own per-sample values and aggregates; tests/data/
// prompts: its doc_to_text), plus the malformed-input messages (issue F4).
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

using Result = mlab::test::BinaryResult;

Result run(const std::string& args) { return mlab::test::run_mla_bench(args); }

std::vector<json> read_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

std::vector<json> parse_lines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

std::string write_jsonl(const std::string& name, const std::vector<json>& lines) {
  const auto path = mlab::test::scratch_dir("score_inputs") / name;
  std::ofstream out(path);
  for (const json& line : lines) out << line.dump() << "\n";
  return path.string();
}

std::vector<json> fixture(const std::string& name) {
  return read_jsonl(mlab::test::data_dir() / "metrics" / name);
}

// The per-sample output lmms-eval produced, expanded from the fixture's collapsed form.
json expected_output(const std::string& task, const json& e) {
  if (task == "pope") {
    json out;
    for (const char* key :
         {"pope_accuracy", "pope_precision", "pope_recall", "pope_f1_score", "pope_yes_ratio"}) {
      out[key] = e.at("pope_accuracy");
    }
    return out;
  }
  if (task == "seedbench") {
    json out = e;
    out["seed_all"] = e.begin().value();
    return out;
  }
  return e;
}

json input_line(const json& c) { return json{{"prediction", c.at("p")}, {"doc", c.at("d")}}; }

}  // namespace

TEST_CASE("score --input reproduces lmms-eval's per-sample values for every task",
          "[harness][score]") {
  const std::vector<std::pair<std::string, std::string>> tasks = {
      {"ai2d", "ai2d"}, {"chartqa", "chartqa"},         {"docvqa", "docvqa_val"},  {"gqa", "gqa"},
      {"pope", "pope"}, {"realworldqa", "realworldqa"}, {"seedbench", "seedbench"}};
  for (const auto& [file, task] : tasks) {
    INFO(task);
    const std::vector<json> cases = fixture(file + ".jsonl");
    std::vector<json> input;
    for (const json& c : cases) input.push_back(input_line(c));
    const Result r = run("score --task " + task + " --input " + write_jsonl(file, input));
    REQUIRE(r.code == 0);
    const std::vector<json> out = parse_lines(r.out);
    REQUIRE(out.size() == cases.size());
    std::size_t differ = 0;
    std::string first;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      if (out[i] != expected_output(file, cases[i].at("e")) && differ++ == 0) {
        first = cases[i].dump() + " -> " + out[i].dump();
      }
    }
    INFO(differ << " of " << cases.size() << " differ; first: " << first);
    CHECK(differ == 0);
  }
}

TEST_CASE("score --aggregate prints lmms-eval's aggregates", "[harness][score]") {
  // Mean tasks: the mean of lmms-eval's own per-sample values.
  for (const auto& [file, task, metric] :
       std::vector<std::array<std::string, 3>>{{"docvqa", "docvqa_val", "anls,none"},
                                               {"gqa", "gqa", "exact_match,none"},
                                               {"ai2d", "ai2d", "exact_match,flexible-extract"}}) {
    INFO(task);
    const std::vector<json> cases = fixture(file + ".jsonl");
    std::vector<json> input;
    double sum = 0.0;
    for (const json& c : cases) {
      input.push_back(input_line(c));
      sum += c.at("e").begin().value().get<double>();
    }
    const Result r =
        run("score --task " + task + " --aggregate --input " + write_jsonl(file, input));
    REQUIRE(r.code == 0);
    const json last = parse_lines(r.out).back();
    CHECK(last.at("samples") == cases.size());
    CHECK(last.at("results").at(metric).get<double>() == sum / static_cast<double>(cases.size()));
    const std::string stderr_key =
        metric.substr(0, metric.find(',')) + "_stderr" + metric.substr(metric.find(','));
    CHECK(last.at("results").at(stderr_key).is_number());
  }
  // POPE: lmms-eval's pooled aggregates over subsets of the cases.
  const std::vector<json> pope = fixture("pope.jsonl");
  int runs = 0;
  for (const json& agg : fixture("pope_aggregate.jsonl")) {
    if (++runs > 5) break;
    std::vector<json> input;
    for (const json& i : agg.at("cases"))
      input.push_back(input_line(pope.at(i.get<std::size_t>())));
    const Result r = run("score --task pope --aggregate --input " + write_jsonl("pope_agg", input));
    REQUIRE(r.code == 0);
    const json results = parse_lines(r.out).back().at("results");
    for (const auto& [key, value] : agg.at("aggregate").items()) {
      INFO(key);
      CHECK(results.at(key + ",none") == value);
      CHECK(results.at(key + "_stderr,none") == "N/A");
    }
  }
}

TEST_CASE("score reproduces MMBench's circular gpt_eval_score with the seeded fallback",
          "[harness][score]") {
  const json filler = {{"question", "Q?"}, {"hint", "nan"},   {"source", "s"},
                       {"split", "dev"},   {"category", "c"}, {"L2-category", "l2"}};
  int runs = 0;
  for (const json& run_case : fixture("mmbench.jsonl")) {
    if (++runs > 6) break;
    std::vector<json> input;
    for (std::size_t i = 0; i < run_case.at("docs").size(); ++i) {
      json doc = filler;
      doc.update(run_case.at("docs")[i]);
      input.push_back({{"prediction", run_case.at("preds")[i]}, {"doc", doc}});
    }
    const Result r =
        run("score --task mmbench_en_dev --aggregate --input " + write_jsonl("mmbench", input));
    REQUIRE(r.code == 0);
    const json results = parse_lines(r.out).back().at("results");
    CHECK(results.at("gpt_eval_score,none").get<double>() == run_case.at("score").get<double>());
  }
}

TEST_CASE("score --predictions rescores lmms-eval per-sample logs and our own",
          "[harness][score]") {
  const std::vector<json> cases = fixture("realworldqa.jsonl");
  std::vector<json> log, ours;
  double sum = 0.0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const json& c = cases[i];
    // lmms-eval's samples_<task>.jsonl layout (specs/benchmarks.md §6), metric keys included.
    json line = {{"doc_id", i},
                 {"doc", c.at("d")},
                 {"target", c.at("d").at("answer")},
                 {"arguments", {{"0", "max_new_tokens"}}},
                 {"resps", {{c.at("p")}}},
                 {"filtered_resps", {"<filtered>"}}};
    line.update(c.at("e"));
    log.push_back(line);
    ours.push_back(input_line(c));
    sum += c.at("e").at("exact_match").get<double>();
  }
  const double mean = sum / static_cast<double>(cases.size());
  const Result r = run("score --task realworldqa --predictions " + write_jsonl("rwq_log", log));
  REQUIRE(r.code == 0);
  const json out = json::parse(r.out);
  CHECK(out.at("task") == "realworldqa");
  CHECK(out.at("results").at("exact_match,flexible-extract").get<double>() == mean);
  CHECK(out.at("log_comparison").at("compared") == cases.size());
  CHECK(out.at("log_comparison").at("differ") == 0);
  const Result r2 = run("score --task realworldqa --predictions " + write_jsonl("rwq_ours", ours));
  REQUIRE(r2.code == 0);
  CHECK(json::parse(r2.out).at("results").at("exact_match,flexible-extract").get<double>() == mean);
  CHECK(!json::parse(r2.out).contains("log_comparison"));
}

TEST_CASE("score fails on malformed input with file:line and the reason", "[harness][score]") {
  const auto dir = mlab::test::scratch_dir("score_bad");
  {
    std::ofstream out(dir / "bad.jsonl");
    out << R"({"prediction": "yes", "doc": {"question_id": "1", "answer": "yes"}})"
        << "\n"
        << R"({"prediction": "no", "doc": {"question_id": "2", "answer": )"
        << "\n";
    std::ofstream nodoc(dir / "nodoc.jsonl");
    nodoc << R"({"prediction": "yes"})"
          << "\n";
    std::ofstream nofield(dir / "nofield.jsonl");
    nofield << "\n"
            << R"({"prediction": "yes", "doc": {"question_id": "1"}})"
            << "\n";
    std::ofstream nopred(dir / "nopred.jsonl");
    nopred << R"({"doc": {"question_id": "1", "answer": "yes"}})"
           << "\n";
  }
  const std::string d = dir.string();
  Result r = run("score --task pope --input " + d + "/bad.jsonl");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("bad.jsonl:2:") && Contains("malformed JSON"));
  r = run("score --task pope --input " + d + "/nodoc.jsonl");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("nodoc.jsonl:1:") && Contains("missing field 'doc'"));
  r = run("score --task pope --input " + d + "/nofield.jsonl");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("nofield.jsonl:2:") && Contains("no field 'answer'"));
  r = run("score --task pope --predictions " + d + "/nopred.jsonl");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("nopred.jsonl:1:") && Contains("no prediction"));
  r = run("score --task pope --input " + d + "/missing.jsonl");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("missing.jsonl") && Contains("cannot open"));
  r = run("score --task popee --input " + d + "/bad.jsonl");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("did you mean 'pope'"));
  r = run("score --task pope");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("exactly one of --input"));
}

TEST_CASE("prompt prints lmms-eval's doc_to_text per line for every family", "[harness][prompt]") {
  const std::vector<json> lines =
      read_jsonl(mlab::test::data_dir() / "prompts" / "mmbench_en_dev.jsonl");
  std::vector<json> docs;
  for (const json& l : lines) docs.push_back(l.at("doc"));
  const std::string input = write_jsonl("mmb_docs", docs);
  for (const char* family : {"llava", "llava_next", "qwen2_5_vl"}) {
    const Result r =
        run(std::string("prompt --task mmbench --family ") + family + " --input " + input);
    REQUIRE(r.code == 0);
    const std::vector<json> out = parse_lines(r.out);
    REQUIRE(out.size() == lines.size());
    for (std::size_t i = 0; i < out.size(); ++i) CHECK(out[i] == lines[i].at("prompts").at(family));
  }
  // Dataset-dir sample lines work too (the record is under "doc").
  const Result ds = run("prompt --task pope --input " +
                        (mlab::test::data_dir() / "datasets" / "pope" / "samples.jsonl").string());
  REQUIRE(ds.code == 0);
  CHECK_THAT(ds.out, Contains("Is there a snowboard in the image?\\nAnswer the question using a "
                              "single word or phrase."));
  const Result bad = run("prompt --task pope --family llama --input " + input);
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Contains("unknown family 'llama'"));
}
