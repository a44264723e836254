// Acceptance 1 of F2: the committed corpus (tests/data/tokenizers/corpus.jsonl, >= 5,000
// strings) encodes to the ids Python tokenizers gives for each of the four tokenizers, and
// decode (with and without skip_special_tokens) equals tokenizers' decode. Expected values:
// tests/data/tokenizers/expected/<name>.bin from tools/fixtures/make_tokenizer_fixtures.py.
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "models/tokenizer/unicode.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/tokenizer/tokenizer_test_support.hpp"

namespace {

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> read_corpus(const std::string& bytes) {
  std::vector<std::string> corpus;
  std::istringstream lines(bytes);
  for (std::string line; std::getline(lines, line);) {
    corpus.push_back(nlohmann::json::parse(line).get<std::string>());
  }
  return corpus;
}

uint64_t fnv1a64(const std::string& bytes) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (const char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001B3ull;
  }
  return h;
}

// Reader of the expected-results format (see make_tokenizer_fixtures.py).
struct Reader {
  const std::string& data;
  std::size_t pos = 0;
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      REQUIRE(pos < data.size());
      const auto b = static_cast<uint8_t>(data[pos++]);
      value |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return value;
    }
  }
  std::string text(const std::string& s) {
    const uint64_t head = varint();
    if (head == 0) return s;
    const std::size_t p = head - 1, q = varint(), m = varint();
    REQUIRE(pos + m <= data.size());
    std::string t = s.substr(0, p) + data.substr(pos, m) + s.substr(s.size() - q);
    pos += m;
    return t;
  }
};

std::string show_ids(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size() && i < 40; ++i)
    out += (i ? ", " : "") + std::to_string(ids[i]);
  return out + (ids.size() > 40 ? ", ...]" : "]");
}

}  // namespace

TEST_CASE("tokenizer corpus: ids and decode identical to Python tokenizers", "[tokenizer]") {
  const auto dir = mlab::test::data_dir() / "tokenizers";
  const std::string corpus_bytes = read_bytes(dir / "corpus.jsonl");
  const auto corpus = read_corpus(corpus_bytes);
  REQUIRE(corpus.size() >= 5000);
  for (const auto& name : mlab::test::tokenizer_names()) {
    const mlab::Tokenizer* tok = mlab::test::load_tokenizer(name);
    if (tok == nullptr) {
      WARN("skipped " << name << ": tokenizer.json not found (../shared/tokenizers absent)");
      continue;
    }
    const std::string expected = read_bytes(dir / "expected" / (name + ".bin"));
    REQUIRE(expected.substr(0, 8) == "MLABTOK1");
    uint32_t count = 0;
    uint64_t digest = 0;
    std::memcpy(&count, expected.data() + 8, 4);
    std::memcpy(&digest, expected.data() + 12, 8);
    INFO(name << ": fixture made from another corpus.jsonl? rerun make_tokenizer_fixtures.py");
    REQUIRE(count == corpus.size());
    REQUIRE(digest == fnv1a64(corpus_bytes));
    Reader reader{expected, 20};
    std::size_t id_mismatches = 0, decode_mismatches = 0, tokens = 0;
    for (const auto& s : corpus) {
      std::vector<int32_t> want(reader.varint());
      for (auto& id : want) id = static_cast<int32_t>(reader.varint());
      const std::string want_decode = reader.text(s);
      const std::string want_decode_skip = reader.text(s);
      const auto got = tok->encode(s);
      tokens += got.size();
      if (got != want && ++id_mismatches <= 5) {
        WARN(name << " ids differ on " << nlohmann::json(s).dump()
                  << "\n  tokenizers: " << show_ids(want) << "\n  mlab:       " << show_ids(got));
      }
      const std::string decoded = tok->decode(want), decoded_skip = tok->decode(want, true);
      if ((decoded != want_decode || decoded_skip != want_decode_skip) &&
          ++decode_mismatches <= 5) {
        WARN(name << " decode differs on " << nlohmann::json(s).dump()
                  << "\n  tokenizers: " << nlohmann::json(want_decode).dump() << " / "
                  << nlohmann::json(want_decode_skip).dump()
                  << "\n  mlab:       " << nlohmann::json(decoded).dump() << " / "
                  << nlohmann::json(decoded_skip).dump());
      }
    }
    REQUIRE(reader.pos == expected.size());
    INFO(name << ": " << corpus.size() << " strings, " << tokens << " ids");
    CHECK(id_mismatches == 0);
    CHECK(decode_mismatches == 0);
  }
}

TEST_CASE("tokenizer NFC: identical to tokenizers' NFC normalizer", "[tokenizer]") {
  std::ifstream in(mlab::test::data_dir() / "tokenizers" / "nfc.jsonl");
  REQUIRE(in.good());
  std::size_t cases = 0, mismatches = 0;
  for (std::string line; std::getline(in, line);) {
    const auto pair = nlohmann::json::parse(line);
    std::string text = pair[0].get<std::string>();
    mlab::tokenizer::nfc_in_place(text);
    ++cases;
    if (text != pair[1].get<std::string>() && ++mismatches <= 5) {
      WARN("NFC of " << pair[0].dump() << ": tokenizers " << pair[1].dump() << ", mlab "
                     << nlohmann::json(text).dump());
    }
  }
  CHECK(cases > 5000);
  CHECK(mismatches == 0);
}
