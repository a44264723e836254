// The static dashboard (results/dashboard.hpp, F5): regressions between consecutive runs of a
// series, a well-formed self-contained page (no scripts, no URLs), escaping of database text,
// unfinished runs flagged, runs/<id>.json written, the empty database, and the number helpers.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "results/dashboard.hpp"
#include "results/perf_metrics.hpp"
#include "results/results_store.hpp"
#include "tests/results/dashboard_fixture.hpp"
#include "tests/results/html_check.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/test_files.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using mlab::results::DashboardData;
using mlab::results::DashboardRenderOptions;
using mlab::results::DashboardTask;
using mlab::results::KvMemoryRow;
using mlab::results::ResultsStore;
using mlab::results::RunInfo;

namespace {

constexpr const char* kOddName = "mla <b>&\"quoted\" 'run'";
constexpr const char* kOddNameEscaped = "mla &lt;b&gt;&amp;&quot;quoted&quot; &#39;run&#39;";

RunInfo info(const std::string& name, const std::string& methods, const std::string& series = "") {
  RunInfo i;
  i.name = name;
  i.git_sha = "0123456789abcdef";
  i.torch_version = "2.11.0";
  i.device = "cpu";
  i.threads = 2;
  i.seed = 7;
  i.config = {{"model", "/models/tiny-llava/"},
              {"family", "llava"},
              {"dtype", "float32"},
              {"methods", methods},
              {"tasks", {"pope", "ai2d"}},
              {"limit", 20},
              {"batch_size", 4},
              {"datasets", "/data"}};
  if (!series.empty()) i.config["series"] = series;
  return i;
}

DashboardRenderOptions render_options() {
  DashboardRenderOptions o;
  o.title = "Test <dashboard>";
  o.tolerance = 0.02;
  o.tasks["pope"] =
      DashboardTask{"pope_f1_score", 100, {{"pope_f1_score", 1}, {"pope_accuracy", 1}}};
  o.tasks["ai2d"] = DashboardTask{"exact_match", 100, {{"exact_match", 1}}};
  return o;
}

struct Ids {
  int64_t a1, a2, a3, b1, b2, odd;
};

// Series A (tiny-llava / full / float32): three runs, the second drops pope_f1_score by 0.10.
// Series "nightly <mla> & co" (config "series"): two runs, the second unfinished, and a third
// run whose name needs escaping.
Ids populate(const fs::path& db) {
  auto store = ResultsStore::open(db);
  Ids ids{};
  const auto add = [&](const RunInfo& i, double f1, double em, double decode, double kv,
                       bool finish) {
    const int64_t run = store.begin_run(i);
    store.set_metric(run, "pope", "pope_f1_score", f1, 100);
    store.set_metric(run, "pope", "pope_accuracy", 0.9, 100);
    store.set_metric(run, "ai2d", "exact_match", em, 50);
    store.set_metric(run, "pope", std::string(mlab::results::kDecodeTokensPerS), decode, 100);
    store.set_metric(run, "pope", std::string(mlab::results::kKvBytesPerToken), kv * 4, 100);
    KvMemoryRow k;
    k.method = i.config.at("methods").get<std::string>();
    k.bytes_per_token_layer_measured = kv;
    k.analytic = kv;
    k.vs_original = kv / 4096;
    k.vs_mha_equivalent = kv / 4096;
    store.set_kv_memory(run, k);
    if (finish) store.finish_run(run);
    return run;
  };
  ids.a1 = add(info("a-1", "full"), 0.80, 0.50, 100, 4096, true);
  ids.a2 = add(info("a-2", "full"), 0.70, 0.51, 99, 4096, true);  // f1 -0.10: regression
  ids.b1 = add(info("b-1", "mha2mla:d_kv=16", "nightly <mla> & co"), 0.75, 0.45, 120, 640, true);
  ids.a3 = add(info("a-3", "full"), 0.71, 0.505, 100.5, 4096, true);  // -0.005: within tolerance
  ids.b2 = add(info("b-2", "mha2mla:d_kv=16", "nightly <mla> & co"), 0.76, 0.46, 121, 640, false);
  ids.odd = add(info(kOddName, "h2o:budget=0.5"), 0.6, 0.4, 110, 2048, true);
  return ids;
}

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) {
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("dashboard: regressions are drops beyond tolerance vs the previous run of the series",
          "[results][dashboard]") {
  const auto dir = mlab::test::scratch_dir("dashboard_regressions");
  const Ids ids = populate(dir / "r.sqlite");
  const auto data = DashboardData::load(dir / "r.sqlite");
  REQUIRE(data.runs.size() == 6);
  CHECK(data.runs[0].series == "tiny-llava / full / float32");
  CHECK(data.runs[2].series == "nightly <mla> & co");
  CHECK(mlab::results::series_count(data) == 3);

  const auto regs = mlab::results::find_regressions(data, render_options());
  REQUIRE(regs.size() == 1);
  CHECK(regs[0].series == "tiny-llava / full / float32");
  CHECK(regs[0].task == "pope");
  CHECK(regs[0].metric == "pope_f1_score");
  CHECK(regs[0].previous_run == ids.a1);
  CHECK(regs[0].run == ids.a2);
  CHECK(regs[0].worse_by == Approx(0.10));
  CHECK_FALSE(regs[0].relative);

  // Tolerance 0: every score drop counts (a1 -> a2 F1, a2 -> a3 ai2d 0.51 -> 0.505; series B
  // only improves); decode speed 100 -> 99 tok/s (1% slower) stays within the 10% speed
  // tolerance, and counts with a speed tolerance of 0.
  auto strict = render_options();
  strict.tolerance = 0;
  auto listed = [&](const DashboardRenderOptions& o) {
    std::vector<std::string> what;
    for (const auto& r : mlab::results::find_regressions(data, o))
      what.push_back(r.task + "/" + r.metric + "@" + std::to_string(r.run));
    std::sort(what.begin(), what.end());
    return what;
  };
  CHECK(listed(strict) == std::vector<std::string>{"ai2d/exact_match@" + std::to_string(ids.a3),
                                                   "pope/pope_f1_score@" + std::to_string(ids.a2)});
  strict.speed_tolerance = 0;
  CHECK(listed(strict) ==
        std::vector<std::string>{"ai2d/exact_match@" + std::to_string(ids.a3),
                                 "pope/perf:decode_tokens_per_s@" + std::to_string(ids.a2),
                                 "pope/pope_f1_score@" + std::to_string(ids.a2)});
  strict.speed_tolerance = 0.009;  // 1% slower is beyond 0.9%
  CHECK(listed(strict).size() == 3);
  strict.speed_tolerance = 0.011;
  CHECK(listed(strict).size() == 2);

  // Without task configs only perf:* and KV memory have a direction.
  DashboardRenderOptions bare;
  bare.tolerance = 0;
  bare.speed_tolerance = 0;
  const auto perf_only = mlab::results::find_regressions(data, bare);
  REQUIRE(perf_only.size() == 1);
  CHECK(perf_only[0].metric == mlab::results::kDecodeTokensPerS);
  CHECK(perf_only[0].relative);
  CHECK(perf_only[0].worse_by == Approx(0.01));
}

TEST_CASE("dashboard: the page is well-formed, self-contained and escaped",
          "[results][dashboard]") {
  const auto dir = mlab::test::scratch_dir("dashboard_page");
  const Ids ids = populate(dir / "p.sqlite");
  const auto data = DashboardData::load(dir / "p.sqlite");
  const auto opts = render_options();
  const std::string html = mlab::results::render_dashboard(data, opts);

  INFO(html.substr(0, 400));
  CHECK(mlab::test::check_well_formed(html) == "");
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK_THAT(html, !Contains("<script", Catch::CaseSensitive::No));
  CHECK_THAT(html, !Contains("http://"));
  CHECK_THAT(html, !Contains("https://"));
  CHECK_THAT(html, !Contains("url("));
  CHECK_THAT(html, !Contains("@import"));
  CHECK_THAT(html, !Contains("<img"));
  CHECK_THAT(html, Contains("<svg"));

  // Escaping: the odd run name and series only ever appear escaped.
  CHECK_THAT(html, Contains(kOddNameEscaped));
  CHECK_THAT(html, !Contains("<b>&"));
  CHECK_THAT(html, Contains("nightly &lt;mla&gt; &amp; co"));
  CHECK_THAT(html, !Contains("<mla>"));
  CHECK_THAT(html, Contains("<title>Test &lt;dashboard&gt;</title>"));

  // The regression is listed at the top, before the first chart.
  const auto reg = html.find("<table class=\"reg\">");
  REQUIRE(reg != std::string::npos);
  CHECK(reg < html.find("<svg"));
  const std::string reg_table = html.substr(reg, html.find("</table>", reg) - reg);
  CHECK_THAT(reg_table, Contains("pope_f1_score"));
  CHECK_THAT(reg_table, Contains("runs/" + std::to_string(ids.a2) + ".json"));
  CHECK_THAT(reg_table, Contains("runs/" + std::to_string(ids.a1) + ".json"));
  CHECK(count(reg_table, "<tr>") == 2);  // header + one regression
  CHECK_THAT(html, Contains("1 regression(s)"));
  // The trend point is red.
  CHECK_THAT(html, Contains("(regression)"));
  CHECK_THAT(html, Contains("fill=\"#d62728\""));

  // The unfinished run is flagged in the runs table.
  CHECK_THAT(html, Contains("<tr class=\"unfinished\">"));
  CHECK_THAT(html, Contains("<span class=\"flag\">unfinished</span>"));

  // Every run links its config.
  for (const auto& r : data.runs) {
    CHECK_THAT(html, Contains("href=\"runs/" + std::to_string(r.row.id) + ".json\""));
  }
  // The trade-off chart has one point per series, labelled with the method; KV bytes in KiB.
  CHECK_THAT(html, Contains(">mha2mla:d_kv=16</text>"));
  CHECK_THAT(html, Contains("KiB"));
  CHECK_THAT(html, Contains("tiny-llava"));
}

TEST_CASE("dashboard: write_dashboard writes index.html and each run's config",
          "[results][dashboard]") {
  const auto dir = mlab::test::scratch_dir("dashboard_write");
  populate(dir / "w.sqlite");
  const auto data = DashboardData::load(dir / "w.sqlite");
  const auto summary = mlab::results::write_dashboard(data, render_options(), dir / "site");
  CHECK(summary.index == dir / "site" / "index.html");
  CHECK(summary.runs == 6);
  CHECK(summary.series == 3);
  CHECK(summary.regressions == 1);
  const std::string html = mlab::test::read_file(summary.index);
  CHECK(mlab::test::check_well_formed(html) == "");
  CHECK_FALSE(fs::exists(dir / "site" / "index.html.tmp"));
  for (const auto& r : data.runs) {
    const auto path = dir / "site" / "runs" / (std::to_string(r.row.id) + ".json");
    REQUIRE(fs::exists(path));
    const auto j = mlab::test::read_json(path);
    CHECK(j.at("id") == r.row.id);
    CHECK(j.at("name") == r.row.info.name);
    CHECK(j.at("config") == r.row.info.config);
    CHECK(j.at("started_at") == r.row.started_at);
    CHECK(j.at("finished_at").is_null() == r.row.finished_at.empty());
    CHECK(j.at("metrics").size() == r.metrics.size());
  }
  // Writing again replaces the page.
  CHECK_NOTHROW(mlab::results::write_dashboard(data, render_options(), dir / "site"));
}

TEST_CASE("dashboard: an empty database is a page saying so, a missing one an error",
          "[results][dashboard]") {
  const auto dir = mlab::test::scratch_dir("dashboard_empty");
  { ResultsStore::open(dir / "empty.sqlite"); }
  const auto data = DashboardData::load(dir / "empty.sqlite");
  CHECK(data.runs.empty());
  const std::string html = mlab::results::render_dashboard(data, render_options());
  CHECK(mlab::test::check_well_formed(html) == "");
  CHECK_THAT(html, Contains("There are no runs"));
  CHECK_THAT(html, Contains("0 run(s)"));
  const auto summary = mlab::results::write_dashboard(data, render_options(), dir / "site");
  CHECK(summary.runs == 0);
  CHECK(fs::exists(summary.index));

  const auto missing = dir / "nope.sqlite";
  CHECK_THROWS_WITH(DashboardData::load(missing),
                    Contains("nope.sqlite") && Contains("no such results database"));
  CHECK_FALSE(fs::exists(missing));
}

TEST_CASE("dashboard: the demo database renders with its one regression", "[results][dashboard]") {
  const auto dir = mlab::test::scratch_dir("dashboard_demo");
  const auto demo = mlab::test::make_demo_db(dir / "demo.sqlite");
  const auto data = DashboardData::load(dir / "demo.sqlite");
  auto opts = render_options();
  opts.tasks["chartqa"] = DashboardTask{"relaxed_overall", 100, {{"relaxed_overall", 1}}};
  opts.tasks["docvqa_val"] = DashboardTask{"anls", 100, {{"anls", 1}}};
  opts.tolerance = mlab::test::kDemoTolerance;
  CHECK(static_cast<int>(data.runs.size()) == demo.runs);
  CHECK(static_cast<int>(mlab::results::series_count(data)) == demo.series);
  const auto regs = mlab::results::find_regressions(data, opts);
  REQUIRE(static_cast<int>(regs.size()) == demo.regressions);
  CHECK(regs[0].metric == "pope_f1_score");
  CHECK(mlab::test::check_well_formed(mlab::results::render_dashboard(data, opts)) == "");
}

TEST_CASE("dashboard: the well-formedness checker finds what it should", "[results][dashboard]") {
  using mlab::test::check_well_formed;
  CHECK(check_well_formed("<html><body><p>a &amp; b</p></body></html>") == "");
  CHECK(check_well_formed("<!DOCTYPE html>\n<html><meta charset=\"utf-8\"/></html>") == "");
  CHECK_THAT(check_well_formed("<html><p>a & b</p></html>"), Contains("bare '&'"));
  CHECK_THAT(check_well_formed("<html><p></html>"), Contains("closes <p>"));
  CHECK_THAT(check_well_formed("<html><meta charset=\"utf-8\"></html>"), Contains("closes <meta>"));
  CHECK_THAT(check_well_formed("<html><a href=x></a></html>"), Contains("unquoted"));
  CHECK_THAT(check_well_formed("<html><p>"), Contains("never closed"));
  CHECK_THAT(check_well_formed("<html><p>1 < 2</p></html>"), Contains("starts no tag"));
}

TEST_CASE("dashboard: number helpers", "[results][dashboard]") {
  using mlab::results::format_bytes;
  using mlab::results::nice_ticks;
  CHECK(format_bytes(512) == "512 B");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(16384) == "16 KiB");
  CHECK(format_bytes(2.25 * 1024 * 1024) == "2.25 MiB");
  CHECK(format_bytes(3.0 * 1024 * 1024 * 1024) == "3 GiB");
  CHECK(nice_ticks(0, 16) == std::vector<double>{0, 5, 10, 15, 20});
  const auto unit = nice_ticks(0, 1, 6);
  REQUIRE(unit.size() == 6);
  for (std::size_t i = 0; i < unit.size(); ++i) CHECK(unit[i] == Approx(0.2 * i));
  const auto t = nice_ticks(0.713, 0.741, 4);
  REQUIRE(t.size() >= 2);
  CHECK(t.front() <= 0.713);
  CHECK(t.back() >= 0.741);
  const auto flat = nice_ticks(5, 5);
  CHECK(flat.front() < 5);
  CHECK(flat.back() > 5);
  CHECK(mlab::html_escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
}

TEST_CASE("dashboard: series names", "[results][dashboard]") {
  RunInfo i = info("x", "h2o:budget=0.5");
  CHECK(mlab::results::series_name(i) == "tiny-llava / h2o:budget=0.5 / float32");
  i.config["model"] = {{"name", "m"}};
  i.config["methods"] = {"full", "h2o"};
  i.config.erase("dtype");
  CHECK(mlab::results::series_name(i) == "m / full,h2o");
  i.config["series"] = "nightly";
  CHECK(mlab::results::series_name(i) == "nightly");
}
