// `mla-bench eval` end to end on a tiny fixture VLM and the fixture dataset dirs: every sample is
// stored once, a rerun of the same run name resumes (stores nothing twice), a changed config is
// refused, and unknown methods are refused.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "results/results_store.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

namespace {

std::string eval_args(const std::string& db, const std::string& tasks) {
  const auto data = mlab::test::data_dir();
  return "eval --model " + (data / "tiny_vlms" / "llava").string() + " --tasks " + tasks +
         " --datasets " + (data / "datasets").string() + " --db " + db +
         " --run-name t --batch-size 2 --threads 1";
}

}  // namespace

TEST_CASE("eval: stores every sample once and a rerun resumes", "[harness][eval]") {
  const auto db = (mlab::test::scratch_dir("eval_resume") / "r.sqlite").string();
  auto r = mlab::test::run_mla_bench(eval_args(db, "pope,ai2d"));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("pope: 3 new, 0 already stored, 0 failed"));
  CHECK_THAT(r.out, Catch::Contains("ai2d: 2 new, 0 already stored, 0 failed"));
  CHECK_THAT(r.out, Catch::Contains("\"pope_yes_ratio\""));
  r = mlab::test::run_mla_bench(eval_args(db, "pope,ai2d"));
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("pope: 0 new, 3 already stored"));
  CHECK_THAT(r.out, Catch::Contains("ai2d: 0 new, 2 already stored"));
  r = mlab::test::run_mla_bench(eval_args(db, "pope"));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("exists with a different config") && Catch::Contains("/tasks"));
  // A method spec the registry does not know is bad usage, answered with the valid names.
  r = mlab::test::run_mla_bench(eval_args(db, "pope") + " --methods h2:budget=0.5");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("did you mean 'h2o'?"));
}

TEST_CASE("regress: equal runs pass, a drop beyond tolerance exits 1 and is listed",
          "[harness][regress]") {
  const auto dir = mlab::test::scratch_dir("regress");
  const auto db = (dir / "r.sqlite").string();
  REQUIRE(mlab::test::run_mla_bench(eval_args(db, "pope")).code == 0);
  // The same evaluation under another run name: identical metrics.
  std::string args = eval_args(db, "pope");
  args.replace(args.find("--run-name t"), 12, "--run-name u");
  REQUIRE(mlab::test::run_mla_bench(args).code == 0);
  auto r = mlab::test::run_mla_bench("regress --db " + db + " --baseline t --candidate u");
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("5 metric(s) compared, 0 regression(s)"));
  // A candidate whose POPE accuracy is 0.25 lower: beyond 0.1, within 0.3.
  {
    auto store = mlab::results::ResultsStore::open(db);
    const auto t = *store.find_run("t");
    double accuracy = 0;
    for (const auto& m : store.metrics(t)) {
      if (m.metric == "pope_accuracy") accuracy = m.value;
    }
    mlab::results::RunInfo info;
    info.name = "worse";
    const auto w = store.begin_run(info);
    for (const auto& m : store.metrics(t)) {
      store.set_metric(w, m.task, m.metric, m.metric == "pope_accuracy" ? accuracy - 0.25 : m.value,
                       m.n);
    }
  }
  r = mlab::test::run_mla_bench("regress --db " + db +
                                " --baseline t --candidate worse --tolerance 0.1");
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Catch::Contains("pope_accuracy") && Catch::Contains("REGRESSION") &&
                        Catch::Contains("1 regression(s)"));
  r = mlab::test::run_mla_bench("regress --db " + db +
                                " --baseline t --candidate worse --tolerance 0.3");
  CHECK(r.code == 0);
  r = mlab::test::run_mla_bench("regress --db " + db + " --baseline t --candidate nope");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("no run named 'nope'") && Catch::Contains("worse"));
}

namespace {

// The stored rows of a run as (task/id -> prediction).
std::map<std::string, std::string> predictions(const std::string& db, const std::string& run) {
  auto store = mlab::results::ResultsStore::open(db, {.read_only = true});
  std::map<std::string, std::string> out;
  for (const auto& row : store.samples(*store.find_run(run))) {
    INFO(row.task << "/" << row.sample_id);
    CHECK(out.emplace(row.task + "/" + row.sample_id, row.prediction).second);  // never twice
  }
  return out;
}

std::map<std::string, double> metric_values(const std::string& db, const std::string& run,
                                            bool with_perf = false) {
  auto store = mlab::results::ResultsStore::open(db, {.read_only = true});
  std::map<std::string, double> out;
  for (const auto& m : store.metrics(*store.find_run(run))) {
    if (with_perf || m.metric.rfind("perf:", 0) != 0) out[m.task + "/" + m.metric] = m.value;
  }
  return out;
}

}  // namespace

TEST_CASE("eval: speed, KV bytes per token and the kv_memory row come from the caches",
          "[harness][eval]") {
  const auto db = (mlab::test::scratch_dir("eval_perf") / "r.sqlite").string();
  auto r = mlab::test::run_mla_bench(eval_args(db, "pope,ai2d"));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("run 't' complete"));
  auto store = mlab::results::ResultsStore::open(db, {.read_only = true});
  const auto run = *store.find_run("t");
  CHECK_FALSE(store.run(run).finished_at.empty());
  // The tiny LLaVA fixture: 2 layers, 4 KV heads x head_dim 16 (config.json), fp32 on CPU: a
  // dense cache holds 2 * 4 * 16 * 4 B = 512 B per token per layer, 1024 B per token.
  const auto kv = store.kv_memory(run);
  REQUIRE(kv.size() == 1);
  CHECK(kv[0].method == "full");
  CHECK(kv[0].bytes_per_token_layer_measured == 512.0);
  CHECK(kv[0].analytic == 512.0);
  CHECK(kv[0].vs_original == 1.0);
  const auto m = metric_values(db, "t", true);
  CHECK(m.at("pope/perf:kv_bytes_per_token") == 1024.0);
  CHECK(m.at("ai2d/perf:kv_bytes_per_token") == 1024.0);
  CHECK(m.at("pope/perf:prefill_tokens_per_s") > 0);
  CHECK(m.at("pope/perf:decode_tokens_per_s") > 0);
  // Every sample carries its share of its batch: prompt + decoded positions = cached tokens.
  for (const auto& row : store.samples(run)) {
    CHECK(row.prompt_tokens > 0);
    CHECK(row.kv_tokens == row.prompt_tokens + row.new_tokens);
    CHECK(row.kv_bytes == row.kv_tokens * 1024);
    CHECK(row.prefill_s > 0);
  }
}

TEST_CASE("eval: two shards writing to one database at once store every sample once",
          "[harness][eval][ranks]") {
  const auto dir = mlab::test::scratch_dir("eval_ranks");
  const auto db = (dir / "shards.sqlite").string();
  const auto one = (dir / "one.sqlite").string();
  // The same evaluation by one process, the reference.
  REQUIRE(mlab::test::run_mla_bench(eval_args(one, "pope,ai2d,gqa")).code == 0);
  // Two processes at once, as torchrun's ranks are (RANK/WORLD_SIZE in the environment).
  const std::string bin = std::string(MLAB_BINARY_DIR) + "/mla-bench ";
  const std::string args = eval_args(db, "pope,ai2d,gqa");
  const std::string both = "(RANK=0 WORLD_SIZE=2 " + bin + args + " > " +
                           (dir / "r0.txt").string() + " 2>&1 & RANK=1 WORLD_SIZE=2 " + bin + args +
                           " > " + (dir / "r1.txt").string() + " 2>&1 & wait %1 && wait %2)";
  REQUIRE(std::system(both.c_str()) == 0);
  const auto shards = predictions(db, "t");
  CHECK(shards.size() == 3 + 2 + 2);
  CHECK(shards == predictions(one, "t"));
  // Each shard wrote a different part; whichever stored a task's last sample wrote its metrics.
  auto with_world = metric_values(db, "t");
  CHECK(with_world == metric_values(one, "t"));
  auto store = mlab::results::ResultsStore::open(db, {.read_only = true});
  CHECK_FALSE(store.run(*store.find_run("t")).finished_at.empty());
  CHECK(store.kv_memory(*store.find_run("t")).size() == 1);
  // A rank outside the world is a usage error.
  auto r = mlab::test::run_mla_bench(eval_args(db, "pope") + " --rank 2 --world-size 2");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("rank 2 of world size 2"));
}

TEST_CASE("export: a run in lmms-eval's layout that score reads back with the same numbers",
          "[harness][export]") {
  const auto dir = mlab::test::scratch_dir("eval_export");
  const auto db = (dir / "r.sqlite").string();
  REQUIRE(mlab::test::run_mla_bench(eval_args(db, "pope,ai2d")).code == 0);
  const auto out = dir / "lmms";
  auto r = mlab::test::run_mla_bench("export --db " + db + " --run t --out " + out.string());
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("pope: 3 samples exported"));
  std::ifstream in(out / "results.json");
  const auto results = nlohmann::json::parse(in);
  const auto stored = metric_values(db, "t");
  CHECK(results["results"]["pope"]["pope_yes_ratio,none"].get<double>() ==
        stored.at("pope/pope_yes_ratio"));
  CHECK(results["results"]["ai2d"]["exact_match,flexible-extract"].get<double>() ==
        stored.at("ai2d/exact_match"));
  CHECK(results["n-samples"]["pope"]["effective"] == 3);
  // The per-sample log is lmms-eval's: score --predictions rescores it to the same aggregates
  // and every logged per-sample value agrees.
  r = mlab::test::run_mla_bench("score --task pope --predictions " +
                                (out / "samples_pope.jsonl").string());
  REQUIRE(r.code == 0);
  const auto rescored = nlohmann::json::parse(r.out);
  CHECK(rescored["log_comparison"]["differ"] == 0);
  CHECK(rescored["log_comparison"]["compared"] == 3);
  CHECK(rescored["results"]["pope_yes_ratio,none"].get<double>() ==
        stored.at("pope/pope_yes_ratio"));
  // Unknown runs are named.
  r = mlab::test::run_mla_bench("export --db " + db + " --run nope --out " + out.string());
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("no run named 'nope'") && Catch::Contains("t"));
}

TEST_CASE("eval: a newer, read-only or locked database is a clear error and keeps its rows",
          "[harness][eval][errors]") {
  const auto dir = mlab::test::scratch_dir("eval_db_errors");
  const auto db = (dir / "r.sqlite").string();
  REQUIRE(mlab::test::run_mla_bench(eval_args(db, "pope")).code == 0);
  const auto before = predictions(db, "t");
  REQUIRE(before.size() == 3);
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  auto sql = [&](const char* statement) {
    REQUIRE(sqlite3_exec(raw, statement, nullptr, nullptr, nullptr) == SQLITE_OK);
  };
  // A database written by a newer mla-bench.
  sql("UPDATE schema_version SET version = 7");
  auto r = mlab::test::run_mla_bench(eval_args(db, "pope,ai2d"));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains(db) && Catch::Contains("schema version 7"));
  sql(("UPDATE schema_version SET version = " + std::to_string(mlab::results::kSchemaVersion))
          .c_str());
  // Locked: this process holds the write lock longer than the eval's --db-timeout.
  sql("BEGIN EXCLUSIVE");
  r = mlab::test::run_mla_bench(eval_args(db, "pope,ai2d") + " --db-timeout 0.3");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains(db) && Catch::Contains("locked"));
  sql("COMMIT");
  sqlite3_close(raw);
  // Read-only for the user (root ignores file modes, so only when not root; the store's own
  // test covers SQLite's read-only state for everyone).
  if (::geteuid() != 0) {
    namespace fs = std::filesystem;
    fs::permissions(db, fs::perms::owner_read);
    r = mlab::test::run_mla_bench(eval_args(db, "pope,ai2d"));
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains(db) && Catch::Contains("read-only"));
    fs::permissions(db, fs::perms::owner_read | fs::perms::owner_write);
  }
  CHECK(predictions(db, "t") == before);
}

TEST_CASE("eval: bad tasks and dataset dirs fail before any run is created", "[harness][eval]") {
  const auto dir = mlab::test::scratch_dir("eval_bad_tasks");
  const auto db = dir / "sub" / "r.sqlite";
  auto r = mlab::test::run_mla_bench(eval_args(db.string(), "pope,popee"));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("unknown task 'popee'") && Catch::Contains("'pope'"));
  CHECK_FALSE(std::filesystem::exists(db));  // nothing was created
  r = mlab::test::run_mla_bench(
      "eval --model " + (mlab::test::data_dir() / "tiny_vlms" / "llava").string() +
      " --tasks pope --datasets " + dir.string() + " --db " + db.string());
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains((dir / "pope").string()) &&
                        Catch::Contains("no dataset dir for task 'pope'"));
  CHECK_FALSE(std::filesystem::exists(db));
  // A database in a directory that does not exist yet: the directory is made.
  r = mlab::test::run_mla_bench(eval_args(db.string(), "pope") + " --limit 1");
  CHECK(r.code == 0);
  CHECK(std::filesystem::exists(db));
}

TEST_CASE("eval --processor: the image processor variant is recorded in the run config",
          "[harness][eval]") {
  const auto db = (mlab::test::scratch_dir("eval_processor") / "r.sqlite").string();
  const auto data = mlab::test::data_dir();
  const std::string args = "eval --model " + (data / "tiny_vlms" / "llava_next").string() +
                           " --tasks pope --datasets " + (data / "datasets").string() + " --db " +
                           db + " --limit 2 --threads 1";
  auto r = mlab::test::run_mla_bench(args + " --run-name v451 --processor transformers-4.51");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  REQUIRE(mlab::test::run_mla_bench(args + " --run-name v5").code == 0);
  {
    auto store = mlab::results::ResultsStore::open(db, {.read_only = true});
    CHECK(store.run(*store.find_run("v451")).info.config.at("processor") == "transformers-4.51");
    CHECK(store.run(*store.find_run("v5")).info.config.at("processor") == "transformers-5");
  }
  // Resuming with the other processor is refused, naming the key.
  r = mlab::test::run_mla_bench(args + " --run-name v451");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("/processor") && Catch::Contains("transformers-4.51"));
  // A run stored before the key existed (transformers 5's processor) still resumes.
  {
    auto store = mlab::results::ResultsStore::open(db);
    auto info = store.run(*store.find_run("v5")).info;
    info.name = "old";
    info.config.erase("processor");
    store.begin_run(info);
  }
  r = mlab::test::run_mla_bench(args + " --run-name old");
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("pope: 2 new, 0 already stored"));
  r = mlab::test::run_mla_bench(args + " --run-name old --processor transformers-4.51");
  CHECK(r.code == 1);
  // An unknown variant is bad usage, answered with the known ones.
  r = mlab::test::run_mla_bench(args + " --run-name x --processor transformers-4.5");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("--processor") &&
                        Catch::Contains("did you mean 'transformers-4.51'") &&
                        Catch::Contains("transformers-5"));
  for (const std::string sub : {"eval", "generate"}) {
    r = mlab::test::run_mla_bench(sub + " --help");
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("--processor") && Catch::Contains("transformers-4.51"));
  }
  r = mlab::test::run_mla_bench("generate --model " + (data / "tiny_vlms" / "llava_next").string() +
                                " --prompt hi --processor 4.51");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("generate: --processor: unknown processor variant '4.51'"));
}
