// F14: swift's training templates (models/prompt/train_template.*) give the pieces, ids and loss
// labels that ms-swift 3.4.0's template.encode gives in train mode, for ~20 conversations per
// family (unicode, multi-turn, system / empty system, several images, inline tags, a final user
// turn, an empty answer, a leading assistant turn) tokenized with the real tokenizer files
// (tests/data/train_template/<family>.json from tools/fixtures/make_train_template_fixtures.py).
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "models/prompt/train_template.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/tokenizer/tokenizer_test_support.hpp"

namespace {

using nlohmann::json;

using mlab::test::family_tokenizer;

std::vector<mlab::prompt::Turn> turns_of(const json& c) {
  std::vector<mlab::prompt::Turn> turns;
  for (const auto& t : c.at("turns")) {
    turns.push_back({t.at("role").get<std::string>(), t.at("text").get<std::string>(),
                     t.at("images").get<int64_t>()});
  }
  return turns;
}

json read_fixture(const std::string& name) {
  std::ifstream in(mlab::test::data_dir() / "train_template" / (name + ".json"));
  REQUIRE(in.good());
  return json::parse(in);
}

}  // namespace

TEST_CASE("train template: ids and labels identical to swift's train-mode encode",
          "[tokenizer][prompt][train]") {
  for (const std::string family_name : {"llava", "llava_next", "qwen2_5_vl"}) {
    const mlab::Tokenizer* tok = family_tokenizer(family_name);
    if (tok == nullptr) {
      WARN("skipped " << family_name << ": tokenizer.json not found");
      continue;
    }
    const json fixture = read_fixture(family_name);
    const auto family = mlab::prompt::family_from_name(family_name);
    int checked = 0;
    for (const auto& c : fixture.at("cases")) {
      INFO(family_name << " / " << c.at("name").get<std::string>());
      const auto turns = turns_of(c);
      const auto counts = c.at("image_tokens").get<std::vector<int64_t>>();
      CHECK(mlab::prompt::train_image_count(turns) == static_cast<int64_t>(counts.size()));
      const auto pieces = mlab::prompt::render_train_pieces(family, turns);
      REQUIRE(pieces.size() == c.at("pieces").size());
      for (std::size_t i = 0; i < pieces.size(); ++i) {
        CHECK(pieces[i].text == c.at("pieces")[i][0].get<std::string>());
        CHECK(pieces[i].trained == c.at("pieces")[i][1].get<bool>());
      }
      const auto enc = mlab::prompt::encode_train(*tok, family, turns, counts);
      CHECK(enc.input_ids == c.at("input_ids").get<std::vector<int32_t>>());
      CHECK(enc.labels == c.at("labels").get<std::vector<int32_t>>());
      ++checked;
    }
    CHECK(checked >= 19);
  }
}

TEST_CASE("train template: the per-piece tokenization is what differs from the joined string",
          "[tokenizer][prompt][train]") {
  // LLaMA-2's normaliser prepends "▁" per tokenizer call: swift's answer piece "yes</s>" starts
  // with "▁yes", which the joined "...ASSISTANT:yes</s>" would not.
  const mlab::Tokenizer* tok = family_tokenizer("llava");
  if (tok == nullptr) {
    WARN("skipped: tokenizer.json not found");
    return;
  }
  const std::vector<mlab::prompt::Turn> turns = {{"user", "Is it red?", 0},
                                                 {"assistant", "yes", 0}};
  const auto enc = mlab::prompt::encode_train(*tok, mlab::prompt::Family::kLlava, turns, {});
  std::string joined;
  for (const auto& p : mlab::prompt::render_train_pieces(mlab::prompt::Family::kLlava, turns))
    joined += p.text;
  CHECK(joined == "<s>USER: Is it red?\nASSISTANT:yes</s>");
  CHECK(enc.input_ids != tok->encode(joined, false));
  const auto yes = tok->encode("yes", false);  // "▁yes"
  REQUIRE(enc.labels.size() >= yes.size() + 1);
  CHECK(std::vector<int32_t>(enc.labels.end() - static_cast<std::ptrdiff_t>(yes.size()) - 1,
                             enc.labels.end() - 1) == yes);
  CHECK(enc.labels.back() == 2);  // </s>
}

TEST_CASE("train template: errors", "[tokenizer][prompt][train]") {
  using mlab::prompt::Family;
  using mlab::prompt::Turn;
  const mlab::Tokenizer* qwen = family_tokenizer("qwen2_5_vl");
  const mlab::Tokenizer* llama3 = mlab::test::load_tokenizer("llama3");
  if (qwen == nullptr || llama3 == nullptr) {
    WARN("skipped: tokenizers not found");
    return;
  }
  const std::vector<Turn> two = {{"user", "What is this?", 2}, {"assistant", "A", 0}};
  const std::vector<int64_t> one = {64};
  CHECK_THROWS_WITH(mlab::prompt::encode_train(*qwen, Family::kQwen2_5Vl, two, one),
                    Catch::Contains("2 image tag(s) but 1 image token count(s)"));
  CHECK_THROWS_WITH(mlab::prompt::encode_train(*llama3, Family::kLlavaNext, two, one),
                    Catch::Contains("no special token '<image>'"));
  const std::vector<Turn> users = {{"user", "a", 0}, {"user", "b", 0}};
  CHECK_THROWS_WITH(mlab::prompt::render_train_pieces(Family::kLlava, users),
                    Catch::Contains("expected alternating user and assistant turns"));
  const std::vector<Turn> tool = {{"user", "a", 0}, {"tool", "b", 0}};
  CHECK_THROWS_WITH(mlab::prompt::render_train_pieces(Family::kLlava, tool),
                    Catch::Contains("role 'tool'"));
  const std::vector<Turn> late_system = {{"user", "a", 0}, {"system", "b", 0}};
  CHECK_THROWS_WITH(mlab::prompt::render_train_pieces(Family::kLlava, late_system),
                    Catch::Contains("only the first turn may be one"));
  const std::vector<Turn> only_system = {{"system", "b", 0}};
  CHECK_THROWS_WITH(mlab::prompt::render_train_pieces(Family::kLlava, only_system),
                    Catch::Contains("no user or assistant turn"));
  const std::vector<int64_t> zero = {64, 0};
  CHECK_THROWS_WITH(mlab::prompt::encode_train(*qwen, Family::kQwen2_5Vl, two, zero),
                    Catch::Contains("must be positive"));
}
