// Acceptance 2 of F2 ([slow]): 20,000 seeded random strings per tokenizer (scripts, emoji and ZWJ
// sequences, white space runs, digits, contractions, combining marks, special tokens written
// inline) encode to the ids that Python tokenizers gives, run live through
// tools/fixtures/tokenizer_oracle.py with the project's Python.
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "models/tokenizer/unicode.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/tokenizer/tokenizer_test_support.hpp"

namespace {

constexpr std::size_t kStrings = 20000;

std::vector<std::string> random_strings(uint64_t seed) {
  const std::vector<std::string> fragments = {
      "<s>",
      "</s>",
      "<unk>",
      "<|begin_of_text|>",
      "<|eot_id|>",
      "<|start_header_id|>",
      "<|im_start|>",
      "<|im_end|>",
      "<|vision_start|>",
      "<|image_pad|>",
      "<|endoftext|>",
      "<think>",
      "<image>",
      "<|im_",
      "'s",
      "'T",
      "'re",
      "'VE",
      "'m",
      "'ll",
      "'D",
      "n't",
      "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",  // family ZWJ
      "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
      "\xE2\x9D\xA4\xEF\xB8\x8F\xE2\x80\x8D\xF0\x9F\x94\xA5",
      "\xF0\x9F\x87\xAF\xF0\x9F\x87\xB5",
      "1\xEF\xB8\x8F\xE2\x83\xA3",
      "\r\n",
      "\n\n",
      "    ",
      "\t"};
  const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0x20, 0x7E},       {0x20, 0x7E},     {0x20, 0x7E},     {0x30, 0x39},       {0xA0, 0x24F},
      {0x300, 0x36F},     {0x370, 0x3FF},   {0x400, 0x4FF},   {0x590, 0x5FF},     {0x600, 0x6FF},
      {0x900, 0x97F},     {0xE00, 0xE7F},   {0x1100, 0x11FF}, {0x2000, 0x206F},   {0x3040, 0x30FF},
      {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3}, {0xFF00, 0xFFEF}, {0x1F300, 0x1FAFF}, {0x0, 0x1F},
      {0x10000, 0x10FFFF}};
  const std::vector<uint32_t> spaces = {0x20, 0x20,   0x20,   0x0A,   0x09,   0x0D, 0xA0, 0x3000,
                                        0x85, 0x2028, 0x180E, 0x200B, 0xFEFF, 0x0B, 0x0C};
  std::mt19937_64 rng(seed);
  std::vector<std::string> out;
  out.reserve(kStrings);
  while (out.size() < kStrings) {
    std::string s;
    const std::size_t pieces = rng() % 40;
    const uint64_t flavour = rng() % 4;  // some strings stay in one script
    const auto& home = ranges[rng() % ranges.size()];
    for (std::size_t i = 0; i < pieces; ++i) {
      const uint64_t kind = rng() % 10;
      if (kind == 0) {
        s += fragments[rng() % fragments.size()];
      } else if (kind <= 2) {
        const std::size_t run = 1 + rng() % 4;
        for (std::size_t k = 0; k < run; ++k)
          mlab::tokenizer::append_utf8(s, spaces[rng() % spaces.size()]);
      } else {
        const auto& r = flavour == 0 ? home : ranges[rng() % ranges.size()];
        const std::size_t run = 1 + rng() % 8;
        for (std::size_t k = 0; k < run; ++k) {
          uint32_t cp = r.first + static_cast<uint32_t>(rng() % (r.second - r.first + 1));
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0x41;
          mlab::tokenizer::append_utf8(s, cp);
        }
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

TEST_CASE("tokenizer random: 20,000 strings per tokenizer identical to Python tokenizers",
          "[tokenizer][slow]") {
  const std::string python = mlab::test::python();
  if (python.empty() ||
      std::system(("\"" + python + "\" -c \"import tokenizers\" 2>/dev/null").c_str()) != 0) {
    WARN("skipped: no Python with `tokenizers` configured (MLAB_PYTHON)");
    return;
  }
  const auto dir = mlab::test::scratch_dir("tokenizer_random");
  const auto strings = random_strings(20240611);
  const auto input = dir / "strings.jsonl";
  {
    std::ofstream out(input);
    for (const auto& s : strings) out << nlohmann::json(s).dump() << "\n";
  }
  const auto oracle = std::filesystem::path(MLAB_TEST_DATA_DIR) / ".." / ".." / "tools" /
                      "fixtures" / "tokenizer_oracle.py";
  for (const auto& name : mlab::test::tokenizer_names()) {
    const mlab::Tokenizer* tok = mlab::test::load_tokenizer(name);
    if (tok == nullptr) {
      WARN("skipped " << name << ": tokenizer.json not found");
      continue;
    }
    for (const bool add_special : {true, false}) {
      const auto output = dir / (name + (add_special ? ".special" : ".plain") + ".jsonl");
      const std::string command = "\"" + python + "\" \"" + oracle.string() + "\" encode \"" +
                                  mlab::test::tokenizer_file(name).string() + "\" \"" +
                                  input.string() + "\" \"" + output.string() + "\"" +
                                  (add_special ? "" : " --no-special");
      REQUIRE(std::system(command.c_str()) == 0);
      std::ifstream in(output);
      std::size_t index = 0, mismatches = 0;
      for (std::string line; std::getline(in, line); ++index) {
        REQUIRE(index < strings.size());
        const auto want = nlohmann::json::parse(line).get<std::vector<int32_t>>();
        const auto got = tok->encode(strings[index], add_special);
        if (got != want && ++mismatches <= 5) {
          WARN(name << " differs on " << nlohmann::json(strings[index]).dump()
                    << "\n  tokenizers: " << nlohmann::json(want).dump()
                    << "\n  mlab:       " << nlohmann::json(got).dump());
        }
      }
      INFO(name << (add_special ? " with" : " without") << " special tokens");
      CHECK(index == strings.size());
      CHECK(mismatches == 0);
    }
  }
}
