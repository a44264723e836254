// `mla-bench eval` end to end on a tiny fixture VLM and the fixture dataset dirs: every sample is
// stored once, a rerun of the same run name resumes (stores nothing twice), a changed config is
// refused, and only implemented methods are accepted.
#include <string>

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
  r = mlab::test::run_mla_bench(eval_args(db, "pope") + " --methods h2o:budget=0.5");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("F7"));
}
