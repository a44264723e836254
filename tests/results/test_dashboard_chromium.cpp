// `mla-bench dashboard` as a user runs it (F5): the site written from the demo database, the
// one-line summary, a missing database named in the error and left uncreated, an empty one. The
// [slow] case renders the page in headless Chromium: a screenshot that decodes and is not blank,
// and no console messages (no script errors, no failed resource loads). Without Chromium it warns
// and returns (Catch2 v2 has no SKIP). MLAB_DASHBOARD_SCREENSHOT=<file.png> keeps a copy of the
// screenshot (how docs/dashboard.png is made, docs/dashboard.md).
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "datasets/image.hpp"
#include "results/results_store.hpp"
#include "tests/results/dashboard_fixture.hpp"
#include "tests/results/html_check.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"
#include "tests/support/test_files.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

// Writes the demo database's dashboard under `dir` with mla-bench; returns the index.html path.
fs::path demo_site(const fs::path& dir, mlab::test::DemoDb* demo = nullptr) {
  const auto info = mlab::test::make_demo_db(dir / "demo.sqlite");
  if (demo != nullptr) *demo = info;
  const auto r = mlab::test::run_mla_bench(
      "dashboard --db " + quote(dir / "demo.sqlite") + " --out " + quote(dir / "site") +
      " --tolerance " + std::to_string(mlab::test::kDemoTolerance) +
      " --title 'MLA-Bench nightly (demo database: made-up scores)'");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  return dir / "site" / "index.html";
}

// The chromium executable, or "" when none is installed.
std::string find_chromium() {
  if (const char* env = std::getenv("MLAB_CHROMIUM"); env != nullptr && *env != '\0') return env;
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    if (std::system(("command -v " + std::string(name) + " >/dev/null 2>&1").c_str()) == 0) {
      return name;
    }
  }
  return "";
}

}  // namespace

TEST_CASE("mla-bench dashboard: writes index.html and runs/<id>.json, prints a summary",
          "[results][dashboard]") {
  const auto dir = mlab::test::scratch_dir("dashboard_cli");
  mlab::test::DemoDb demo;
  const auto db = dir / "demo.sqlite";
  demo = mlab::test::make_demo_db(db);
  const auto r = mlab::test::run_mla_bench("dashboard --db " + quote(db) + " --out " +
                                           quote(dir / "site") + " --tolerance 0.02");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains((dir / "site" / "index.html").string()));
  CHECK_THAT(r.out, Contains(std::to_string(demo.runs) + " run(s), " + std::to_string(demo.series) +
                             " series, 1 regression(s)"));
  const std::string html = mlab::test::read_file(dir / "site" / "index.html");
  CHECK(mlab::test::check_well_formed(html) == "");
  // The task configs gave the primary metrics and directions (POPE F1 is the regression).
  CHECK_THAT(html, Contains("pope_f1_score"));
  CHECK_THAT(html, Contains("<table class=\"reg\">"));
  int configs = 0;
  for (const auto& e : fs::directory_iterator(dir / "site" / "runs")) {
    configs += e.path().extension() == ".json";
  }
  CHECK(configs == demo.runs);
  // The database was opened read-only: its runs are unchanged.
  mlab::results::OpenOptions ro;
  ro.read_only = true;
  CHECK(static_cast<int>(mlab::results::ResultsStore::open(db, ro).runs().size()) == demo.runs);
}

TEST_CASE("mla-bench dashboard: a missing database is an error naming it, an empty one a page",
          "[results][dashboard]") {
  const auto dir = mlab::test::scratch_dir("dashboard_cli_errors");
  const auto missing = dir / "missing.sqlite";
  auto r = mlab::test::run_mla_bench("dashboard --db " + quote(missing) + " --out " +
                                     quote(dir / "site"));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains(missing.string()));
  CHECK_FALSE(fs::exists(missing));

  { mlab::results::ResultsStore::open(dir / "empty.sqlite"); }
  r = mlab::test::run_mla_bench("dashboard --db " + quote(dir / "empty.sqlite") + " --out " +
                                quote(dir / "site"));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("0 run(s), 0 series, 0 regression(s)"));
  CHECK_THAT(mlab::test::read_file(dir / "site" / "index.html"), Contains("There are no runs"));

  r = mlab::test::run_mla_bench("dashboard --db " + quote(dir / "empty.sqlite") +
                                " --tolerance -1");
  CHECK(r.code != 0);
  CHECK_THAT(r.err, Contains("--tolerance"));
}

TEST_CASE("dashboard renders in headless Chromium: a non-blank screenshot, no console messages",
          "[results][dashboard][slow]") {
  const std::string chromium = find_chromium();
  if (chromium.empty()) {
    WARN("skipped: no chromium on PATH (set MLAB_CHROMIUM to its path)");
    return;
  }
  const auto dir = mlab::test::scratch_dir("dashboard_chromium");
  const auto index = demo_site(dir);
  const auto home = dir / "home";
  fs::create_directories(home);
  // A fresh HOME and profile: no first-run or profile-lock trouble.
  const std::string base = "HOME=" + quote(home) + " timeout 180 " + chromium +
                           " --headless=new --no-sandbox --disable-gpu --hide-scrollbars"
                           " --no-first-run --disable-extensions --user-data-dir=" +
                           quote(home / "profile") + " --window-size=1280,2000 ";
  const std::string url = "'file://" + fs::absolute(index).string() + "'";
  const auto png = dir / "dashboard.png";
  const int shot = std::system((base + "--screenshot=" + quote(png) + " " + url + " >" +
                                quote(dir / "shot.out") + " 2>" + quote(dir / "shot.err"))
                                   .c_str());
  INFO(mlab::test::read_file(dir / "shot.err"));
  REQUIRE(shot == 0);
  REQUIRE(fs::exists(png));

  const auto image = mlab::datasets::decode_image(png);
  CHECK(image.width == 1280);
  CHECK(image.height == 2000);
  // Not blank: many distinct colours, a spread of brightness, and the charts' series colours.
  std::set<uint32_t> colours;
  double sum = 0, sum2 = 0;
  int64_t blue = 0, orange = 0;
  const std::size_t pixels = static_cast<std::size_t>(image.width) * image.height;
  for (std::size_t i = 0; i < pixels; ++i) {
    const int r = image.rgb[3 * i], g = image.rgb[3 * i + 1], b = image.rgb[3 * i + 2];
    colours.insert(static_cast<uint32_t>(r << 16 | g << 8 | b));
    const double y = 0.299 * r + 0.587 * g + 0.114 * b;
    sum += y;
    sum2 += y * y;
    const auto near = [&](int cr, int cg, int cb) {
      return std::abs(r - cr) < 12 && std::abs(g - cg) < 12 && std::abs(b - cb) < 12;
    };
    blue += near(0x1f, 0x77, 0xb4);
    orange += near(0xff, 0x7f, 0x0e);
  }
  const double mean = sum / static_cast<double>(pixels);
  const double stddev = std::sqrt(sum2 / static_cast<double>(pixels) - mean * mean);
  INFO("distinct colours " << colours.size() << ", luma mean " << mean << " stddev " << stddev
                           << ", series-blue pixels " << blue << ", orange " << orange);
  CHECK(colours.size() > 200);
  CHECK(stddev > 15);
  CHECK(blue > 500);
  CHECK(orange > 500);

  // Console messages (logged as "INFO:CONSOLE" with --enable-logging): none expected from a page
  // without scripts or external resources.
  const int dump = std::system((base + "--enable-logging=stderr --v=0 --dump-dom " + url + " >" +
                                quote(dir / "dom.html") + " 2>" + quote(dir / "dom.err"))
                                   .c_str());
  REQUIRE(dump == 0);
  const std::string log = mlab::test::read_file(dir / "dom.err");
  INFO(log);
  CHECK_THAT(log, !Contains(":CONSOLE"));
  CHECK_THAT(log, !Contains("Uncaught"));
  CHECK_THAT(mlab::test::read_file(dir / "dom.html"), Contains("Score vs KV memory"));

  if (const char* keep = std::getenv("MLAB_DASHBOARD_SCREENSHOT"); keep != nullptr && *keep) {
    fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
    WARN("screenshot copied to " << keep);
  }
}
