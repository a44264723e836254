// `mla-bench eval` end to end on a tiny fixture VLM and the fixture dataset dirs: every sample is
// stored once, a rerun of the same run name resumes (stores nothing twice), a changed config is
// refused, and only implemented methods are accepted.
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
  r = mlab::test::run_mla_bench(eval_args(db, "pope") + " --methods h2o:budget=0.5");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("F7"));
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
