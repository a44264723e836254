// Acceptance 5 of F2: malformed tokenizer.json files (truncated, wrong types, unknown
// components, bad regexes, merges naming unknown tokens) fail with errors that say what is wrong
// and where; plus the BPE rules on a tiny hand-made vocabulary.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.hpp"
#include "models/tokenizer/tokenizer.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/tokenizer/tokenizer_test_support.hpp"

namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

// A tiny byte-level BPE tokenizer: ids 0..4 are a, b, c, ab, abc, then specials.
json tiny() {
  return json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [{"id": 10, "content": "<s>", "single_word": false, "lstrip": false,
                      "rstrip": false, "normalized": false, "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+|\\S+"}, "behavior": "Isolated",
                      "invert": false},
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                  {"Sequence": {"id": "A", "type_id": 0}}],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [10], "tokens": ["<s>"]}}},
    "decoder": {"type": "Fuse"},
    "model": {"type": "BPE", "dropout": null, "unk_token": "?", "fuse_unk": true,
              "byte_fallback": false, "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4,
              "?": 5, " ": 6, "bc": 7},
              "merges": ["a b", ["ab", "c"], "b c"]}
  })");
}

// The message of the mlab::Error that loading `config` throws ("" when it loads).
std::string load_error(const json& config) {
  try {
    mlab::Tokenizer::from_json(config, "test.json");
  } catch (const mlab::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("tokenizer malformed: a tiny valid tokenizer encodes by merge rank", "[tokenizer]") {
  const auto tok = mlab::Tokenizer::from_json(tiny(), "tiny");
  CHECK(tok.encode("abc", false) == Ids{4});     // (a b) first, then (ab c)
  CHECK(tok.encode("abc") == Ids{10, 4});        // template BOS
  CHECK(tok.encode("bca", false) == Ids{7, 0});  // b c merges, a stays
  CHECK(tok.encode("xxa", false) == Ids{5, 0});  // unknown characters fuse into one unk
  CHECK(tok.encode("<s>ab c", false) == Ids{10, 3, 6, 2});
  CHECK(tok.decode(Ids{10, 3, 6, 2}) == "<s>ab c");
  CHECK(tok.decode(Ids{10, 3, 6, 2}, true) == "ab c");
  CHECK(tok.token_to_id("abc") == 4);
  CHECK(tok.id_to_token(10) == "<s>");
  CHECK(!tok.id_to_token(99).has_value());
  CHECK_THROWS_WITH(tok.encode("a\xFF"), Catch::Contains("not valid UTF-8"));
}

TEST_CASE("tokenizer malformed: wrong types name the field", "[tokenizer]") {
  auto config = tiny();
  config["model"]["vocab"] = json::array({"a", "b"});
  CHECK_THAT(load_error(config),
             Catch::Contains("test.json") && Catch::Contains("'vocab' must be an object"));

  config = tiny();
  config["model"]["vocab"]["a"] = "zero";
  CHECK_THAT(load_error(config), Catch::Contains("vocab entry 'a'"));

  config = tiny();
  config["model"]["merges"][0] = 17;
  CHECK_THAT(load_error(config), Catch::Contains("merge #0"));

  config = tiny();
  config["added_tokens"][0]["id"] = "10";
  CHECK_THAT(load_error(config),
             Catch::Contains("added_tokens[0]") && Catch::Contains("'id' must be an integer"));

  config = tiny();
  config["pre_tokenizer"]["behavior"] = 3;
  CHECK_THAT(load_error(config), Catch::Contains("pre_tokenizer.Split") &&
                                     Catch::Contains("'behavior' must be a string"));

  config = tiny();
  config["normalizer"] = {{"type", "Prepend"}, {"prepend", 1}};
  CHECK_THAT(load_error(config), Catch::Contains("normalizer.Prepend"));

  config = tiny();
  config.erase("model");
  CHECK_THAT(load_error(config), Catch::Contains("missing field 'model'"));

  CHECK_THAT(load_error(json::array()), Catch::Contains("top level must be a JSON object"));

  config = tiny();
  config["post_processor"]["single"][0]["SpecialToken"]["id"] = "</s>";
  CHECK_THAT(load_error(config), Catch::Contains("'</s>'") && Catch::Contains("special_tokens"));
}

TEST_CASE("tokenizer malformed: unknown components are named", "[tokenizer]") {
  auto config = tiny();
  config["normalizer"] = {{"type", "Lowercase"}};
  CHECK_THAT(load_error(config), Catch::Contains("unsupported normalizer type 'Lowercase'"));
  config = tiny();
  config["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  CHECK_THAT(load_error(config),
             Catch::Contains("unsupported pre_tokenizer type 'BertPreTokenizer'"));
  config = tiny();
  config["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}};
  CHECK_THAT(load_error(config), Catch::Contains("unsupported decoder type 'WordPiece'"));
  config = tiny();
  config["post_processor"] = {{"type", "Mystery"}};
  CHECK_THAT(load_error(config), Catch::Contains("unsupported post_processor type 'Mystery'"));
  config = tiny();
  config["model"]["type"] = "Unigram";
  CHECK_THAT(load_error(config), Catch::Contains("unsupported model type 'Unigram'"));
  config = tiny();
  config["model"]["dropout"] = 0.1;
  CHECK_THAT(load_error(config), Catch::Contains("dropout is not supported"));
  config = tiny();
  config["pre_tokenizer"]["behavior"] = "Sideways";
  CHECK_THAT(load_error(config), Catch::Contains("unknown behavior 'Sideways'"));
  config = tiny();
  config["truncation"] = {{"max_length", 8}};
  CHECK_THAT(load_error(config), Catch::Contains("'truncation' is set"));
}

TEST_CASE("tokenizer malformed: bad regex and unknown merge tokens", "[tokenizer]") {
  auto config = tiny();
  config["pre_tokenizer"]["pattern"] = {{"Regex", "(\\p{L}+"}};
  CHECK_THAT(load_error(config), Catch::Contains("pre_tokenizer.Split") &&
                                     Catch::Contains("bad regex") && Catch::Contains("offset"));
  config = tiny();
  config["pre_tokenizer"]["pattern"] = {{"Glob", "*"}};
  CHECK_THAT(load_error(config), Catch::Contains("'pattern' must be"));

  config = tiny();
  config["model"]["merges"].push_back("a zz");
  CHECK_THAT(load_error(config), Catch::Contains("merge #3") && Catch::Contains("'zz'") &&
                                     Catch::Contains("not in the vocabulary"));
  config = tiny();
  config["model"]["merges"].push_back(json::array({"c", "a"}));  // "ca" is not a token
  CHECK_THAT(load_error(config), Catch::Contains("'ca'"));
  config = tiny();
  config["model"]["merges"].push_back("abc");
  CHECK_THAT(load_error(config), Catch::Contains("two tokens separated by a space"));
}

TEST_CASE("tokenizer malformed: truncated and missing files", "[tokenizer]") {
  const auto dir = mlab::test::scratch_dir("tokenizer_malformed");
  const auto source = mlab::test::data_dir() / "tokenizers" / "llama2" / "tokenizer.json";
  std::ifstream in(source, std::ios::binary);
  REQUIRE(in.good());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto path = dir / "tokenizer.json";
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  CHECK_THROWS_WITH(mlab::Tokenizer::from_file(path),
                    Catch::Contains(path.string()) && Catch::Contains("not valid JSON"));
  CHECK_THROWS_WITH(mlab::Tokenizer::from_file(dir),  // a directory: its tokenizer.json
                    Catch::Contains("not valid JSON"));
  CHECK_THROWS_WITH(mlab::Tokenizer::from_file(dir / "absent.json"),
                    Catch::Contains("cannot open file"));
}
