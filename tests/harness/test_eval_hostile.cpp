// `mla-bench eval` on hostile inputs (issue F11), through the binary on the tiny fixture VLM:
// D5, a --db that stores nothing ("" or ":memory:") is bad usage; D6, a dataset.json whose
// 'samples' count disagrees with samples.jsonl is refused as check-dataset refuses it, before
// the model loads, even when the count or --limit would stop the run before the file's end.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

using Catch::Matchers::Contains;

namespace {

std::string eval_args(const std::string& db, const std::string& datasets) {
  const auto data = mlab::test::data_dir();
  return "eval --model " + (data / "tiny_vlms" / "llava").string() + " --tasks pope --datasets " +
         datasets + " --db " + db + " --run-name t --batch-size 2 --threads 1";
}

// ROOT/pope: a copy of the fixture POPE dir (3 samples) whose dataset.json says `count`.
std::filesystem::path pope_with_count(const std::string& name, int count) {
  const auto root = mlab::test::scratch_dir(name);
  const auto dir = root / "pope";
  std::filesystem::remove_all(dir);
  std::filesystem::copy(mlab::test::data_dir() / "datasets" / "pope", dir,
                        std::filesystem::copy_options::recursive);
  nlohmann::json meta;
  {
    std::ifstream in(dir / "dataset.json");
    meta = nlohmann::json::parse(in);
  }
  meta["samples"] = count;
  std::filesystem::remove(dir / "dataset.json");
  std::ofstream(dir / "dataset.json") << meta.dump(2) << "\n";
  return root;
}

}  // namespace

TEST_CASE("eval: --db '' and --db :memory: are bad usage (F11 D5)", "[harness][eval][hostile]") {
  const std::string datasets = (mlab::test::data_dir() / "datasets").string();
  for (const std::string db : {"''", ":memory:"}) {
    INFO(db);
    const auto r = mlab::test::run_mla_bench(eval_args(db, datasets));
    INFO(r.out << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("--db") && Contains("results must go to a database file"));
    CHECK_THAT(r.out, !Contains("complete"));
  }
}

TEST_CASE("eval: a samples count that disagrees with samples.jsonl is refused (F11 D6)",
          "[harness][eval][hostile]") {
  // 0 and 2 (fewer than the file's 3 records: the run used to stop there, "complete"), and 5
  // (more: a truncated export); --limit 1 does not hide the mismatch.
  for (const int count : {0, 2, 5}) {
    for (const std::string limit : {"", " --limit 1"}) {
      INFO("samples " << count << limit);
      const auto root = pope_with_count("eval_count_" + std::to_string(count), count);
      const auto db = root / "r.sqlite";
      std::filesystem::remove(db);
      const auto r = mlab::test::run_mla_bench(eval_args(db.string(), root.string()) + limit);
      INFO(r.out << r.err);
      CHECK(r.code == 1);
      CHECK_THAT(r.err, Contains((root / "pope" / "samples.jsonl").string() + ": holds 3 samples, " +
                                 "dataset.json says " + std::to_string(count)) &&
                            Contains((root / "pope" / "dataset.json").string()));
      CHECK_THAT(r.out, !Contains("complete"));
      CHECK_FALSE(std::filesystem::exists(db));  // refused before the run was created
    }
  }
  // The same dir with the right count runs to completion.
  const auto root = pope_with_count("eval_count_3", 3);
  const auto db = root / "r.sqlite";
  std::filesystem::remove(db);
  const auto r = mlab::test::run_mla_bench(eval_args(db.string(), root.string()));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Contains("pope: 3 new, 0 already stored, 0 failed") && Contains("complete"));
}
