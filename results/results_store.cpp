// The SQLite results store (results_store.hpp). Every write runs in one BEGIN IMMEDIATE
// transaction (the busy handler then covers all lock waits in WAL mode); a failure rolls it back
// and throws an mlab::Error that names the database file and says what went wrong in words.
#include "results/results_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "core/error.hpp"
#include "results/results_schema.hpp"

namespace mlab::results {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The user-facing reason for an SQLite result code.
std::string explain(int rc, sqlite3* db) {
  const std::string detail =
      db != nullptr ? std::string(sqlite3_errmsg(db)) : std::string(sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return "disk full, or the database reached its size limit (" + detail +
             "); the batch was rolled back, rows stored before are kept";
    case SQLITE_IOERR:
      return "I/O error (" + detail + "); the batch was rolled back, rows stored before are kept";
    case SQLITE_READONLY:
      return "the database is read-only (" + detail +
             "); check the permissions of the file, its -wal/-shm files and its directory";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "the database is locked by another process (" + detail + "); the busy timeout ran out";
    case SQLITE_CANTOPEN:
      return "cannot open the database file (" + detail +
             "); does its directory exist and is it writable?";
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return "not an SQLite database, or a corrupt one (" + detail + ")";
    default:
      return detail;
  }
}

[[noreturn]] void fail(const fs::path& path, sqlite3* db, int rc, const std::string& what) {
  MLAB_FAIL(path.string(), ": ", what, ": ", explain(rc, db));
}

// A prepared statement; binds by 1-based index.
class Stmt {
 public:
  // `what` names the operation in errors ("storing 10 samples of run 3"); "" names the SQL.
  Stmt(sqlite3* db, const fs::path& path, std::string sql, std::string what = "")
      : db_(db), path_(path), sql_(std::move(sql)), what_(std::move(what)) {
    const int rc = sqlite3_prepare_v2(db, sql_.c_str(), -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) fail(path_, db_, rc, "preparing '" + sql_ + "'");
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(stmt_); }

  Stmt& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Stmt& bind(int i, double v) {
    check(sqlite3_bind_double(stmt_, i, v));
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(path_, db_, rc, what_.empty() ? "running '" + sql_ + "'" : what_);
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t int_at(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real_at(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string text_at(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return "";
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail(path_, db_, rc, "binding '" + sql_ + "'");
  }
  sqlite3* db_;
  const fs::path& path_;
  std::string sql_;
  std::string what_;
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const fs::path& path, const char* sql, const std::string& what) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
  sqlite3_free(message);  // sqlite3_errmsg(db) still has it
  if (rc != SQLITE_OK) fail(path, db, rc, what);
}

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT; on any exception rolls back and rethrows.
template <class F>
auto transaction(sqlite3* db, const fs::path& path, const std::string& what, F&& body) {
  exec(db, path, "BEGIN IMMEDIATE", what);
  try {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      exec(db, path, "COMMIT", what);
    } else {
      auto result = body();
      exec(db, path, "COMMIT", what);
      return result;
    }
  } catch (...) {
    if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

bool has_table(sqlite3* db, const fs::path& path, const std::string& name) {
  Stmt s(db, path, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  s.bind(1, name);
  return s.step();
}

std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string difference(const json& a, const json& b, const std::string& where) {
  const std::string at = where.empty() ? "/" : where;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& item : a.items()) keys.insert(item.key());
    for (const auto& item : b.items()) keys.insert(item.key());
    for (const auto& key : keys) {
      const std::string sub = where + "/" + pointer_token(key);
      if (!a.contains(key)) return sub + ": stored (absent), now " + b.at(key).dump();
      if (!b.contains(key)) return sub + ": stored " + a.at(key).dump() + ", now (absent)";
      auto d = difference(a.at(key), b.at(key), sub);
      if (!d.empty()) return d;
    }
    return "";
  }
  if (a.is_array() && b.is_array()) {
    const std::size_t n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
      auto d = difference(a[i], b[i], where + "/" + std::to_string(i));
      if (!d.empty()) return d;
    }
    if (a.size() != b.size()) {
      return str_cat(at, ": stored ", a.size(), " elements, now ", b.size());
    }
    return "";
  }
  if (a != b) return at + ": stored " + a.dump() + ", now " + b.dump();
  return "";
}

RunRow read_run(const Stmt& s) {
  RunRow r;
  r.id = s.int_at(0);
  r.info.name = s.text_at(1);
  r.info.git_sha = s.text_at(2);
  r.info.torch_version = s.text_at(3);
  r.info.device = s.text_at(4);
  r.info.threads = static_cast<int>(s.int_at(5));
  r.info.seed = s.int_at(6);
  r.info.config = json::parse(s.text_at(7));
  r.started_at = s.text_at(8);
  r.finished_at = s.text_at(9);
  return r;
}

constexpr const char* kRunColumns =
    "id, name, git_sha, torch_version, device, threads, seed, config_json, started_at, "
    "finished_at";
constexpr const char* kNow = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

// A new row of `table` (runs or train_runs: the same columns) for `info`, started now; its id.
// Call inside a transaction.
int64_t insert_run(sqlite3* db, const fs::path& path, const char* table, const RunInfo& info,
                   const std::string& what) {
  Stmt insert(db, path,
              str_cat("INSERT INTO ", table,
                      " (name, git_sha, torch_version, device, threads, seed, config_json, "
                      "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ",
                      kNow, ")"),
              what);
  insert.bind(1, info.name)
      .bind(2, info.git_sha)
      .bind(3, info.torch_version)
      .bind(4, info.device)
      .bind(5, static_cast<int64_t>(info.threads))
      .bind(6, info.seed)
      .bind(7, info.config.dump());
  insert.step();
  return sqlite3_last_insert_rowid(db);
}

// Stamps finished_at of run `run` of `table`; `noun` ("run", "training run") names it in errors.
void finish_run_in(sqlite3* db, const fs::path& path, const char* table, const char* noun,
                   int64_t run) {
  const std::string what = str_cat("finishing ", noun, " ", run);
  transaction(db, path, what, [&] {
    Stmt s(db, path, str_cat("UPDATE ", table, " SET finished_at = ", kNow, " WHERE id = ?"), what);
    s.bind(1, run).step();
    MLAB_CHECK(sqlite3_changes(db) == 1, path.string(), ": no ", noun, " with id ", run);
  });
}

// Every row of `table` (runs or train_runs), in id order.
std::vector<RunRow> list_runs(sqlite3* db, const fs::path& path, const char* table) {
  Stmt s(db, path, str_cat("SELECT ", kRunColumns, " FROM ", table, " ORDER BY id"));
  std::vector<RunRow> out;
  while (s.step()) out.push_back(read_run(s));
  return out;
}

}  // namespace

std::string first_json_difference(const json& stored, const json& now) {
  return difference(stored, now, "");
}

void ResultsStore::Closer::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

ResultsStore::ResultsStore(fs::path path, std::unique_ptr<sqlite3, Closer> db)
    : path_(std::move(path)), db_(std::move(db)) {}
ResultsStore::ResultsStore(ResultsStore&&) noexcept = default;
ResultsStore& ResultsStore::operator=(ResultsStore&&) noexcept = default;
ResultsStore::~ResultsStore() = default;

ResultsStore ResultsStore::open(const fs::path& path, const OpenOptions& options) {
  sqlite3* raw = nullptr;
  const int flags =
      (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<sqlite3, Closer> db(raw);
  if (rc != SQLITE_OK) fail(path, raw, rc, "opening the results database");
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, static_cast<int>(options.busy_timeout.count()));
  const std::string what = "opening the results database";
  if (!options.read_only && sqlite3_db_readonly(raw, "main") == 1) {
    MLAB_FAIL(path.string(), ": ", what,
              ": the file is read-only; mla-bench needs to write to "
              "it (check its permissions, or give another --db)");
  }
  exec(raw, path, "PRAGMA foreign_keys = ON", what);
  if (options.max_pages > 0) {
    exec(raw, path, str_cat("PRAGMA max_page_count = ", options.max_pages).c_str(), what);
  }
  if (!options.read_only) {
    // Switching to WAL is persistent; it is a no-op when the file is in WAL mode already. While
    // another process creates the database, SQLite may answer SQLITE_BUSY at once (deadlock
    // avoidance, no busy handler): retry until the busy timeout.
    const auto deadline = std::chrono::steady_clock::now() + options.busy_timeout;
    for (;;) {
      const int wal_rc = sqlite3_exec(raw, "PRAGMA journal_mode = WAL", nullptr, nullptr, nullptr);
      if (wal_rc == SQLITE_OK) break;
      if ((wal_rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) {
        fail(path, raw, wal_rc, "switching the results database to WAL mode");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  int64_t version = kSchemaVersion;
  auto check_version = [&] {
    Stmt s(raw, path, "SELECT max(version) FROM schema_version");
    MLAB_CHECK(s.step(), path.string(), ": ", what, ": schema_version is empty");
    version = s.int_at(0);
    MLAB_CHECK(version <= kSchemaVersion, path.string(), ": ", what,
               ": the database has schema version ", version, " but this mla-bench reads ",
               "versions up to ", kSchemaVersion, "; use a newer mla-bench or another --db");
    MLAB_CHECK(version >= 1, path.string(), ": ", what, ": bad schema version ", version);
  };
  // Schema migrations (schema.sql's version history), run inside the open transaction.
  auto migrate = [&] {
    if (version < 2) {
      for (const char* column :
           {"prompt_tokens INTEGER NOT NULL DEFAULT 0", "new_tokens INTEGER NOT NULL DEFAULT 0",
            "kv_tokens INTEGER NOT NULL DEFAULT 0", "prefill_s REAL NOT NULL DEFAULT 0",
            "decode_s REAL NOT NULL DEFAULT 0"}) {
        exec(raw, path, str_cat("ALTER TABLE samples ADD COLUMN ", column).c_str(),
             "migrating the results database from schema version 1 to 2");
      }
    }
    if (version < 3) {
      Stmt has(raw, path,
               "SELECT count(*) FROM pragma_table_info('samples') WHERE name = 'kv_bytes_peak'");
      has.step();
      if (has.int_at(0) == 0) {
        exec(raw, path, "ALTER TABLE samples ADD COLUMN kv_bytes_peak INTEGER NOT NULL DEFAULT 0",
             "migrating the results database to schema version 3");
      }
    }
    if (version < 4) {
      // Tables added since: schema.sql creates every table IF NOT EXISTS; its version row is
      // dropped again (one row stays).
      exec(raw, path, detail::kSchemaSql, "migrating the results database to schema version 4");
      exec(raw, path,
           "DELETE FROM schema_version WHERE rowid <> (SELECT min(rowid) FROM schema_version)",
           "migrating the results database to schema version 4");
    }
    if (version < kSchemaVersion) {
      exec(raw, path, str_cat("UPDATE schema_version SET version = ", kSchemaVersion).c_str(),
           "migrating the results database");
      version = kSchemaVersion;
    }
  };
  auto check_ours = [&] {
    Stmt any(raw, path, "SELECT count(*) FROM sqlite_master");
    any.step();
    MLAB_CHECK(any.int_at(0) == 0, path.string(), ": ", what,
               ": not an MLA-Bench results database (it has tables but no schema_version)");
  };

  if (options.read_only) {
    if (!has_table(raw, path, "schema_version")) check_ours();
    MLAB_CHECK(has_table(raw, path, "schema_version"), path.string(), ": ", what,
               ": the database has no tables");
    check_version();
  } else {
    transaction(raw, path, what, [&] {
      if (has_table(raw, path, "schema_version")) {
        check_version();
        migrate();
      } else {
        check_ours();
        exec(raw, path, detail::kSchemaSql, "creating the results schema");
      }
    });
  }
  ResultsStore store(path, std::move(db));
  store.version_ = static_cast<int>(version);
  return store;
}

int64_t ResultsStore::begin_run(const RunInfo& info) {
  MLAB_CHECK(!info.name.empty(), path_.string(), ": a run needs a name");
  const std::string what = "starting run '" + info.name + "'";
  return transaction(db_.get(), path_, what, [&]() -> int64_t {
    Stmt find(db_.get(), path_, str_cat("SELECT ", kRunColumns, " FROM runs WHERE name = ?"));
    find.bind(1, info.name);
    if (find.step()) {
      const RunRow stored = read_run(find);
      json stored_config = stored.info.config;
      if (stored_config.is_object()) {
        for (const auto& [key, value] : info.legacy_defaults.items()) {
          if (!stored_config.contains(key)) stored_config[key] = value;
        }
      }
      std::string diff = first_json_difference(stored_config, info.config);
      if (diff.empty() && stored.info.seed != info.seed) {
        diff = str_cat("seed: stored ", stored.info.seed, ", now ", info.seed);
      }
      MLAB_CHECK(diff.empty(), path_.string(), ": run '", info.name,
                 "' exists with a different config, so it cannot be resumed (", diff,
                 "); give the run another name or use the same config");
      return stored.id;
    }
    return insert_run(db_.get(), path_, "runs", info, what);
  });
}

std::optional<int64_t> ResultsStore::find_run(const std::string& name) const {
  Stmt s(db_.get(), path_, "SELECT id FROM runs WHERE name = ?");
  s.bind(1, name);
  if (!s.step()) return std::nullopt;
  return s.int_at(0);
}

int64_t ResultsStore::require_run(const std::string& name) const {
  if (auto id = find_run(name)) return *id;
  std::string known;
  for (const auto& r : runs()) known += (known.empty() ? "" : ", ") + r.info.name;
  MLAB_FAIL(path_.string(), ": no run named '", name, "' (runs: ", known.empty() ? "none" : known,
            ")");
}

void ResultsStore::finish_run(int64_t run) { finish_run_in(db_.get(), path_, "runs", "run", run); }

std::vector<RunRow> ResultsStore::runs() const { return list_runs(db_.get(), path_, "runs"); }

RunRow ResultsStore::run(int64_t run) const {
  Stmt s(db_.get(), path_, str_cat("SELECT ", kRunColumns, " FROM runs WHERE id = ?"));
  s.bind(1, run);
  MLAB_CHECK(s.step(), path_.string(), ": no run with id ", run);
  return read_run(s);
}

std::set<std::pair<std::string, std::string>> ResultsStore::finished_samples(int64_t run) const {
  Stmt s(db_.get(), path_, "SELECT task, sample_id FROM samples WHERE run_id = ?");
  s.bind(1, run);
  std::set<std::pair<std::string, std::string>> out;
  while (s.step()) out.emplace(s.text_at(0), s.text_at(1));
  return out;
}

int64_t ResultsStore::add_samples(int64_t run, const std::vector<SampleRow>& rows) {
  if (rows.empty()) return 0;
  const std::string what = str_cat("storing ", rows.size(), " samples of run ", run);
  return transaction(db_.get(), path_, what, [&]() -> int64_t {
    Stmt insert(
        db_.get(), path_,
        "INSERT OR IGNORE INTO samples (run_id, task, sample_id, prediction, "
        "metrics_json, latency_s, kv_bytes, error, prompt_tokens, new_tokens, kv_tokens, "
        "prefill_s, decode_s, kv_bytes_peak) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        what);
    int64_t added = 0;
    for (const auto& row : rows) {
      insert.bind(1, run)
          .bind(2, row.task)
          .bind(3, row.sample_id)
          .bind(4, row.prediction)
          .bind(5, row.metrics.dump())
          .bind(6, row.latency_s)
          .bind(7, row.kv_bytes)
          .bind(8, row.error)
          .bind(9, row.prompt_tokens)
          .bind(10, row.new_tokens)
          .bind(11, row.kv_tokens)
          .bind(12, row.prefill_s)
          .bind(13, row.decode_s)
          .bind(14, row.kv_bytes_peak);
      insert.step();
      added += sqlite3_changes(db_.get());
      insert.reset();
    }
    return added;
  });
}

std::vector<SampleRow> ResultsStore::samples(int64_t run, const std::string& task) const {
  // A version-1 file opened read-only has no speed columns: they read as 0.
  const char* v2 = version_ >= 2 ? "prompt_tokens, new_tokens, kv_tokens, prefill_s, decode_s"
                                 : "0, 0, 0, 0.0, 0.0";
  const char* v3 = version_ >= 3 ? ", kv_bytes_peak" : ", 0";
  Stmt s(db_.get(), path_,
         str_cat("SELECT task, sample_id, prediction, metrics_json, latency_s, kv_bytes, error, ",
                 v2, v3, " FROM samples WHERE run_id = ?1 AND (?2 = '' OR task = ?2) ORDER BY id"));
  s.bind(1, run).bind(2, task);
  std::vector<SampleRow> out;
  while (s.step()) {
    SampleRow r;
    r.task = s.text_at(0);
    r.sample_id = s.text_at(1);
    r.prediction = s.text_at(2);
    r.metrics = json::parse(s.text_at(3));
    r.latency_s = s.real_at(4);
    r.kv_bytes = s.int_at(5);
    r.error = s.text_at(6);
    r.prompt_tokens = s.int_at(7);
    r.new_tokens = s.int_at(8);
    r.kv_tokens = s.int_at(9);
    r.prefill_s = s.real_at(10);
    r.decode_s = s.real_at(11);
    r.kv_bytes_peak = s.int_at(12);
    out.push_back(std::move(r));
  }
  return out;
}

int64_t ResultsStore::sample_count(int64_t run, const std::string& task) const {
  Stmt s(db_.get(), path_,
         "SELECT count(*) FROM samples WHERE run_id = ?1 AND (?2 = '' OR task = ?2)");
  s.bind(1, run).bind(2, task).step();
  return s.int_at(0);
}

void ResultsStore::set_metric(int64_t run, const std::string& task, const std::string& metric,
                              double value, int64_t n) {
  const std::string what = str_cat("storing metric ", task, "/", metric, " of run ", run);
  transaction(db_.get(), path_, what, [&] {
    Stmt s(db_.get(), path_,
           "INSERT INTO metrics (run_id, task, metric, value, n) VALUES (?, ?, ?, ?, ?) "
           "ON CONFLICT (run_id, task, metric) DO UPDATE SET value = excluded.value, "
           "n = excluded.n",
           what);
    s.bind(1, run).bind(2, task).bind(3, metric).bind(4, value).bind(5, n).step();
  });
}

std::vector<MetricRow> ResultsStore::metrics(int64_t run) const {
  Stmt s(db_.get(), path_,
         "SELECT task, metric, value, n FROM metrics WHERE run_id = ? ORDER BY task, metric");
  s.bind(1, run);
  std::vector<MetricRow> out;
  while (s.step()) out.push_back({s.text_at(0), s.text_at(1), s.real_at(2), s.int_at(3)});
  return out;
}

void ResultsStore::set_kv_memory(int64_t run, const KvMemoryRow& row) {
  const std::string what = str_cat("storing KV memory of ", row.method, " in run ", run);
  transaction(db_.get(), path_, what, [&] {
    Stmt s(
        db_.get(), path_,
        "INSERT INTO kv_memory (run_id, method, bytes_per_token_layer_measured, analytic, "
        "vs_original, vs_mha_equivalent) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, method) "
        "DO UPDATE SET bytes_per_token_layer_measured = excluded.bytes_per_token_layer_measured, "
        "analytic = excluded.analytic, vs_original = excluded.vs_original, "
        "vs_mha_equivalent = excluded.vs_mha_equivalent",
        what);
    s.bind(1, run)
        .bind(2, row.method)
        .bind(3, row.bytes_per_token_layer_measured)
        .bind(4, row.analytic)
        .bind(5, row.vs_original)
        .bind(6, row.vs_mha_equivalent)
        .step();
  });
}

std::vector<KvMemoryRow> ResultsStore::kv_memory(int64_t run) const {
  Stmt s(db_.get(), path_,
         "SELECT method, bytes_per_token_layer_measured, analytic, vs_original, "
         "vs_mha_equivalent FROM kv_memory WHERE run_id = ? ORDER BY method");
  s.bind(1, run);
  std::vector<KvMemoryRow> out;
  while (s.step()) {
    out.push_back({s.text_at(0), s.real_at(1), s.real_at(2), s.real_at(3), s.real_at(4)});
  }
  return out;
}

int64_t ResultsStore::begin_train_run(const RunInfo& info, int64_t first_step) {
  MLAB_CHECK(!info.name.empty(), path_.string(), ": a training run needs a name");
  MLAB_CHECK(first_step >= 0, path_.string(), ": bad first step ", first_step);
  const std::string what = "starting training run '" + info.name + "'";
  return transaction(db_.get(), path_, what, [&]() -> int64_t {
    Stmt find(db_.get(), path_, "SELECT id FROM train_runs WHERE name = ?", what);
    find.bind(1, info.name);
    int64_t id = 0;
    if (find.step()) {
      id = find.int_at(0);
      Stmt cut(db_.get(), path_, "DELETE FROM train_steps WHERE run_id = ? AND step >= ?", what);
      cut.bind(1, id).bind(2, first_step).step();
      if (first_step == 0) {
        Stmt renew(db_.get(), path_,
                   str_cat("UPDATE train_runs SET git_sha = ?, torch_version = ?, device = ?, "
                           "threads = ?, seed = ?, config_json = ?, started_at = ",
                           kNow, ", finished_at = NULL WHERE id = ?"),
                   what);
        renew.bind(1, info.git_sha)
            .bind(2, info.torch_version)
            .bind(3, info.device)
            .bind(4, static_cast<int64_t>(info.threads))
            .bind(5, info.seed)
            .bind(6, info.config.dump())
            .bind(7, id)
            .step();
      } else {
        Stmt reopen(db_.get(), path_, "UPDATE train_runs SET finished_at = NULL WHERE id = ?",
                    what);
        reopen.bind(1, id).step();
      }
      return id;
    }
    return insert_run(db_.get(), path_, "train_runs", info, what);
  });
}

void ResultsStore::add_train_step(int64_t run, const TrainStepRow& row) {
  const std::string what = str_cat("storing step ", row.step, " of training run ", run);
  transaction(db_.get(), path_, what, [&] {
    Stmt s(db_.get(), path_,
           "INSERT OR REPLACE INTO train_steps (run_id, step, loss, lr, grad_norm, tokens, "
           "supervised, tokens_per_s, elapsed_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
           what);
    s.bind(1, run)
        .bind(2, row.step)
        .bind(3, row.loss)
        .bind(4, row.lr)
        .bind(5, row.grad_norm)
        .bind(6, row.tokens)
        .bind(7, row.supervised)
        .bind(8, row.tokens_per_s)
        .bind(9, row.elapsed_s)
        .step();
  });
}

void ResultsStore::finish_train_run(int64_t run) {
  finish_run_in(db_.get(), path_, "train_runs", "training run", run);
}

std::vector<RunRow> ResultsStore::train_runs() const {
  if (version_ < 4) return {};
  return list_runs(db_.get(), path_, "train_runs");
}

std::vector<TrainStepRow> ResultsStore::train_steps(int64_t run) const {
  if (version_ < 4) return {};
  Stmt s(db_.get(), path_,
         "SELECT step, loss, lr, grad_norm, tokens, supervised, tokens_per_s, elapsed_s FROM "
         "train_steps WHERE run_id = ? ORDER BY step");
  s.bind(1, run);
  std::vector<TrainStepRow> out;
  while (s.step()) {
    out.push_back({s.int_at(0), s.real_at(1), s.real_at(2), s.real_at(3), s.int_at(4), s.int_at(5),
                   s.real_at(6), s.real_at(7)});
  }
  return out;
}

}  // namespace mlab::results
