#pragma once
// BpeModel: the "model" of type BPE in tokenizer.json (Sennrich et al. 2016, byte-pair encoding;
// Hugging Face tokenizers models/bpe/model.rs and word.rs). A piece is split into characters
// (unknown ones -> <0xXX> byte tokens with byte_fallback, else the unk token, fused when
// fuse_unk), then the adjacent pair of lowest merge rank (ties: leftmost) is merged until no
// pair has a merge. With ignore_merges a piece that is itself a vocabulary entry is that token.
// Results for short pieces are cached (thread-safe).
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mlab::tokenizer {

// std::hash<std::string_view> for heterogeneous lookup in unordered maps keyed by std::string.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Builds the model from a tokenizer.json "model" object; throws mlab::Error for unsupported
  // options (dropout, subword prefix/suffix), malformed fields and merges that name tokens
  // missing from the vocabulary.
  static std::unique_ptr<BpeModel> from_json(const nlohmann::json& config);

  // Appends the ids of one pre-tokenized piece (valid UTF-8) to `out`.
  void tokenize(std::string_view piece, std::vector<int32_t>& out) const;

  // -1 when absent.
  int32_t token_to_id(std::string_view token) const;
  // nullptr when absent.
  const std::string* id_to_token(int32_t id) const;
  std::size_t vocab_size() const { return vocab_.size(); }
  const TokenMap& vocab() const { return vocab_; }

  BpeModel() = default;

 private:
  struct MergeTable {
    // Open addressing: key (left << 32 | right) -> rank, merged id.
    std::vector<uint64_t> keys;
    std::vector<uint32_t> ranks;
    std::vector<int32_t> results;
    uint64_t mask = 0;
    void build(std::size_t count);
    void insert(int32_t left, int32_t right, uint32_t rank, int32_t result);
    // False when (left, right) has no merge.
    bool find(int32_t left, int32_t right, uint32_t& rank, int32_t& result) const {
      const uint64_t key =
          (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
      for (uint64_t slot = (key * 0x9E3779B97F4A7C15ull) >> 20 & mask;; slot = (slot + 1) & mask) {
        if (keys[slot] == key) {
          rank = ranks[slot];
          result = results[slot];
          return true;
        }
        if (keys[slot] == kEmpty) return false;
      }
    }
    static constexpr uint64_t kEmpty = ~0ull;
  };

  void merge_word(std::string_view piece, std::vector<int32_t>& out) const;

  TokenMap vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  MergeTable merges_;
  std::string unk_token_;       // empty: none
  int32_t byte_ids_[256] = {};  // id of <0xXX>, -1 when absent
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;

  // Word cache: piece -> [offset, length) in cache_ids_.
  struct CacheEntry {
    uint32_t offset;
    uint32_t length;
  };
  static constexpr std::size_t kCacheMaxPiece = 64;
  static constexpr std::size_t kCacheMaxEntries = 1 << 18;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, CacheEntry, StringHash, std::equal_to<>> cache_;
  mutable std::vector<int32_t> cache_ids_;
};

}  // namespace mlab::tokenizer
