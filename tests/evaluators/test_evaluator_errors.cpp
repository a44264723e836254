// Bad inputs to evaluators/ fail with mlab::Error messages that name the task and the field;
// hand-checked lmms-eval behaviours the oracle cases state less directly.
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "evaluators/mmbench_metric.hpp"
#include "evaluators/multiple_choice.hpp"
#include "evaluators/python_random.hpp"
#include "evaluators/task_scoring.hpp"
#include "evaluators/text_normalization.hpp"
#include "tests/support/catch_torch.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;
namespace ev = mlab::evaluators;

TEST_CASE("unknown tasks, missing fields and bad UTF-8 are reported, not crashes", "[evaluators]") {
  REQUIRE_THROWS_WITH(ev::score_sample("gqaa", "x", json::object()),
                      Contains("did you mean 'gqa'"));
  REQUIRE_THROWS_WITH(ev::score_sample("gqa", "x", json::object()),
                      Contains("gqa: the doc has no field 'answer'"));
  REQUIRE_THROWS_WITH(ev::score_sample("gqa", "x", json{{"answer", 3}}),
                      Contains("field 'answer' must be a string"));
  REQUIRE_THROWS_WITH(ev::score_sample("gqa", "\xC3\x28", json{{"answer", "a"}}),
                      Contains("gqa prediction: invalid UTF-8"));
  REQUIRE_THROWS_WITH(
      ev::score_sample("pope", "yes", json{{"answer", "maybe"}, {"question_id", "1"}}),
      Contains("POPE answer must be 'yes' or 'no'"));
  REQUIRE_THROWS_WITH(ev::score_sample("docvqa_val", "x", json{{"answers", json::array()}}),
                      Contains("no gold answers"));
  REQUIRE_THROWS_WITH(ev::score_sample("ai2d", "A", json{{"options", {"a", "b"}}, {"answer", "5"}}),
                      Contains("out of range"));
  REQUIRE_THROWS_WITH(ev::aggregate_scores("pope", {json{{"pope_accuracy", 1}}}),
                      Contains("pope: malformed per-sample scores"));
  REQUIRE_THROWS_AS(ev::utf8_decode("\xED\xA0\x80"), mlab::Error);  // a surrogate
  REQUIRE_THROWS_AS(ev::utf8_decode("\xC0\xAF"), mlab::Error);      // overlong
}

TEST_CASE("documented lmms-eval quirks hold", "[evaluators]") {
  // AI2D: only a leading "X." counts; RealWorldQA: the choice text beats the letter.
  CHECK(ev::utf8_encode(ev::ai2d_extract(U" C. pupa")) == "C");
  CHECK(ev::utf8_encode(ev::ai2d_extract(U"The answer is C.")) == "The answer is C.");
  const std::u32string q = U"Which way?\nA. Left\nB. Right\nPlease answer directly.";
  CHECK(ev::utf8_encode(ev::rwq_flexible_extract(U"A. Right", q)) == "B");
  CHECK(ev::utf8_encode(ev::rwq_flexible_extract(U"two", q)) == "2");
  // Quirk Q1: with 8 processes, doc 17 (rank 1, instance 2) is filtered against doc 2.
  CHECK(ev::rwq_lmms_compat_doc_index(17, 8) == 2);
  CHECK(ev::rwq_lmms_compat_doc_index(17) == 17);
  // SEED: the first code point.
  CHECK(ev::utf8_encode(ev::seed_prediction(U" (B) ")) == "(");
  // ChartQA: 5% edge decided by IEEE doubles; "0" target falls back to strings.
  CHECK(ev::score_sample("chartqa", "1.05", json{{"type", "human_test"}, {"answer", "1"}})
            .at("relaxed_overall") == 0.0);
  CHECK(ev::score_sample("chartqa", "0.0", json{{"type", "human_test"}, {"answer", "0"}})
            .at("relaxed_overall") == 0.0);
  // DocVQA: exactly 0.5 is kept.
  CHECK(ev::score_sample("docvqa", "ab", json{{"answers", {"ax"}}}).at("anls") == 0.5);
  // MMBench: the first draws after random.seed(2680) (specs/benchmarks.md §4.6).
  ev::PythonRandom rng(2680);
  std::string letters;
  for (int i = 0; i < 10; ++i) letters.push_back("ABCDE"[rng.randint(0, 4)]);
  CHECK(letters == "EDCEEDDCEC");
  // MMBench: "nan" is a choice text; 'A' may be an article.
  std::array<std::optional<std::u32string>, 4> options = {U"cat", U"nan", std::nullopt, U"dog"};
  CHECK(ev::mmbench_infer(U"banana", options) == U'B');
  CHECK(ev::mmbench_infer_option(U"A cat is here") == 0);
}
