// `mla-bench eval --methods` (F7) through the binary: bad specs exit 2 naming what is valid,
// one run per method stack, and every row of Table 2 runs from its configs/paper/table2.json
// method_spec with measured KV bytes equal to the analytic figure of methods/kv_memory for the
// sequences it evaluated; `report --table 2` shows them beside the paper's.
#include <sqlite3.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "results/results_store.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Contains;

fs::path source_dir() { return mlab::test::data_dir().parent_path().parent_path(); }

std::string eval_args(const fs::path& model, const std::string& db, const std::string& run) {
  const auto data = mlab::test::data_dir();
  return "eval --model " + model.string() + " --tasks pope --datasets " +
         (data / "datasets").string() + " --db " + db + " --run-name '" + run +
         "' --batch-size 1 --threads 1 --limit 2";
}

fs::path llava() { return mlab::test::data_dir() / "tiny_vlms" / "llava"; }

}  // namespace

TEST_CASE("eval --methods: bad specs exit 2 and list what is valid",
          "[harness][eval][method:quanto][method:hqq]") {
  const auto db = (mlab::test::scratch_dir("eval_bad_methods") / "r.sqlite").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"lru:budget=0.5", "unknown method 'lru'"},
      {"lru:budget=0.5", "known: full, h2o, hqq, mha2mla, quanto, streaming_llm, tova"},
      {"h2o:budjet=0.5", "did you mean 'budget'?"},
      {"quanto:bits=3", "bits=3: must be 2 or 4"},
      {"hqq:bits=3", "must be 2 or 4"},
      {"h2o:budget=0", "budget=0: must be in (0, 1)"},
      {"tova:budget=1", "budget=1: must be in (0, 1)"},
      {"h2o:budget=1.5", "must be in (0, 1)"},
      {"quanto+quanto", "at most one quantizer (quanto | hqq) per stack"},
      {"h2o", "h2o:budget=0.375"},  // the preset (configs/methods/h2o.json) is valid ...
      {"mha2mla", "is not converted to MLA"},
      {"mha2mla+quanto:bits=4", "mla-bench convert"},
  };
  for (const auto& [spec, message] : cases) {
    const auto r =
        mlab::test::run_mla_bench(eval_args(llava(), db, "bad") + " --methods '" + spec + "'");
    INFO(spec << "\n" << r.out << r.err);
    if (spec == "h2o") {
      CHECK(r.code == 0);  // ... and runs
      CHECK_THAT(r.out, Contains(message));
      continue;
    }
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains(message));
  }
  // A paper row is one run: several stacks with it are refused.
  const auto two = mlab::test::run_mla_bench(eval_args(llava(), db, "two") +
                                             " --methods full,h2o --paper-row table2/origin/bf16");
  CHECK(two.code == 2);
  CHECK_THAT(two.err, Contains("give one method stack with it, not 2"));
  // Nothing was stored for the refused specs: only the one valid run exists.
  mlab::results::OpenOptions ro;
  ro.read_only = true;
  auto store = mlab::results::ResultsStore::open(db, ro);
  CHECK(store.runs().size() == 1);
}

TEST_CASE("eval: every Table 2 row runs from its method_spec with measured KV bytes = analytic",
          "[harness][eval][method:h2o][method:tova][method:quanto][method:hqq][method:mha2mla]"
          "[method:full]") {
  const auto dir = mlab::test::scratch_dir("eval_table2");
  const auto db = (dir / "r.sqlite").string();
  const auto mla = dir / "llava-mla";
  const auto data = mlab::test::data_dir();
  auto r = mlab::test::run_mla_bench("convert --model " + llava().string() + " --out " +
                                     mla.string() + " --rope 2norm --rope-dims 4 --d-kv 16 " +
                                     "--svd md --calib " + (data / "datasets" / "pope").string());
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  std::ifstream in(source_dir() / "configs" / "paper" / "table2.json");
  const auto table = nlohmann::json::parse(in);
  int rows = 0, authors = 0;
  for (const auto& row : table["rows"]) {
    const std::string id = row["id"];
    REQUIRE(row.contains("method_spec"));
    const bool mla_row = id.rfind("gqa2mla/", 0) == 0;
    r = mlab::test::run_mla_bench(eval_args(mla_row ? mla : llava(), db, id) +
                                  " --paper-row table2/" + id);
    INFO(id << "\n" << r.out << r.err);
    REQUIRE(r.code == 0);
    ++rows;
    // The MLA + Int4 rows also as the authors ran them: quantized reconstructed K/V (target=kv).
    if (row.contains("authors_method_spec")) {
      r = mlab::test::run_mla_bench(eval_args(mla, db, "authors/" + id) + " --methods '" +
                                    row["authors_method_spec"].get<std::string>() + "'");
      INFO(r.out << r.err);
      REQUIRE(r.code == 0);
      ++authors;
    }
  }
  CHECK(rows == 20);
  CHECK(authors == 6);
  // The rows' stacks, stored as run configs, and their KV-memory rows.
  mlab::results::OpenOptions ro;
  ro.read_only = true;
  auto store = mlab::results::ResultsStore::open(db, ro);
  for (const auto& run : store.runs()) {
    const auto rows_kv = store.kv_memory(run.id);
    INFO(run.info.name << " " << run.info.config.dump());
    REQUIRE(rows_kv.size() == 1);
    const auto* kv = &rows_kv.front();
    // Every sample's peak is stored (schema 3) and is at least its end-of-generation size.
    for (const auto& sample : store.samples(run.id)) {
      CHECK(sample.kv_bytes > 0);
      CHECK(sample.kv_bytes_peak >= sample.kv_bytes);
    }
    // Measured = analytic, to the byte (Quanto's row padding included).
    CHECK(std::abs(kv->bytes_per_token_layer_measured - kv->analytic) <= 1e-9 * kv->analytic);
    // Pruning rows keep the budget's fraction, quantized rows store less than full.
    const std::string id = run.info.name;
    if (id.rfind("pruning/", 0) == 0) CHECK(kv->vs_original < 0.4);
    if (id.rfind("quant/", 0) == 0) CHECK(kv->vs_original < 1.0);
    // target=kv stores what the GQA Int4 cache stores (specs/baselines.md §1.5-5): more than
    // the quantized latent of the same model.
    if (id.rfind("authors/", 0) == 0) {
      const auto latent = store.find_run(id.substr(8));
      REQUIRE(latent.has_value());
      const auto latent_kv = store.kv_memory(*latent);
      REQUIRE(latent_kv.size() == 1);
      CHECK(kv->bytes_per_token_layer_measured > latent_kv.front().bytes_per_token_layer_measured);
    }
  }
  // The report shows each row's measured KV Mem. beside the paper's.
  r = mlab::test::run_mla_bench("report --table 2 --db " + db);
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Contains("-81.25%") && Contains("-62.50%"));
}

TEST_CASE("eval: stacks on converted models resolve against the model",
          "[harness][eval][method:mha2mla]") {
  const auto dir = mlab::test::scratch_dir("eval_converted");
  const auto db = (dir / "r.sqlite").string();
  const auto data = mlab::test::data_dir();
  for (const std::string stage : {"1", "2"}) {
    const auto out = dir / ("stage" + stage);
    auto r =
        mlab::test::run_mla_bench("convert --model " + llava().string() + " --out " + out.string() +
                                  " --rope 2norm --rope-dims 4 --d-kv 16 " + "--svd md --stage " +
                                  stage + " --calib " + (data / "datasets" / "pope").string());
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
  }
  // Stage 2: full means the latent cache, a bare quantizer is stacked on it, d_kv is the model's.
  auto r = mlab::test::run_mla_bench(eval_args(dir / "stage2", db, "s2") +
                                     " --methods 'full,quanto:bits=2'");
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Contains("method mha2mla:d_kv=16,rope_dim=4\n") &&
                        Contains("method mha2mla:d_kv=16,rope_dim=4+quanto:bits=2"));
  r = mlab::test::run_mla_bench(eval_args(dir / "stage2", db, "s2-bad") +
                                " --methods mha2mla:d_kv=32");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("was converted with d_kv=16"));
  // Stage 1 (partial RoPE only): no latent; stacks run on its reconstructed K/V.
  r = mlab::test::run_mla_bench(eval_args(dir / "stage1", db, "s1") +
                                " --methods 'full,quanto:bits=4,tova:budget=0.5'");
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Contains("method full\n") && Contains("method tova:budget=0.5"));
  r = mlab::test::run_mla_bench(eval_args(dir / "stage1", db, "s1-bad") + " --methods mha2mla");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("stage-1 MHA2MLA model"));
}

TEST_CASE("generate --methods: one stack with its KV bytes and peak in --json and bad specs exit 2",
          "[harness][generate][method:tova][method:hqq]") {
  const auto data = mlab::test::data_dir();
  const std::string base = "generate --model " + llava().string() + " --image " +
                           (data / "images" / "gray.png").string() +
                           " --prompt 'Red?' --max-new-tokens 6 --no-eos --json";
  auto r = mlab::test::run_mla_bench(base + " --methods tova:tokens=8,chunk=4");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j.at("method") == "tova:tokens=8,sink=0,recent=0,recent_ratio=0,protect_image=0,chunk=4");
  // 8 tokens held by each of the 2 layers: 8 x 2 x (K + V of 4 heads x 16 dims) x f32.
  CHECK(j.at("kv_bytes").get<int64_t>() == 8 * 2 * 2 * 4 * 16 * 4);
  CHECK(j.at("kv_bytes_peak").get<int64_t>() == j.at("kv_bytes").get<int64_t>());
  r = mlab::test::run_mla_bench(base + " --methods hqq:bits=2,residual=2");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto q = nlohmann::json::parse(r.out);
  CHECK(q.at("kv_bytes_peak").get<int64_t>() >= q.at("kv_bytes").get<int64_t>());
  CHECK(q.at("kv_bytes").get<int64_t>() < 2 * 2 * 4 * 16 * 4 * q.at("kv_tokens").get<int64_t>());
  r = mlab::test::run_mla_bench(base + " --methods hqq:bits=3");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("must be 2 or 4"));
}
