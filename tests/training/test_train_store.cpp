// Training runs in the results store (issue F8, "logging loss / lr / grad norm / tokens per second
// per step to the results store (the dashboard draws the loss curves)"): ResultsStore's
// train_runs / train_steps (resume truncation, migration of a version-3 file), the dashboard's
// loss curve, and `mla-bench train --db` through the binary on the tiny stage-1 LLaVA: every step
// lands in the database equal to train_log.jsonl, a kill-free --stop-after + --resume leaves no
// duplicate step, `mla-bench dashboard` draws the curve; and --batch-size 2 (one padded 2-row
// micro-batch) gives the losses of --batch-size 1 --grad-accum 2 on the same records.
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "results/dashboard.hpp"
#include "results/results_store.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"
#include "tests/support/test_files.hpp"
#include "tests/training/train_cli_support.hpp"

namespace {

using namespace mlab;
namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kModel = test::data_dir() / "authors" / "llava" / "stage1_mkl";

results::RunInfo train_info(const std::string& name, double lr = 1e-3) {
  results::RunInfo info;
  info.name = name;
  info.device = "cpu";
  info.seed = 42;
  info.config = {{"kind", "train"}, {"lr", lr}};
  return info;
}

results::TrainStepRow step_row(int64_t step, double loss) {
  return {.step = step, .loss = loss, .lr = 1e-4, .grad_norm = 0.5, .tokens = 100,
          .supervised = 10, .tokens_per_s = 1000, .elapsed_s = 0.1 * static_cast<double>(step + 1)};
}

void raw_exec(const fs::path& db, const std::string& sql) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  char* message = nullptr;
  const int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &message);
  INFO((message ? message : ""));
  sqlite3_free(message);
  sqlite3_close(raw);
  REQUIRE(rc == SQLITE_OK);
}

int64_t raw_count(const fs::path& db, const std::string& sql) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  const int64_t v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
  return v;
}

// Six LLaVA-format records over the test images, answers of different lengths (so a 2-row batch
// is padded).
fs::path write_dataset(const fs::path& dir) {
  return test::write_llava_dataset(
      dir, {{"What is in the picture?", "A small square."},
            {"Describe the colours.", "Grey, mostly, with a lighter band along the top edge."},
            {"Is it transparent?", "Partly."},
            {"How tall is it?", "Taller than it is wide, about twice as tall."},
            {"Name a shape you see.", "A rectangle."},
            {"What would you call it?", "A test image used by the unit tests of the trainer."}});
}

std::string train_args(const fs::path& data, const fs::path& out, int64_t steps, int64_t batch,
                       int64_t accum, const fs::path& db) {
  return test::train_command(1, kModel, data, out) + " --steps " + std::to_string(steps) +
         " --batch-size " + std::to_string(batch) + " --grad-accum " + std::to_string(accum) +
         " --lr 1e-3 --db " + db.string();
}

}  // namespace

TEST_CASE("results store: training runs and steps, resume truncation", "[training][store]") {
  const fs::path db = test::scratch_dir("train_store") / "r.sqlite";
  auto store = results::ResultsStore::open(db);
  const int64_t run = store.begin_train_run(train_info("train:/a"), 0);
  for (int64_t t = 0; t < 5; ++t) store.add_train_step(run, step_row(t, 5.0 - t));
  auto steps = store.train_steps(run);
  REQUIRE(steps.size() == 5);
  CHECK(steps[3].step == 3);
  CHECK(steps[3].loss == 2.0);
  CHECK(steps[3].tokens == 100);
  CHECK(steps[3].supervised == 10);
  CHECK(steps[3].tokens_per_s == 1000);
  CHECK(steps[3].elapsed_s == Approx(0.4));
  store.finish_train_run(run);
  CHECK(!store.train_runs().at(0).finished_at.empty());
  // Eval's runs are another table: reports and regress never see a training run.
  CHECK(store.runs().empty());

  // --resume from step 3: steps 3.. deleted, the same run, unfinished again.
  CHECK(store.begin_train_run(train_info("train:/a"), 3) == run);
  CHECK(store.train_steps(run).size() == 3);
  CHECK(store.train_runs().at(0).finished_at.empty());
  store.add_train_step(run, step_row(3, 1.5));
  store.add_train_step(run, step_row(3, 1.25));  // a step written twice: replaced
  steps = store.train_steps(run);
  REQUIRE(steps.size() == 4);
  CHECK(steps.back().loss == 1.25);
  // A fresh run of that name (step 0): every step goes, the info is the new one.
  CHECK(store.begin_train_run(train_info("train:/a", 5e-4), 0) == run);
  CHECK(store.train_steps(run).empty());
  CHECK(store.train_runs().at(0).info.config.at("lr") == 5e-4);
  const int64_t other = store.begin_train_run(train_info("train:/b"), 0);
  CHECK(other != run);
  CHECK(store.train_runs().size() == 2);
  CHECK_THROWS_WITH(store.finish_train_run(99), Catch::Contains("no training run with id 99"));
}

TEST_CASE("results store: a version-3 database gains the training tables",
          "[training][store]") {
  const fs::path db = test::scratch_dir("train_store") / "v3.sqlite";
  { results::ResultsStore::open(db); }
  raw_exec(db, "DROP TABLE train_steps; DROP TABLE train_runs; "
               "UPDATE schema_version SET version = 3;");
  {
    results::OpenOptions ro;
    ro.read_only = true;
    auto old = results::ResultsStore::open(db, ro);  // read-only: no tables, no training runs
    CHECK(old.train_runs().empty());
  }
  auto store = results::ResultsStore::open(db);  // writable: migrated
  const int64_t run = store.begin_train_run(train_info("train:/m"), 0);
  store.add_train_step(run, step_row(0, 1.0));
  CHECK(store.train_steps(run).size() == 1);
  CHECK(raw_count(db, "SELECT count(*) FROM schema_version") == 1);
  CHECK(raw_count(db, "SELECT max(version) FROM schema_version") == results::kSchemaVersion);
}

TEST_CASE("dashboard: a loss curve per training run", "[training][store][dashboard]") {
  const fs::path db = test::scratch_dir("train_store") / "d.sqlite";
  {
    auto store = results::ResultsStore::open(db);
    const int64_t a = store.begin_train_run(train_info("train:/first <run>"), 0);
    for (int64_t t = 0; t < 20; ++t) {
      store.add_train_step(a, step_row(t, 3.0 * std::exp(-0.1 * static_cast<double>(t))));
    }
    store.finish_train_run(a);
    store.begin_train_run(train_info("train:/empty"), 0);
  }
  const auto data = results::DashboardData::load(db);
  REQUIRE(data.train_runs.size() == 2);
  CHECK(data.runs.empty());
  const std::string html = results::render_dashboard(data, {});
  // No eval run: the page is the training section, not "There are no runs".
  CHECK(html.find("There are no runs") == std::string::npos);
  CHECK(html.find("<section id=\"training\">") != std::string::npos);
  const auto svg = html.find("<svg class=\"loss-curve\" id=\"loss-1\"");
  REQUIRE(svg != std::string::npos);
  const auto poly = html.find("<polyline", svg);
  const auto end = html.find("</svg>", svg);
  REQUIRE(poly < end);
  const auto points_at = html.find("points=\"", poly) + 8;
  const std::string points = html.substr(points_at, html.find('"', points_at) - points_at);
  CHECK(std::count(points.begin(), points.end(), ',') == 20);
  char last[64];
  std::snprintf(last, sizeof last, "%.4f", 3.0 * std::exp(-1.9));  // the loss of step 19
  CHECK(html.find("train:/first &lt;run&gt;: loss <b>" + std::string(last) + "</b> at step 19") !=
        std::string::npos);
  CHECK(html.find("train:/empty: no steps stored yet") != std::string::npos);
  CHECK(html.find("id=\"loss-2\"") == std::string::npos);
}

TEST_CASE("mla-bench train --db: steps in the store equal train_log.jsonl, --resume adds no "
          "duplicates, the dashboard draws the curve",
          "[training][store]") {
  const fs::path dir = test::scratch_dir("train_store_run");
  const fs::path data = write_dataset(dir / "data");
  const fs::path db = dir / "results.sqlite";
  const fs::path out = dir / "out";
  auto r = test::run_mla_bench(train_args(data, out, 6, 2, 2, db) +
                               " --save-every 1 --stop-after 3");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  r = test::run_mla_bench(train_args(data, out, 6, 2, 2, db) + " --resume");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("resumed from") != std::string::npos);

  const auto log = test::read_train_log(out);
  REQUIRE(log.size() == 6);
  results::OpenOptions ro;
  ro.read_only = true;
  auto store = results::ResultsStore::open(db, ro);
  const auto runs = store.train_runs();
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].info.name == "train:" + fs::absolute(out).lexically_normal().string());
  CHECK(!runs[0].finished_at.empty());
  CHECK(runs[0].info.config.at("batch_size") == 2);
  const auto steps = store.train_steps(runs[0].id);
  REQUIRE(steps.size() == 6);
  CHECK(raw_count(db, "SELECT count(*) FROM train_steps") == 6);
  for (std::size_t t = 0; t < steps.size(); ++t) {
    INFO("step " << t);
    CHECK(steps[t].step == static_cast<int64_t>(t));
    CHECK(steps[t].loss == log[t].at("loss").get<double>());
    CHECK(steps[t].lr == log[t].at("lr").get<double>());
    CHECK(steps[t].grad_norm == log[t].at("grad_norm").get<double>());
    CHECK(steps[t].tokens == log[t].at("tokens").get<int64_t>());
    CHECK(steps[t].supervised == log[t].at("supervised").get<int64_t>());
    CHECK(steps[t].elapsed_s == log[t].at("elapsed_s").get<double>());
    CHECK(steps[t].tokens_per_s > 0);
  }

  const fs::path site = dir / "site";
  r = test::run_mla_bench("dashboard --db " + db.string() + " --out " + site.string());
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const std::string html = test::read_file(site / "index.html");
  CHECK(html.find("<svg class=\"loss-curve\" id=\"loss-" + std::to_string(runs[0].id) + "\"") !=
        std::string::npos);

  // Without --db: no database.
  r = test::run_mla_bench(test::train_command(1, kModel, data, dir / "out_nodb") + " --steps 1");
  REQUIRE(r.code == 0);
  CHECK(r.out.find("training run") == std::string::npos);
  CHECK(fs::exists(dir / "out_nodb" / "train_log.jsonl"));
}

TEST_CASE("mla-bench train --batch-size 2: one padded 2-row micro-batch, the losses of 1 x 2",
          "[training][store]") {
  const fs::path dir = test::scratch_dir("train_store_batch");
  const fs::path data = write_dataset(dir / "data");
  const fs::path db = dir / "results.sqlite";
  auto r = test::run_mla_bench(train_args(data, dir / "b2", 3, 2, 1, db));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  r = test::run_mla_bench(train_args(data, dir / "b1a2", 3, 1, 2, db));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto padded = test::read_train_log(dir / "b2");
  const auto rows = test::read_train_log(dir / "b1a2");
  REQUIRE(padded.size() == 3);
  REQUIRE(rows.size() == 3);
  bool any_padding = false;
  for (std::size_t t = 0; t < 3; ++t) {
    INFO("step " << t);
    const double a = padded[t].at("loss").get<double>(), b = rows[t].at("loss").get<double>();
    CHECK(std::fabs(a - b) <= 1e-5 * std::fabs(b));
    const double ga = padded[t].at("grad_norm").get<double>();
    const double gb = rows[t].at("grad_norm").get<double>();
    CHECK(std::fabs(ga - gb) <= 1e-4 * std::fabs(gb));
    CHECK(padded[t].at("supervised") == rows[t].at("supervised"));
    // tokens count the padding: 2 x the longer row >= the two rows' lengths.
    CHECK(padded[t].at("tokens").get<int64_t>() >= rows[t].at("tokens").get<int64_t>());
    any_padding = any_padding ||
                  padded[t].at("tokens").get<int64_t>() > rows[t].at("tokens").get<int64_t>();
  }
  CHECK(any_padding);
  auto store = results::ResultsStore::open(db);
  CHECK(store.train_runs().size() == 2);
}
