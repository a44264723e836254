// F11 D14 (issue F11, `issues show 18`): exit codes of mistaken command lines, through the built
// binary. A --db that does not exist is bad data (exit 1, the file named, never created); a bad
// --filter regex, a negative --limit / --calib-limit, an unknown --paper-row and a `tokenize`
// without text are bad usage (exit 2, the option and what it accepts named).
#include <filesystem>
#include <string>

#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

using Catch::Matchers::Contains;

namespace {

// The required eval options, with paths that are never read: the checks run at parse time.
const std::string kEvalArgs = "eval --model /nonexistent/model --tasks mme --datasets /nonexistent";

}  // namespace

TEST_CASE("D14: report --db naming a missing file exits 1 naming it and creates nothing",
          "[harness][cli][f11]") {
  const auto db = mlab::test::scratch_dir("d14_report_db") / "typo.sqlite";
  std::filesystem::remove(db);
  const auto r = mlab::test::run_mla_bench("report --table 1 --db " + db.string());
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains(db.string()) && Contains("no such results database"));
  CHECK(r.out.find("Database: none") == std::string::npos);
  CHECK_FALSE(std::filesystem::exists(db));
}

TEST_CASE("D14: bench --filter with a regex that does not compile exits 2",
          "[harness][cli][f11]") {
  const auto r = mlab::test::run_mla_bench("bench --list --filter '('");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("--filter '('") && Contains("not a valid regular expression"));
}

TEST_CASE("D14: eval --limit -1 exits 2", "[harness][cli][f11]") {
  const auto r = mlab::test::run_mla_bench(kEvalArgs + " --limit -1");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("--limit: must be >= 0 (0: all), got -1"));
}

TEST_CASE("D14: convert --calib-limit -1 exits 2 (0 stays 'all', as --help says)",
          "[harness][cli][f11]") {
  const auto r = mlab::test::run_mla_bench(
      "convert --model /nonexistent/model --out /nonexistent/out --calib-limit -1");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("--calib-samples: must be >= 0 (0: all), got -1"));
  const auto help = mlab::test::run_mla_bench("convert --help");
  CHECK_THAT(help.out, Contains("(0: all;"));
}

TEST_CASE("D14: eval --paper-row with an unknown table or row exits 2 naming the tables",
          "[harness][cli][f11]") {
  // With --methods, eval never reads the table itself: the option's check has to catch it.
  auto r = mlab::test::run_mla_bench(kEvalArgs + " --methods full --paper-row table9/x");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("table9/x") && Contains("no table table9") &&
                        Contains("table1, table2, table3, table4"));
  r = mlab::test::run_mla_bench(kEvalArgs + " --methods full --paper-row table1/no_such_row");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("table1/no_such_row") && Contains("row of table1"));
  r = mlab::test::run_mla_bench(kEvalArgs + " --methods full --paper-row llava15_7b");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("table<N>/<row id>"));
}

TEST_CASE("D14: tokenize without --text or --input exits 2", "[harness][cli][f11]") {
  // The check comes before the tokenizer is read, so no tokenizer file is needed.
  const auto r = mlab::test::run_mla_bench("tokenize --tokenizer /nonexistent/tok");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("give --text TEXT or --input FILE"));
}
