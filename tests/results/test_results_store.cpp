// The SQLite results store (F5, DESIGN.md §3): create/reopen, resume, duplicates, config
// mismatch, schema versions, read-only and locked databases, a full disk, two writers at once.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "results/results_store.hpp"
#include "tests/support/catch_torch.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using mlab::results::OpenOptions;
using mlab::results::ResultsStore;
using mlab::results::RunInfo;
using mlab::results::SampleRow;

namespace {

RunInfo run_info(const std::string& name) {
  RunInfo info;
  info.name = name;
  info.git_sha = "abc123";
  info.torch_version = "2.11.0";
  info.device = "cpu";
  info.threads = 2;
  info.seed = 1234;
  info.config = {{"model", {{"name", "tiny-llava"}, {"dtype", "float32"}}},
                 {"method", "full"},
                 {"tasks", {"pope", "chartqa"}},
                 {"limit", 10}};
  return info;
}

SampleRow sample(const std::string& task, const std::string& id, std::size_t prediction_size = 8) {
  SampleRow row;
  row.task = task;
  row.sample_id = id;
  row.prediction = std::string(prediction_size, 'y');
  row.metrics = {{"accuracy", 1.0}};
  row.latency_s = 0.25;
  row.kv_bytes = 4096;
  return row;
}

// Runs one SQL statement on the database with a separate connection (what another tool does).
void raw_exec(const fs::path& db, const std::string& sql) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  char* message = nullptr;
  const int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &message);
  const std::string text = message != nullptr ? message : "";
  sqlite3_free(message);
  sqlite3_close(raw);
  INFO(sql << ": " << text);
  REQUIRE(rc == SQLITE_OK);
}

int64_t count_samples(const fs::path& db) {
  auto store = ResultsStore::open(db);
  int64_t total = 0;
  for (const auto& run : store.runs()) total += store.sample_count(run.id);
  return total;
}

}  // namespace

TEST_CASE("results store: create, reopen, round trip") {
  const auto db = mlab::test::scratch_dir("results_create") / "results.db";
  int64_t run = 0;
  {
    auto store = ResultsStore::open(db);
    run = store.begin_run(run_info("r1"));
    auto row = sample("pope", "7");
    row.prediction = "yes \xc3\xa9";
    row.metrics = {{"accuracy", 0.0}, {"f1", 0.5}};
    row.error = "";
    auto failed = sample("pope", "8");
    failed.error = "decode failed";
    REQUIRE(store.add_samples(run, {row, failed, sample("chartqa", "1")}) == 3);
    store.set_metric(run, "pope", "accuracy", 0.5, 2);
    store.set_metric(run, "pope", "accuracy", 0.75, 4);  // recomputed: replaces
    store.set_kv_memory(run, {"full", 1024.0, 1024.0, 1.0, 1.0});
    store.finish_run(run);
  }
  auto store = ResultsStore::open(db);
  const auto runs = store.runs();
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].id == run);
  CHECK(runs[0].info.name == "r1");
  CHECK(runs[0].info.git_sha == "abc123");
  CHECK(runs[0].info.torch_version == "2.11.0");
  CHECK(runs[0].info.threads == 2);
  CHECK(runs[0].info.seed == 1234);
  CHECK(runs[0].info.config == run_info("r1").config);
  CHECK(!runs[0].started_at.empty());
  CHECK(!runs[0].finished_at.empty());
  CHECK(store.find_run("r1") == run);
  CHECK(!store.find_run("r2").has_value());

  const auto pope = store.samples(run, "pope");
  REQUIRE(pope.size() == 2);
  CHECK(pope[0].sample_id == "7");
  CHECK(pope[0].prediction == "yes \xc3\xa9");
  CHECK(pope[0].metrics["f1"] == 0.5);
  CHECK(pope[0].latency_s == 0.25);
  CHECK(pope[0].kv_bytes == 4096);
  CHECK(pope[1].error == "decode failed");
  CHECK(store.samples(run).size() == 3);

  const auto metrics = store.metrics(run);
  REQUIRE(metrics.size() == 1);
  CHECK(metrics[0].value == 0.75);
  CHECK(metrics[0].n == 4);
  const auto kv = store.kv_memory(run);
  REQUIRE(kv.size() == 1);
  CHECK(kv[0].method == "full");
  CHECK(kv[0].bytes_per_token_layer_measured == 1024.0);
}

TEST_CASE("results store: resume returns the run and skips finished samples - duplicates once") {
  const auto db = mlab::test::scratch_dir("results_resume") / "results.db";
  {
    auto store = ResultsStore::open(db);
    const auto run = store.begin_run(run_info("r"));
    REQUIRE(store.add_samples(run, {sample("pope", "1"), sample("pope", "2")}) == 2);
  }
  auto store = ResultsStore::open(db);
  auto info = run_info("r");
  info.git_sha = "def456";  // a code fix between crash and resume is allowed
  const auto run = store.begin_run(info);
  CHECK(run == *store.find_run("r"));
  CHECK(store.runs().size() == 1);
  const auto done = store.finished_samples(run);
  CHECK(done == std::set<std::pair<std::string, std::string>>{{"pope", "1"}, {"pope", "2"}});

  // The same sample again (a batch that was stored just before a crash) is stored once.
  CHECK(store.add_samples(run, {sample("pope", "2"), sample("pope", "3"), sample("pope", "3")}) ==
        1);
  CHECK(store.add_samples(run, {sample("pope", "1")}) == 0);
  CHECK(store.sample_count(run) == 3);
  // Same sample id in another task is another sample.
  CHECK(store.add_samples(run, {sample("chartqa", "1")}) == 1);
  CHECK(store.sample_count(run) == 4);

  // A second run keeps its samples apart.
  const auto other = store.begin_run(run_info("other"));
  CHECK(other != run);
  CHECK(store.add_samples(other, {sample("pope", "1")}) == 1);
  CHECK(store.sample_count(run) == 4);
}

TEST_CASE("results store: a changed config is rejected naming the key") {
  const auto db = mlab::test::scratch_dir("results_config") / "results.db";
  auto store = ResultsStore::open(db);
  store.begin_run(run_info("r"));

  auto changed = run_info("r");
  changed.config["model"]["dtype"] = "bfloat16";
  REQUIRE_THROWS_AS(store.begin_run(changed), mlab::Error);
  REQUIRE_THROWS_WITH(store.begin_run(changed),
                      Contains("/model/dtype") && Contains("\"float32\"") &&
                          Contains("\"bfloat16\"") && Contains(db.string()) && Contains("'r'"));

  auto added = run_info("r");
  added.config["batch_size"] = 4;
  REQUIRE_THROWS_WITH(store.begin_run(added), Contains("/batch_size: stored (absent), now 4"));

  auto longer = run_info("r");
  longer.config["tasks"].push_back("docvqa");
  REQUIRE_THROWS_WITH(store.begin_run(longer), Contains("/tasks: stored 2 elements, now 3"));

  auto seed = run_info("r");
  seed.seed = 1;
  REQUIRE_THROWS_WITH(store.begin_run(seed), Contains("seed: stored 1234, now 1"));

  CHECK(store.runs().size() == 1);
  CHECK(mlab::results::first_json_difference(run_info("r").config, run_info("r").config).empty());
  CHECK(mlab::results::first_json_difference(1, 2) == "/: stored 1, now 2");
}

TEST_CASE("results store: a config key added later resumes the runs stored without it") {
  const auto db = mlab::test::scratch_dir("results_legacy_config") / "results.db";
  auto store = ResultsStore::open(db);
  const int64_t id = store.begin_run(run_info("r"));  // stored before "processor" existed

  auto now = run_info("r");
  now.config["processor"] = "transformers-5";
  REQUIRE_THROWS_WITH(store.begin_run(now),
                      Contains("/processor: stored (absent), now \"transformers-5\""));
  now.legacy_defaults["processor"] = "transformers-5";
  CHECK(store.begin_run(now) == id);
  // Only the value older runs had matches; the stored config is not rewritten.
  now.config["processor"] = "transformers-4.51";
  REQUIRE_THROWS_WITH(store.begin_run(now),
                      Contains("/processor: stored \"transformers-5\", now \"transformers-4.51\""));
  CHECK_FALSE(store.run(id).info.config.contains("processor"));
  // A run stored with the key compares it as usual.
  auto fresh = run_info("s");
  fresh.config["processor"] = "transformers-4.51";
  fresh.legacy_defaults["processor"] = "transformers-5";
  const int64_t s = store.begin_run(fresh);
  CHECK(store.begin_run(fresh) == s);
  fresh.config["processor"] = "transformers-5";
  REQUIRE_THROWS_WITH(store.begin_run(fresh), Contains("/processor: stored \"transformers-4.51\""));
}

TEST_CASE("results store: a database with a newer schema version is rejected") {
  const auto db = mlab::test::scratch_dir("results_version") / "results.db";
  {
    auto store = ResultsStore::open(db);
    store.add_samples(store.begin_run(run_info("r")), {sample("pope", "1")});
  }
  raw_exec(db, "UPDATE schema_version SET version = 99");
  REQUIRE_THROWS_WITH(ResultsStore::open(db),
                      Contains(db.string()) && Contains("version 99") &&
                          Contains("up to " + std::to_string(mlab::results::kSchemaVersion)));
  REQUIRE_THROWS_WITH(ResultsStore::open(db, {.read_only = true}), Contains("version 99"));
  raw_exec(db, "UPDATE schema_version SET version = 2");
  CHECK(count_samples(db) == 1);
}

TEST_CASE("results store: a version-1 database is read as is and migrated when opened to write") {
  const auto db = mlab::test::scratch_dir("results_migrate") / "results.db";
  // The version-1 layout (results/schema.sql as of schema version 1) with one run and sample.
  raw_exec(db,
           "CREATE TABLE schema_version (version INTEGER NOT NULL);"
           "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, git_sha TEXT "
           "NOT NULL, torch_version TEXT NOT NULL, device TEXT NOT NULL, threads INTEGER NOT "
           "NULL, seed INTEGER NOT NULL, config_json TEXT NOT NULL, started_at TEXT NOT NULL, "
           "finished_at TEXT);"
           "CREATE TABLE samples (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES "
           "runs(id), task TEXT NOT NULL, sample_id TEXT NOT NULL, prediction TEXT NOT NULL, "
           "metrics_json TEXT NOT NULL, latency_s REAL NOT NULL, kv_bytes INTEGER NOT NULL, "
           "error TEXT NOT NULL DEFAULT '', UNIQUE (run_id, task, sample_id));"
           "CREATE TABLE metrics (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES "
           "runs(id), task TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, n INTEGER "
           "NOT NULL, UNIQUE (run_id, task, metric));"
           "CREATE TABLE kv_memory (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES "
           "runs(id), method TEXT NOT NULL, bytes_per_token_layer_measured REAL NOT NULL, "
           "analytic REAL NOT NULL, vs_original REAL NOT NULL, vs_mha_equivalent REAL NOT NULL, "
           "UNIQUE (run_id, method));"
           "INSERT INTO schema_version VALUES (1);"
           "INSERT INTO runs VALUES (1, 'old', 'sha', '2.11.0', 'cpu', 2, 7, '{}', "
           "'2026-11-01T00:00:00Z', NULL);"
           "INSERT INTO samples (run_id, task, sample_id, prediction, metrics_json, latency_s, "
           "kv_bytes) VALUES (1, 'pope', 's1', 'Yes', '{\"pope_accuracy\": 1}', 0.5, 1024);");
  {
    auto store = ResultsStore::open(db, {.read_only = true});  // no migration, zeros
    const auto rows = store.samples(1);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].prediction == "Yes");
    CHECK(rows[0].kv_bytes == 1024);
    CHECK(rows[0].prompt_tokens == 0);
    CHECK(rows[0].decode_s == 0);
  }
  {
    auto store = ResultsStore::open(db);  // migrates to the current version
    SampleRow row = sample("pope", "s2");
    row.prompt_tokens = 37;
    row.new_tokens = 3;
    row.kv_tokens = 39;
    row.prefill_s = 0.125;
    row.decode_s = 0.0625;
    CHECK(store.add_samples(1, {row}) == 1);
    const auto rows = store.samples(1);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].prediction == "Yes");
    CHECK(rows[0].new_tokens == 0);
    CHECK(rows[1].prompt_tokens == 37);
    CHECK(rows[1].new_tokens == 3);
    CHECK(rows[1].kv_tokens == 39);
    CHECK(rows[1].prefill_s == 0.125);
    CHECK(rows[1].decode_s == 0.0625);
  }
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw, "SELECT version FROM schema_version", -1, &stmt, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  CHECK(sqlite3_column_int(stmt, 0) == mlab::results::kSchemaVersion);
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

TEST_CASE("results store: foreign files are rejected") {
  const auto dir = mlab::test::scratch_dir("results_foreign");
  { std::ofstream(dir / "text.db") << "this is not an sqlite database, not at all, no no no....."; }
  REQUIRE_THROWS_WITH(ResultsStore::open(dir / "text.db"),
                      Contains((dir / "text.db").string()) && Contains("not an SQLite database"));
  raw_exec(dir / "other.db", "CREATE TABLE t (x)");
  REQUIRE_THROWS_WITH(ResultsStore::open(dir / "other.db"),
                      Contains("not an MLA-Bench results database"));
  REQUIRE_THROWS_WITH(ResultsStore::open(dir / "missing" / "r.db"),
                      Contains("cannot open") && Contains("missing"));
}

TEST_CASE("results store: a read-only database gives a clear error and loses nothing") {
  const auto db = mlab::test::scratch_dir("results_readonly") / "results.db";
  int64_t run = 0;
  {
    auto store = ResultsStore::open(db);
    run = store.begin_run(run_info("r"));
    store.add_samples(run, {sample("pope", "1"), sample("pope", "2")});
  }
  // Opened read-only on purpose (reports): reads work, writes fail naming the file.
  {
    auto store = ResultsStore::open(db, {.read_only = true});
    CHECK(store.sample_count(run) == 2);
    REQUIRE_THROWS_WITH(store.add_samples(run, {sample("pope", "3")}),
                        Contains(db.string()) && Contains("read-only"));
    REQUIRE_THROWS_WITH(store.begin_run(run_info("r2")), Contains("read-only"));
  }
  // A write-protected file.
  fs::permissions(db, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  const bool writable_anyway = std::ofstream(db, std::ios::app).good();  // root ignores modes
  if (writable_anyway) {
    WARN("running as a user that can write a 0444 file (root?): the chmod case is not checked");
  } else {
    REQUIRE_THROWS_WITH(ResultsStore::open(db), Contains(db.string()) && Contains("read-only"));
  }
  fs::permissions(db, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
  CHECK(count_samples(db) == 2);
}

TEST_CASE("results store: a locked database gives a clear error and loses nothing") {
  const auto db = mlab::test::scratch_dir("results_locked") / "results.db";
  auto store = ResultsStore::open(db, {.busy_timeout = std::chrono::milliseconds(200)});
  const auto run = store.begin_run(run_info("r"));
  store.add_samples(run, {sample("pope", "1")});

  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  REQUIRE_THROWS_WITH(store.add_samples(run, {sample("pope", "2")}),
                      Contains(db.string()) && Contains("locked"));
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);

  CHECK(store.add_samples(run, {sample("pope", "2")}) == 1);
  CHECK(store.sample_count(run) == 2);
}

TEST_CASE("results store: a full disk gives a clear error and keeps committed rows") {
  const auto db = mlab::test::scratch_dir("results_full") / "results.db";
  {
    auto store = ResultsStore::open(db);
    store.begin_run(run_info("r"));
  }
  auto store = ResultsStore::open(db, {.max_pages = 40});
  const auto run = store.begin_run(run_info("r"));
  int64_t committed = 0;
  std::string message;
  for (int batch = 0; batch < 1000 && message.empty(); ++batch) {
    std::vector<SampleRow> rows;
    for (int i = 0; i < 10; ++i)
      rows.push_back(sample("pope", std::to_string(batch * 10 + i), 1500));
    try {
      committed += store.add_samples(run, rows);
    } catch (const mlab::Error& e) {
      message = e.what();
    }
  }
  INFO(message);
  REQUIRE(committed > 0);
  CHECK_THAT(message, Contains(db.string()) && Contains("disk full"));
  CHECK(store.sample_count(run) == committed);
  // The store still works for what fits (a read, a write of nothing new).
  CHECK(store.add_samples(run, {sample("pope", "0")}) == 0);
  CHECK(count_samples(db) == committed);
}

TEST_CASE("results store: two processes writing at once lose nothing") {
  const auto db = mlab::test::scratch_dir("results_two_writers") / "results.db";
  constexpr int kPerProcess = 500;
  std::vector<pid_t> children;
  for (int p = 0; p < 2; ++p) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        // Both create the database, begin (one creates the run, the other resumes it) and write
        // small batches interleaved with the other process.
        auto store = ResultsStore::open(db);
        const auto run = store.begin_run(run_info("shared"));
        for (int i = 0; i < kPerProcess; i += 5) {
          std::vector<SampleRow> rows;
          for (int j = i; j < i + 5; ++j) {
            rows.push_back(sample("pope", std::to_string(p) + "-" + std::to_string(j)));
          }
          if (store.add_samples(run, rows) != 5) rc = 2;
          store.set_metric(run, "pope", "accuracy", 0.5, i);
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "writer %d: %s\n", p, e.what());
        rc = 1;
      }
      _exit(rc);
    }
    children.push_back(pid);
  }
  for (const pid_t pid : children) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto store = ResultsStore::open(db);
  REQUIRE(store.runs().size() == 1);
  const auto run = store.runs()[0].id;
  CHECK(store.sample_count(run) == 2 * kPerProcess);
  CHECK(store.finished_samples(run).size() == 2 * kPerProcess);
  CHECK(store.metrics(run).size() == 1);
}
