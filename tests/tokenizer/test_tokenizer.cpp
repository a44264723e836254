// Tokenizer runtime: known ids of the four real tokenizers, pipeline details (added tokens,
// byte fallback, NFC, decoders) checked against values from Python tokenizers 0.23.
#include <string>
#include <vector>

#include "tests/support/catch_torch.hpp"
#include "tests/support/test_files.hpp"
#include "tests/tokenizer/tokenizer_test_support.hpp"

namespace {

using Ids = std::vector<int32_t>;

#define MLAB_REQUIRE_TOKENIZER(var, name)                                                \
  const mlab::Tokenizer* var = mlab::test::load_tokenizer(name);                         \
  if (var == nullptr) {                                                                  \
    WARN("skipped: tokenizer '" << name << "' not found (../shared/tokenizers absent)"); \
    return;                                                                              \
  }

}  // namespace

TEST_CASE("tokenizer: Hello world in the four vocabularies", "[tokenizer]") {
  const std::vector<std::pair<std::string, Ids>> cases = {{"llama2", {15043, 3186}},
                                                          {"mistral", {22557, 1526}},
                                                          {"llama3", {9906, 1917}},
                                                          {"qwen2.5", {9707, 1879}}};
  for (const auto& [name, ids] : cases) {
    const mlab::Tokenizer* tok = mlab::test::load_tokenizer(name);
    if (tok == nullptr) {
      WARN("skipped " << name << ": tokenizer.json not found");
      continue;
    }
    INFO(name);
    CHECK(tok->encode("Hello world", false) == ids);
    CHECK(tok->decode(ids) == "Hello world");
  }
}

TEST_CASE("tokenizer: sentencepiece pipeline details (Mistral)", "[tokenizer]") {
  MLAB_REQUIRE_TOKENIZER(tok, "mistral");
  // BOS from the template; Prepend normalizer per stretch between special tokens.
  CHECK(tok->encode("") == Ids{1});
  CHECK(tok->encode("", false) == Ids{});
  const Ids ids = tok->encode("<s>\nWhat  is");
  CHECK(ids.size() == 7);
  CHECK(ids[0] == 1);
  CHECK(ids[1] == 1);
  CHECK(tok->id_to_token(ids[2]) == "\xE2\x96\x81");  // ▁
  CHECK(tok->id_to_token(ids[3]) == "<0x0A>");
  CHECK(tok->decode(ids) == "<s><s> \nWhat  is");
  CHECK(tok->decode(ids, true) == "\nWhat  is");
  // Byte fallback decoding: invalid UTF-8 byte runs become one U+FFFD per byte.
  CHECK(tok->decode(Ids{1, 0xE5 + 3, 0x8F + 3, 22557}, true) == "\xEF\xBF\xBD\xEF\xBF\xBD Hello");
  CHECK(tok->vocab_size() == 32000);
}

TEST_CASE("tokenizer: byte-level pipeline details (Llama-3, Qwen)", "[tokenizer]") {
  MLAB_REQUIRE_TOKENIZER(l3, "llama3");
  MLAB_REQUIRE_TOKENIZER(qw, "qwen2.5");
  CHECK(l3->encode("12345").size() == 2);
  CHECK(qw->encode("12345").size() == 5);
  CHECK(qw->encode("<|im_start|>hi") == Ids{151644, 6023});
  CHECK(l3->vocab_size() == 128256);
  CHECK(qw->vocab_size() == 151669);
  CHECK(qw->token_to_id("<|image_pad|>") == 151655);
  CHECK(qw->decode(Ids{2, 99999999, 3}) == "#$");
  CHECK(qw->decode(Ids{151644, 9707}, true) == "Hello");
  // NFC: e + combining acute is encoded as the precomposed character.
  CHECK(qw->encode("e\xCC\x81") == qw->encode("\xC3\xA9"));
}

TEST_CASE("tokenizer: Split regexes that match the empty string split as tokenizers does (F11 D11)",
          "[tokenizer]") {
  // tests/data/tokenizers/split_regex.json (tools/fixtures/make_split_regex_fixtures.py): an
  // empty regex, `\s*`, `a*`, lookaheads, `\b`, `o|` in every behaviour, inverted or not, in
  // front of the tiny Qwen2.5-VL tokenizer's pre-tokenizer, with tokenizers' ids.
  const auto fixture = mlab::test::read_json(mlab::test::data_dir() / "tokenizers" /
                                             "split_regex.json");
  const auto base = mlab::test::read_json(mlab::test::data_dir().parent_path().parent_path() /
                                          fixture.at("base").get<std::string>());
  int64_t compared = 0;
  for (const auto& group : fixture.at("groups")) {
    auto config = base;
    config["pre_tokenizer"] = {{"type", "Sequence"},
                               {"pretokenizers", {group.at("split"), base.at("pre_tokenizer")}}};
    const auto tok = mlab::Tokenizer::from_json(config, "split_regex.json");
    for (const auto& c : group.at("cases")) {
      const std::string text = c.at("text");
      INFO(group.at("split").dump() << " on '" << text << "'");
      const auto ids = tok.encode(text, false);
      CHECK(std::vector<int64_t>(ids.begin(), ids.end()) == c.at("ids").get<std::vector<int64_t>>());
      ++compared;
    }
  }
  CHECK(compared == 480);
}
