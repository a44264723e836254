#pragma once
// AddedVocabulary: the "added_tokens" of tokenizer.json (special tokens such as <s>,
// <|im_start|>, <image>), found in the input before the model runs (tokenizers'
// added_vocabulary.rs): leftmost-longest matching, tokens with normalized=false on the raw
// input, tokens with normalized=true on the normalized text; lstrip/rstrip absorb adjacent white
// space; single_word tokens only match outside words.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mlab::tokenizer {

class Normalizer;

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool normalized = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A stretch of input: either plain text or one added token.
struct Segment {
  std::size_t begin = 0;
  std::size_t end = 0;
  int32_t token_id = -1;  // -1: text to normalize and tokenize
};

class AddedVocabulary {
 public:
  // Reads the "added_tokens" array; `normalizer` (may be null) normalizes the contents of
  // normalized tokens. Throws mlab::Error on malformed entries.
  void load(const nlohmann::json& added_tokens, const Normalizer* normalizer);

  // Splits `text` on the tokens of one kind (normalized == false: raw input; true: normalized
  // text), appending segments that cover `text` in order (empty text segments are omitted).
  void split(std::string_view text, bool normalized, std::vector<Segment>& out) const;

  bool has_normalized_tokens() const { return normalized_.nodes.size() > 1; }
  const AddedToken* find_id(int32_t id) const;
  const AddedToken* find_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Byte trie of token contents.
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
      int32_t token = -1;                                 // index into tokens_
    };
    std::vector<Node> nodes;
    bool first_byte[256] = {};
    void insert(std::string_view key, int32_t token);
    // Longest key starting at text[pos]: its length, token index set; 0 when none.
    std::size_t longest_at(std::string_view text, std::size_t pos, int32_t& token) const;
  };

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, std::size_t> by_id_;
  Trie raw_;
  Trie normalized_;
};

}  // namespace mlab::tokenizer
