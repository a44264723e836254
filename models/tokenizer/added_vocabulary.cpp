// Added-token matching (tokenizers/src/tokenizer/added_vocabulary.rs find_matches): a
// leftmost-longest scan over a byte trie.
#include "models/tokenizer/added_vocabulary.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "models/tokenizer/json_access.hpp"
#include "models/tokenizer/normalizer.hpp"
#include "models/tokenizer/unicode.hpp"

namespace mlab::tokenizer {
namespace {

namespace ja = json_access;

// The code point that ends at text[end) (text valid UTF-8, end > 0).
uint32_t code_point_before(std::string_view text, std::size_t end) {
  std::size_t begin = end - 1;
  while (begin > 0 && (static_cast<uint8_t>(text[begin]) & 0xC0) == 0x80) --begin;
  return next_code_point(text, begin);
}

// Word characters for single_word tokens: ASCII alphanumerics, '_' and non-space non-ASCII
// (an approximation of Rust's char::is_alphanumeric, unused by the shipped tokenizers).
bool is_word_char(uint32_t cp) {
  if (cp < 0x80) return std::isalnum(static_cast<int>(cp)) != 0 || cp == '_';
  return !is_white_space(cp);
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view key, int32_t token) {
  if (nodes.empty()) nodes.emplace_back();
  if (key.empty()) return;
  first_byte[static_cast<uint8_t>(key[0])] = true;
  int32_t node = 0;
  for (const char c : key) {
    const auto byte = static_cast<uint8_t>(c);
    auto& children = nodes[static_cast<std::size_t>(node)].children;
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{-1}));
    if (it != children.end() && it->first == byte) {
      node = it->second;
    } else {
      const auto child = static_cast<int32_t>(nodes.size());
      children.insert(it, {byte, child});
      nodes.emplace_back();
      node = child;
    }
  }
  nodes[static_cast<std::size_t>(node)].token = token;
}

std::size_t AddedVocabulary::Trie::longest_at(std::string_view text, std::size_t pos,
                                              int32_t& token) const {
  std::size_t best = 0;
  int32_t node = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    const auto byte = static_cast<uint8_t>(text[i]);
    const auto& children = nodes[static_cast<std::size_t>(node)].children;
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{-1}));
    if (it == children.end() || it->first != byte) break;
    node = it->second;
    if (nodes[static_cast<std::size_t>(node)].token >= 0) {
      best = i + 1 - pos;
      token = nodes[static_cast<std::size_t>(node)].token;
    }
  }
  return best;
}

void AddedVocabulary::load(const nlohmann::json& added_tokens, const Normalizer* normalizer) {
  MLAB_CHECK(added_tokens.is_array(), "added_tokens: must be an array, got ",
             added_tokens.type_name());
  raw_.nodes.assign(1, {});
  normalized_.nodes.assign(1, {});
  for (std::size_t i = 0; i < added_tokens.size(); ++i) {
    const auto& entry = added_tokens[i];
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    AddedToken token;
    const int64_t id = ja::get_int(entry, "id", where);
    MLAB_CHECK(id >= 0 && id < (1ll << 31), where,
               ": id must be a non-negative 32-bit integer, got ", id);
    token.id = static_cast<int32_t>(id);
    token.content = ja::get_string(entry, "content", where);
    MLAB_CHECK(find_invalid_utf8(token.content) == std::string::npos, where,
               ": content is not valid UTF-8");
    token.special = ja::get_bool(entry, "special", where, false);
    token.normalized = ja::get_bool(entry, "normalized", where, !token.special);
    token.lstrip = ja::get_bool(entry, "lstrip", where, false);
    token.rstrip = ja::get_bool(entry, "rstrip", where, false);
    token.single_word = ja::get_bool(entry, "single_word", where, false);
    const auto index = static_cast<int32_t>(tokens_.size());
    by_id_[token.id] = tokens_.size();
    if (token.normalized) {
      std::string key = token.content;
      if (normalizer != nullptr) normalizer->normalize(key);
      normalized_.insert(key, index);
    } else {
      raw_.insert(token.content, index);
    }
    tokens_.push_back(std::move(token));
  }
}

const AddedToken* AddedVocabulary::find_id(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::find_content(std::string_view content) const {
  for (const auto& token : tokens_) {
    if (token.content == content) return &token;
  }
  return nullptr;
}

void AddedVocabulary::split(std::string_view text, bool normalized,
                            std::vector<Segment>& out) const {
  const Trie& trie = normalized ? normalized_ : raw_;
  std::size_t start_offset = 0;  // end of the previous match
  if (trie.nodes.size() > 1) {
    for (std::size_t pos = 0; pos < text.size(); ++pos) {
      if (!trie.first_byte[static_cast<uint8_t>(text[pos])]) continue;
      int32_t index = -1;
      const std::size_t length = trie.longest_at(text, pos, index);
      if (length == 0) continue;
      const AddedToken& token = tokens_[static_cast<std::size_t>(index)];
      std::size_t begin = pos, end = pos + length;
      if (token.single_word) {
        const bool start_ok = begin == 0 || !is_word_char(code_point_before(text, begin));
        std::size_t after = end;
        const bool stop_ok = end == text.size() || !is_word_char(next_code_point(text, after));
        if (!start_ok || !stop_ok) continue;
      }
      if (token.lstrip) {
        while (begin > start_offset && is_white_space(code_point_before(text, begin))) {
          std::size_t b = begin - 1;
          while (b > 0 && (static_cast<uint8_t>(text[b]) & 0xC0) == 0x80) --b;
          begin = b;
        }
      }
      if (token.rstrip) {
        for (std::size_t p = end; p < text.size();) {
          if (!is_white_space(next_code_point(text, p))) break;
          end = p;
        }
      }
      if (begin > start_offset) out.push_back({start_offset, begin, -1});
      out.push_back({begin, end, token.id});
      start_offset = end;
      pos = end - 1;
    }
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace mlab::tokenizer
