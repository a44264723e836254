// `mla-bench quickstart` and tools/nightly.sh end to end (issue F9, acceptance 4 and 5), on the
// shipped demo model (assets/models/mlab-llava-synth) at a reduced size: the same seed stores the
// same rows, and the nightly gate fails, naming the metric, when a method's cache is corrupted.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "results/perf_metrics.hpp"
#include "results/results_store.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

namespace fs = std::filesystem;
using namespace mlab;

namespace {

// The source tree (tests/data is <source>/tests/data).
const fs::path kSource = mlab::test::data_dir().parent_path().parent_path();
const fs::path kModel = kSource / "assets" / "models" / "mlab-llava-synth";
// Small enough for the default test run (one MLA model, a few samples, two steps per stage).
const std::string kSmall =
    " --samples 6 --train-samples 8 --steps 2 --batch 2 --d-kv 16 --threads 1";

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

// Every stored row of every run of `db` apart from timings, as text (one line each).
std::vector<std::string> rows_without_timings(const fs::path& db) {
  results::OpenOptions ro;
  ro.read_only = true;
  const auto store = results::ResultsStore::open(db, ro);
  std::vector<std::string> lines;
  for (const auto& run : store.runs()) {
    nlohmann::json config = run.info.config;
    for (const char* path_key : {"model", "datasets"}) config.erase(path_key);  // the work dirs
    lines.push_back("run " + run.info.name + " " + config.dump());
    for (const auto& s : store.samples(run.id)) {
      std::ostringstream l;
      l << "  " << s.task << " " << s.sample_id << " " << nlohmann::json(s.prediction).dump() << " "
        << s.metrics.dump() << " kv " << s.kv_bytes << "/" << s.kv_bytes_peak << "/" << s.kv_tokens
        << " tokens " << s.prompt_tokens << "+" << s.new_tokens << " " << s.error;
      lines.push_back(l.str());
    }
    for (const auto& m : store.metrics(run.id)) {
      if (results::is_timing_metric(m.metric)) continue;
      std::ostringstream l;
      l.precision(17);
      l << "  metric " << m.task << " " << m.metric << " " << m.value << " n " << m.n;
      lines.push_back(l.str());
    }
    for (const auto& k : store.kv_memory(run.id)) {
      std::ostringstream l;
      l.precision(17);
      l << "  kv " << k.method << " " << k.bytes_per_token_layer_measured << " " << k.analytic;
      lines.push_back(l.str());
    }
  }
  return lines;
}

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("quickstart: two runs with the same seed store identical rows apart from timings",
          "[quickstart][cli]") {
  const auto dir = test::scratch_dir("quickstart_twice");
  std::vector<std::string> tables;
  for (const char* name : {"a", "b"}) {
    const auto r = test::run_mla_bench("quickstart --work-dir " + quote(dir / name) + kSmall);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("[4/5] Table 2 in miniature") != std::string::npos);
    CHECK(r.out.find("time: synthetic suite") != std::string::npos);
    tables.push_back(r.out);
  }
  const auto a = rows_without_timings(dir / "a" / "results.sqlite");
  const auto b = rows_without_timings(dir / "b" / "results.sqlite");
  REQUIRE(a.size() == b.size());
  CHECK(a.size() > 100);
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("row " << i);
    CHECK(a[i] == b[i]);
  }
  // The converted, fine-tuned models are byte-identical too.
  const fs::path stage2 =
      fs::path("models") / "mla-r16-dkv16" / "stage2" / "checkpoint-2" / "model.safetensors";
  REQUIRE(fs::exists(dir / "a" / stage2));
  CHECK(file_bytes(dir / "a" / stage2) == file_bytes(dir / "b" / stage2));

  // A rerun in the same work dir reuses everything: no new run, no sample stored twice.
  const auto again = test::run_mla_bench("quickstart --work-dir " + quote(dir / "a") + kSmall);
  INFO(again.out << again.err);
  REQUIRE(again.code == 0);
  CHECK(rows_without_timings(dir / "a" / "results.sqlite") == a);
}

TEST_CASE("nightly: two nights append two runs per configuration and a corrupted cache fails "
          "the gate naming the metric",
          "[quickstart][nightly][slow]") {
  const auto dir = test::scratch_dir("nightly_gate");
  const fs::path db = dir / "nightly.sqlite";
  auto night = [&](const std::string& stamp, const std::string& env) {
    const std::string command = env + " MLA_BENCH='" + std::string(MLAB_BINARY_DIR) +
                                "/mla-bench' bash " + quote(kSource / "tools" / "nightly.sh") +
                                " --db " + quote(db) + " --work-dir " + quote(dir / "work") +
                                " --site " + quote(dir / "site") + " --stamp " + stamp + " --" +
                                kSmall + " >" + quote(dir / (stamp + ".log")) + " 2>&1";
    const int status = std::system(command.c_str());
    std::ifstream log(dir / (stamp + ".log"));
    std::string text(std::istreambuf_iterator<char>(log), {});
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, text);
  };
  const auto first = night("n1", "");
  INFO(first.second);
  REQUIRE(first.first == 0);
  CHECK(first.second.find("first night") != std::string::npos);
  const auto second = night("n2", "");
  INFO(second.second);
  REQUIRE(second.first == 0);
  CHECK(second.second.find("no regression") != std::string::npos);

  results::OpenOptions ro;
  ro.read_only = true;
  {
    const auto store = results::ResultsStore::open(db, ro);
    std::map<std::string, int> per_config;
    for (const auto& run : store.runs()) {
      const auto& name = run.info.name;
      per_config[name.substr(name.find('/', std::string("nightly/").size()) + 1)]++;
    }
    CHECK(per_config.size() >= 10);
    for (const auto& [config, count] : per_config) {
      INFO(config);
      CHECK(count == 2);
    }
  }

  const auto broken = night("n3", "MLAB_FAULT_CORRUPT_KV=quanto");
  INFO(broken.second);
  CHECK(broken.first == 1);
  CHECK(broken.second.find("REGRESSION in") != std::string::npos);
  CHECK(broken.second.find("quanto-int4") != std::string::npos);
  // regress names the metric that dropped: a "<task> <metric> ... REGRESSION" line.
  std::istringstream lines(broken.second);
  std::string line, named;
  while (std::getline(lines, line)) {
    const bool regression = line.size() > 10 && line.rfind("REGRESSION") == line.size() - 10;
    for (const char* task : {"ai2d", "gqa", "pope", "seedbench", "realworldqa", "mmbench_en_dev",
                             "chartqa", "docvqa_val"}) {
      if (regression && line.rfind(task, 0) == 0) named = line;
    }
  }
  INFO("a regressed metric line: " << named);
  CHECK(!named.empty());
}

namespace {

// The headline score of each task of an eval run (configs/tasks/<task>.json "headline", the
// metric part), as the quickstart's table shows it (a fraction; MMBench's scale 1 is a percent).
std::map<std::string, double> headline_scores(const fs::path& db, const std::string& run_name) {
  results::OpenOptions ro;
  ro.read_only = true;
  const auto store = results::ResultsStore::open(db, ro);
  const auto metrics = store.metrics(store.require_run(run_name));
  std::map<std::string, double> scores;
  for (const char* task : {"ai2d", "gqa", "pope", "seedbench", "realworldqa", "mmbench_en_dev",
                           "chartqa", "docvqa_val"}) {
    std::ifstream in(kSource / "configs" / "tasks" / (std::string(task) + ".json"));
    const auto config = nlohmann::json::parse(in);
    const std::string headline = config.at("headline");
    const std::string metric = headline.substr(0, headline.find(','));
    const double scale = config.at("scale").get<double>();
    for (const auto& m : metrics)
      if (m.task == task && m.metric == metric) scores[task] = m.value * scale / 100.0;
  }
  return scores;
}

}  // namespace

TEST_CASE("shipped models: well above chance on every synthetic task and at chance with blank "
          "images",
          "[quickstart][models][slow]") {
  // Issue F9 acceptance 2. The bar per task: 2 x chance; on the open-ended tasks (GQA, ChartQA,
  // DocVQA) also >= 0.5; POPE's headline is F1, whose blind best (always "yes") is 0.667, so 2 x
  // chance does not exist there: halfway from chance to 1. Blank images: at most chance + 0.15
  // (40 samples per task: the binomial spread of an accuracy near 0.25 is 0.07).
  const auto dir = test::scratch_dir("shipped_models");
  const auto synth = test::run_mla_bench("synth --quiet --out " + quote(dir / "synth") +
                                         " --seed 3 --n 40");
  INFO(synth.out << synth.err);
  REQUIRE(synth.code == 0);
  std::ifstream manifest_in(dir / "synth" / "synth.json");
  const auto manifest = nlohmann::json::parse(manifest_in);
  for (const char* name : {"mlab-llava-synth", "mlab-qwen-synth"}) {
    const fs::path model = kSource / "assets" / "models" / name;
    INFO(name);
    REQUIRE(fs::is_directory(model));
    for (const std::string mode : {"images", "blank"}) {
      const auto r = test::run_mla_bench(
          "eval --model " + quote(model) + " --tasks ai2d,gqa,pope,seedbench,realworldqa," +
          "mmbench_en_dev,chartqa,docvqa_val --datasets " + quote(dir / "synth") + " --db " +
          quote(dir / "eval.sqlite") + " --run-name " + name + "/" + mode + " --batch-size 8" +
          (mode == "blank" ? " --blank-images" : ""));
      INFO(r.out << r.err);
      REQUIRE(r.code == 0);
    }
    const auto seen = headline_scores(dir / "eval.sqlite", std::string(name) + "/images");
    const auto blank = headline_scores(dir / "eval.sqlite", std::string(name) + "/blank");
    for (const auto& [task, entry] : manifest.at("tasks").items()) {
      const double chance = entry.at("chance");
      const bool open = task == "gqa" || task == "chartqa" || task == "docvqa_val";
      const double bar = task == "pope" ? (1 + chance) / 2
                                        : open ? std::max(2 * chance, 0.5) : 2 * chance;
      std::cout << name << " " << task << ": " << seen.at(task) << " with images, "
                << blank.at(task) << " blank (chance " << chance << ", bar " << bar << ")\n";
      INFO(task << " chance " << chance);
      CHECK(seen.at(task) >= bar);
      CHECK(blank.at(task) <= chance + 0.15);
    }
  }
}
