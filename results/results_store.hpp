#pragma once
// mlab::results::ResultsStore: the SQLite results store of DESIGN.md §3 (schema in
// results/schema.sql). One store per process (or per rank); several processes may write to one
// database at once (WAL, busy timeout, one IMMEDIATE transaction per call). Every failure is an
// mlab::Error naming the database file: a newer schema, a read-only or locked file, a full disk,
// an I/O error. A failed write is rolled back; rows committed before are never lost.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

struct sqlite3;

namespace mlab::results {

// The schema version this build writes and reads (schema_version.version).
inline constexpr int kSchemaVersion = 4;

// What a run is: stored once, when the run is created.
struct RunInfo {
  std::string name;  // unique in the database; a rerun with the same name resumes
  std::string git_sha;
  std::string torch_version;
  std::string device;
  int threads = 0;
  int64_t seed = 0;
  nlohmann::json config = nlohmann::json::object();  // the fully resolved config
  // Not stored. Config keys added after runs had been stored, each with the value those older
  // runs used: a stored config without such a key reads as holding that value when a resume
  // compares configs (as a column added by a migration reads its DEFAULT), so old runs resume.
  nlohmann::json legacy_defaults = nlohmann::json::object();
};

// A stored run.
struct RunRow {
  int64_t id = 0;
  RunInfo info;
  std::string started_at;   // ISO 8601 UTC
  std::string finished_at;  // "" while running (or after a crash)
};

// One scored sample.
struct SampleRow {
  std::string task;
  std::string sample_id;
  std::string prediction;
  nlohmann::json metrics = nlohmann::json::object();  // per-sample metric values
  double latency_s = 0;
  int64_t kv_bytes = 0;  // the sample's share of its batch's KV cache
  std::string error;     // non-empty: the sample failed with this message
  // The sample's share of its batch's work (schema version 2; 0 in rows migrated from 1).
  int64_t prompt_tokens = 0;  // prefilled tokens, padding included
  int64_t new_tokens = 0;     // decode positions computed
  int64_t kv_bytes_peak = 0;  // share of the batch's largest KV cache (version 3; 0 before)
  int64_t kv_tokens = 0;      // token slots the KV cache held at the end
  double prefill_s = 0;
  double decode_s = 0;
};

struct MetricRow {
  std::string task;
  std::string metric;
  double value = 0;
  int64_t n = 0;
};

struct KvMemoryRow {
  std::string method;
  double bytes_per_token_layer_measured = 0;
  double analytic = 0;
  double vs_original = 0;
  double vs_mha_equivalent = 0;
};

// One optimizer step of a `mla-bench train` run (schema version 4; train_log.jsonl's fields).
struct TrainStepRow {
  int64_t step = 0;         // 0-based optimizer step
  double loss = 0;          // mean cross entropy over the step's supervised tokens
  double lr = 0;            // the LR the step used
  double grad_norm = 0;     // global L2 norm before clipping
  int64_t tokens = 0;       // input tokens, padding included
  int64_t supervised = 0;   // tokens with a label
  double tokens_per_s = 0;  // tokens / the step's wall time
  double elapsed_s = 0;     // since the (resumed) process started training
};

struct OpenOptions {
  // How long a write waits for another process's transaction before failing as "locked".
  std::chrono::milliseconds busy_timeout{30000};
  // Open without writing (reports, dashboards); every write then fails as read-only.
  bool read_only = false;
  // > 0: PRAGMA max_page_count for this connection (tests simulate a full disk with it).
  int64_t max_pages = 0;
};

class ResultsStore {
 public:
  // Opens `db`, creating it (and its schema) when absent; a writable open migrates a database of
  // an older schema version in one transaction (its rows are kept). Throws mlab::Error naming the
  // file for a database with a newer schema_version (both versions in the message), a file that is
  // not an MLA-Bench results database, a read-only file (unless options.read_only), a locked one.
  static ResultsStore open(const std::filesystem::path& db, const OpenOptions& options = {});

  ResultsStore(ResultsStore&&) noexcept;
  ResultsStore& operator=(ResultsStore&&) noexcept;
  ~ResultsStore();

  const std::filesystem::path& path() const { return path_; }

  // A new run, or the existing run of that name when its config and seed match (resume; keys of
  // info.legacy_defaults absent from the stored config count as holding their default).
  // A different config throws, naming the first differing JSON path and both values.
  int64_t begin_run(const RunInfo& info);
  // The run of that name, if any.
  std::optional<int64_t> find_run(const std::string& name) const;
  // The run of that name; throws mlab::Error "<db>: no run named 'x' (runs: a, b)" otherwise.
  int64_t require_run(const std::string& name) const;
  // Sets finished_at to now.
  void finish_run(int64_t run);
  std::vector<RunRow> runs() const;
  RunRow run(int64_t run) const;

  // (task, sample_id) of every stored sample of the run (failed samples included).
  std::set<std::pair<std::string, std::string>> finished_samples(int64_t run) const;
  // Stores a batch in one transaction; a sample already stored is ignored (never stored twice).
  // Returns how many rows were new.
  int64_t add_samples(int64_t run, const std::vector<SampleRow>& rows);
  // The run's samples in insertion order; task "" means all tasks.
  std::vector<SampleRow> samples(int64_t run, const std::string& task = "") const;
  // How many samples of the run are stored (failed ones included); task "" means all tasks.
  int64_t sample_count(int64_t run, const std::string& task = "") const;

  // Metrics and KV memory are derived values: setting one again replaces it.
  void set_metric(int64_t run, const std::string& task, const std::string& metric, double value,
                  int64_t n);
  std::vector<MetricRow> metrics(int64_t run) const;
  void set_kv_memory(int64_t run, const KvMemoryRow& row);
  std::vector<KvMemoryRow> kv_memory(int64_t run) const;

  // Training runs (`mla-bench train`, schema version 4), apart from the eval runs above.
  // The run named info.name, created when absent; an existing one is taken over: its steps from
  // `first_step` on are deleted (a resumed run writes them again; 0: a fresh run of that name,
  // whose info and started_at are replaced too) and finished_at is cleared. One transaction.
  int64_t begin_train_run(const RunInfo& info, int64_t first_step);
  // Stores one step in its own transaction (a step stored again replaces the row), so a killed
  // run loses at most the step in progress.
  void add_train_step(int64_t run, const TrainStepRow& row);
  // Sets the training run's finished_at to now.
  void finish_train_run(int64_t run);
  // Every training run by id; the steps of one by step. Empty for a database of an older schema
  // opened read-only.
  std::vector<RunRow> train_runs() const;
  std::vector<TrainStepRow> train_steps(int64_t run) const;

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  ResultsStore(std::filesystem::path path, std::unique_ptr<sqlite3, Closer> db);

  std::filesystem::path path_;
  std::unique_ptr<sqlite3, Closer> db_;
  int version_ = kSchemaVersion;  // of the file (older only when opened read-only)
};

// "" when equal, else the first difference as "<JSON pointer>: stored <a>, now <b>" (exposed for
// tests and the runner's messages).
std::string first_json_difference(const nlohmann::json& stored, const nlohmann::json& now);

}  // namespace mlab::results
