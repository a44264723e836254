// `mla-bench train --dry-run` through the binary: the trainable parameter groups of the real
// configs beside the paper's Tables 5-6, --json, and the exit codes of bad input (0 ok, 1 an
// unreadable config or options that do not fit the model, 2 bad usage).
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

using Catch::Matchers::Contains;

namespace {

std::string model_config(const std::string& name) {
  return (mlab::test::data_dir().parent_path().parent_path() / "configs" / "models" /
          (name + ".json"))
      .string();
}

}  // namespace

TEST_CASE("train --dry-run prints both stages' groups beside the paper", "[training][cli]") {
  const auto r = mlab::test::run_mla_bench("train --dry-run --model-config " +
                                           model_config("llava-1.5-7b-hf"));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("unconverted model: 7,063,427,072 parameters"));
  CHECK_THAT(r.out, Contains("stage 1: partial RoPE (r = 32); peft_train v4"));
  CHECK_THAT(r.out, Contains("\n  kv_proj.up_k ") && !Contains("\n  image_newline "));
  CHECK_THAT(r.out, Contains("trainable: 1,497,640,960 of 7,063,427,072 parameters = 1497.64M "
                             "(21.20%)"));
  CHECK_THAT(r.out, Contains("paper, Table 5 #Param.: 1497.64M (21.20%) (the same)"));
  CHECK_THAT(r.out, Contains("stage 2: MLA (r = 32, d_kv = 64); peft_train v2"));
  CHECK_THAT(r.out, Contains("paper, Table 6 #Param.: 2705.60M (35.60%) (the same)"));
  CHECK_THAT(r.out, Contains("we fine-tune only $\\sim 10\\%$ of the VLM"));

  const auto next =
      mlab::test::run_mla_bench("train --dry-run --stage 2 --d-kv 128 --model-config " +
                                model_config("llama3-llava-next-8b-hf"));
  INFO(next.out << next.err);
  REQUIRE(next.code == 0);
  CHECK_THAT(next.out, Contains("\n  image_newline ") && Contains("1514.42M (17.80%) (the same)"));
  CHECK_THAT(next.out, !Contains("stage 1:"));

  // d_kv 100 is not in the paper's grid; other options are not the paper's settings.
  const auto other =
      mlab::test::run_mla_bench("train --dry-run --stage 2 --d-kv 100 --model-config " +
                                model_config("Qwen2.5-VL-7B-Instruct"));
  CHECK(other.code == 0);
  CHECK_THAT(other.out, Contains("the paper has no row for d_kv 100 (it has 32, 64, 128)"));
  const auto v3 = mlab::test::run_mla_bench(
      "train --dry-run --stage 1 --peft v3 --freeze-aligner --model-config " +
      model_config("Qwen2.5-VL-7B-Instruct"));
  CHECK(v3.code == 0);
  CHECK_THAT(v3.out, Contains("peft_train v3") && Contains("projector frozen") &&
                         Contains("the paper counts the authors' settings only"));
}

TEST_CASE("train --dry-run --json", "[training][cli]") {
  const auto r = mlab::test::run_mla_bench("train --dry-run --json --stage 1 --model-config " +
                                           model_config("Qwen2.5-VL-7B-Instruct"));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j.at("model_type") == "qwen2_5_vl");
  REQUIRE(j.at("stages").size() == 1);
  const auto& s = j.at("stages")[0];
  CHECK(s.at("stage") == 1);
  CHECK(s.at("peft") == "v4");
  CHECK(s.at("trainable_parameters") == 494481152);
  CHECK(s.at("paper_style") == "494.48M (5.96%)");
  CHECK(s.at("paper").at("printed") == "494.48M(5.96%)");
  CHECK(s.at("paper").at("same_as_ours") == true);
  CHECK(!s.contains("parameters"));
  const auto full = mlab::test::run_mla_bench(
      "train --dry-run --json --parameters --stage 2 --d-kv 32 --model-config " +
      model_config("llava-1.5-7b-hf"));
  REQUIRE(full.code == 0);
  const auto f = nlohmann::json::parse(full.out);
  const auto& params = f.at("stages")[0].at("parameters");
  CHECK(params.size() > 700);
  CHECK(params[0].at("name") == "vision_tower.vision_model.embeddings.class_embedding");
}

TEST_CASE("train: bad input", "[training][cli]") {
  // No --dry-run: the trainer's own options are checked first (usage errors, exit 2).
  const auto no_steps = mlab::test::run_mla_bench("train --model x --stage 1 --data y --out z");
  CHECK(no_steps.code == 2);
  CHECK_THAT(no_steps.err, Contains("--steps N or --epochs E"));
  const auto no_data = mlab::test::run_mla_bench("train --model x --stage 1 --steps 1");
  CHECK(no_data.code == 2);
  CHECK_THAT(no_data.err, Contains("--data") && Contains("--dry-run"));
  const auto no_stage = mlab::test::run_mla_bench("train --model x --data y --out z --steps 1");
  CHECK(no_stage.code == 2);
  CHECK_THAT(no_stage.err, Contains("--stage 1 or 2"));
  const auto missing = mlab::test::run_mla_bench("train --dry-run --model-config /nonexistent/dir");
  CHECK(missing.code == 1);
  CHECK_THAT(missing.err, Contains("/nonexistent/dir"));
  const auto stage3 = mlab::test::run_mla_bench("train --dry-run --stage 3 --model-config " +
                                                model_config("llava-1.5-7b-hf"));
  CHECK(stage3.code == 2);
  CHECK_THAT(stage3.out + stage3.err, Contains("--stage"));
  const auto big = mlab::test::run_mla_bench(
      "train --dry-run --stage 2 --d-kv 4096 --model-config " + model_config("llava-1.5-7b-hf"));
  CHECK(big.code == 1);
  CHECK_THAT(big.err, Contains("d_kv 4096 must be in [1, 128]"));
  const auto peft = mlab::test::run_mla_bench(
      "train --dry-run --stage 1 --peft v44 --model-config " + model_config("llava-1.5-7b-hf"));
  CHECK(peft.code == 2);
  CHECK_THAT(peft.err, Contains("did you mean 'v4'?"));
  const auto peft_both = mlab::test::run_mla_bench("train --dry-run --peft v3 --model-config " +
                                                   model_config("llava-1.5-7b-hf"));
  CHECK(peft_both.code == 2);
  const auto no_config = mlab::test::run_mla_bench("train --dry-run");
  CHECK(no_config.code == 2);
  CHECK_THAT(no_config.err, Contains("--model-config"));
  const auto help = mlab::test::run_mla_bench("train --help");
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Contains("--dry-run") && Contains("--model-config") && Contains("--peft") &&
                           Contains("--d-kv") && Contains("--json") && Contains("Tables 5-6"));
}
