// Acceptance 3 of F2: full evaluation prompts of llava-1.5, llama3-llava-next and Qwen2.5-VL
// (one image, several images, multi-turn, system turn) give the ids that transformers'
// apply_chat_template + tokenizer + placeholder expansion give with the real tokenizer files
// (tests/data/tokenizers/prompts.jsonl from tools/fixtures/make_prompt_fixtures.py).
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "models/prompt/chat_prompt.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/tokenizer/tokenizer_test_support.hpp"

namespace {

using nlohmann::json;

using mlab::test::family_tokenizer;

}  // namespace

TEST_CASE("chat prompt: evaluation prompts identical to transformers", "[tokenizer][prompt]") {
  std::ifstream in(mlab::test::data_dir() / "tokenizers" / "prompts.jsonl");
  REQUIRE(in.good());
  std::map<std::string, int> checked;
  for (std::string line; std::getline(in, line);) {
    const json record = json::parse(line);
    const std::string family_name = record.at("family").get<std::string>();
    const mlab::Tokenizer* tok = family_tokenizer(family_name);
    if (tok == nullptr) {
      WARN("skipped " << family_name << ": tokenizer.json not found");
      continue;
    }
    std::vector<mlab::prompt::Turn> turns;
    for (const auto& t : record.at("turns")) {
      turns.push_back({t.at("role").get<std::string>(), t.at("text").get<std::string>(),
                       t.at("images").get<int64_t>()});
    }
    const auto counts = record.at("image_tokens").get<std::vector<int64_t>>();
    const auto family = mlab::prompt::family_from_name(family_name);
    INFO(family_name << ": " << record.at("text").dump());
    CHECK(mlab::prompt::render_prompt(family, turns) == record.at("text").get<std::string>());
    CHECK(mlab::prompt::encode_prompt(*tok, family, turns, counts) ==
          record.at("ids").get<std::vector<int32_t>>());
    ++checked[family_name];
  }
  for (const auto& [family, n] : checked) CHECK(n >= 5);
}

TEST_CASE("chat prompt: errors", "[tokenizer][prompt]") {
  CHECK_THROWS_WITH(mlab::prompt::family_from_name("llava-next"),
                    Catch::Contains("did you mean 'llava_next'"));
  const mlab::Tokenizer* qwen = family_tokenizer("qwen2_5_vl");
  const mlab::Tokenizer* llama3 = mlab::test::load_tokenizer("llama3");
  if (qwen == nullptr || llama3 == nullptr) {
    WARN("skipped: tokenizers not found");
    return;
  }
  const std::vector<mlab::prompt::Turn> turns = {{"user", "What is this?", 2}};
  const std::vector<int64_t> one = {64};
  CHECK_THROWS_WITH(
      mlab::prompt::encode_prompt(*qwen, mlab::prompt::Family::kQwen2_5Vl, turns, one),
      Catch::Contains("more image placeholders"));
  // Llama-3's tokenizer.json alone has no <image>: llava-next's adds it.
  CHECK_THROWS_WITH(
      mlab::prompt::encode_prompt(*llama3, mlab::prompt::Family::kLlavaNext, turns, one),
      Catch::Contains("no special token '<image>'"));
}
