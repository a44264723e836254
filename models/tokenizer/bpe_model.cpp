// BPE model (tokenizers/src/models/bpe/model.rs merge_word/tokenize_with_cache, word.rs
// merge_all): a priority queue of (rank, position) over a doubly linked list of symbols.
#include "models/tokenizer/bpe_model.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <queue>

#include "core/error.hpp"
#include "models/tokenizer/json_access.hpp"
#include "models/tokenizer/unicode.hpp"

namespace mlab::tokenizer {
namespace {

namespace ja = json_access;

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t length;  // bytes; 0 once merged into its left neighbour
};

struct Candidate {
  uint32_t rank;
  uint32_t pos;
  int32_t result;
  bool operator>(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

// Per-thread scratch buffers of merge_word (no allocation per piece once warm).
struct Scratch {
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace

void BpeModel::MergeTable::build(std::size_t count) {
  std::size_t capacity = std::bit_ceil(std::max<std::size_t>(16, count * 2));
  keys.assign(capacity, kEmpty);
  ranks.assign(capacity, 0);
  results.assign(capacity, 0);
  mask = capacity - 1;
}

void BpeModel::MergeTable::insert(int32_t left, int32_t right, uint32_t rank, int32_t result) {
  const uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  uint64_t slot = (key * 0x9E3779B97F4A7C15ull) >> 20 & mask;
  while (keys[slot] != kEmpty && keys[slot] != key) slot = (slot + 1) & mask;
  keys[slot] = key;  // a repeated pair keeps the last rank, as tokenizers' HashMap collect does
  ranks[slot] = rank;
  results[slot] = result;
}

std::unique_ptr<BpeModel> BpeModel::from_json(const nlohmann::json& config) {
  const std::string where = "model.BPE";
  auto model = std::make_unique<BpeModel>();
  if (ja::has(config, "dropout")) {
    const auto& dropout = config.at("dropout");
    MLAB_CHECK(dropout.is_number() && dropout.get<double>() == 0.0, where,
               ": dropout is not supported (got ", dropout.dump(), "): it makes encoding random");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (ja::has(config, key)) {
      MLAB_CHECK(ja::get_string(config, key, where).empty(), where, ": non-empty ", key,
                 " is not supported (got '", config.at(key).get<std::string>(), "')");
    }
  }
  if (ja::has(config, "unk_token")) model->unk_token_ = ja::get_string(config, "unk_token", where);
  model->byte_fallback_ = ja::get_bool(config, "byte_fallback", where, false);
  model->fuse_unk_ = ja::get_bool(config, "fuse_unk", where, false);
  model->ignore_merges_ = ja::get_bool(config, "ignore_merges", where, false);

  const auto& vocab = ja::field(config, "vocab", where);
  MLAB_CHECK(vocab.is_object(), where, ": field 'vocab' must be an object {token: id}, got ",
             vocab.type_name());
  model->vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab.items()) {
    MLAB_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (1ll << 31),
               where, ": vocab entry '", token, "' must map to a non-negative integer id, got ",
               id.dump());
    const auto value = static_cast<int32_t>(id.get<int64_t>());
    model->vocab_[token] = value;
    max_id = std::max(max_id, value);
  }
  model->id_to_token_.resize(static_cast<std::size_t>(max_id + 1));
  model->has_id_.assign(static_cast<std::size_t>(max_id + 1), false);
  for (const auto& [token, id] : model->vocab_) {
    model->id_to_token_[static_cast<std::size_t>(id)] = token;
    model->has_id_[static_cast<std::size_t>(id)] = true;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    model->byte_ids_[b] = model->token_to_id(name);
  }

  const auto& merges = ja::get_array(config, "merges", where);
  model->merges_.build(merges.size());
  auto id_of = [&](const std::string& token, std::size_t rank, const std::string& merge) {
    const int32_t id = model->token_to_id(token);
    MLAB_CHECK(id >= 0, where, ": merge #", rank, " (", merge, ") names '", token,
               "', which is not in the vocabulary");
    return id;
  };
  std::string left, right;
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& merge = merges[rank];
    if (merge.is_string()) {
      const auto& text = merge.get_ref<const std::string&>();
      const std::size_t space = text.find(' ');
      MLAB_CHECK(space != std::string::npos, where, ": merge #", rank, " '", text,
                 "' must be two tokens separated by a space");
      left.assign(text, 0, space);
      right.assign(text, space + 1);
    } else {
      MLAB_CHECK(
          merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string(),
          where, ": merge #", rank, " must be \"a b\" or [\"a\", \"b\"], got ", merge.dump());
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    }
    const std::string shown = merge.dump();
    const int32_t a = id_of(left, rank, shown);
    const int32_t b = id_of(right, rank, shown);
    const int32_t c = id_of(left + right, rank, shown);
    model->merges_.insert(a, b, static_cast<uint32_t>(rank), c);
  }
  return model;
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size() ||
      !has_id_[static_cast<std::size_t>(id)]) {
    return nullptr;
  }
  return &id_to_token_[static_cast<std::size_t>(id)];
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    if (const auto it = vocab_.find(piece); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = piece.size() <= kCacheMaxPiece;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (const auto it = cache_.find(piece); it != cache_.end()) {
      out.insert(out.end(), cache_ids_.begin() + it->second.offset,
                 cache_ids_.begin() + it->second.offset + it->second.length);
      return;
    }
  }
  const std::size_t first = out.size();
  merge_word(piece, out);
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kCacheMaxEntries) {
      cache_.clear();
      cache_ids_.clear();
    }
    const auto offset = static_cast<uint32_t>(cache_ids_.size());
    cache_ids_.insert(cache_ids_.end(), out.begin() + first, out.end());
    cache_.emplace(std::string(piece),
                   CacheEntry{offset, static_cast<uint32_t>(out.size() - first)});
  }
}

void BpeModel::merge_word(std::string_view piece, std::vector<int32_t>& out) const {
  auto& s = scratch();
  auto& symbols = s.symbols;
  symbols.clear();
  auto add = [&](int32_t id, uint32_t length) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, length});
  };
  // Initial symbols: one per character (tokenizers' merge_word).
  int32_t unk_id = -1;
  uint32_t unk_length = 0;  // pending unk run
  for (std::size_t pos = 0; pos < piece.size();) {
    const std::size_t n = utf8_length(static_cast<uint8_t>(piece[pos]));
    const std::string_view ch = piece.substr(pos, n);
    pos += n;
    if (const auto it = vocab_.find(ch); it != vocab_.end()) {
      if (unk_length > 0) {
        add(unk_id, unk_length);
        unk_length = 0;
      }
      add(it->second, static_cast<uint32_t>(n));
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (const char c : ch) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (const char c : ch) add(byte_ids_[static_cast<uint8_t>(c)], 1);
        continue;
      }
    }
    if (!unk_token_.empty()) {
      const int32_t id = token_to_id(unk_token_);
      MLAB_CHECK(id >= 0, "model.BPE: unk_token '", unk_token_, "' is not in the vocabulary");
      if (unk_length > 0 && fuse_unk_) {
        unk_length += static_cast<uint32_t>(n);
      } else {
        if (unk_length > 0) add(unk_id, unk_length);
        unk_id = id;
        unk_length = static_cast<uint32_t>(n);
      }
    }
  }
  if (unk_length > 0) add(unk_id, unk_length);
  if (symbols.empty()) return;
  symbols.back().next = -1;

  auto& heap = s.heap;
  heap.clear();
  const auto greater = std::greater<Candidate>{};
  uint32_t rank;
  int32_t result;
  for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (merges_.find(symbols[i].id, symbols[i + 1].id, rank, result)) {
      heap.push_back({rank, static_cast<uint32_t>(i), result});
    }
  }
  std::make_heap(heap.begin(), heap.end(), greater);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), greater);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    if (left.length == 0 || left.next < 0) continue;
    const Symbol right = symbols[static_cast<std::size_t>(left.next)];
    int32_t current;
    if (!merges_.find(left.id, right.id, rank, current) || current != top.result) continue;
    // Merge right into left.
    left.id = top.result;
    left.length += right.length;
    symbols[static_cast<std::size_t>(left.next)].length = 0;
    left.next = right.next;
    if (right.next >= 0)
      symbols[static_cast<std::size_t>(right.next)].prev = static_cast<int32_t>(top.pos);
    if (left.prev >= 0) {
      const Symbol& prev = symbols[static_cast<std::size_t>(left.prev)];
      if (merges_.find(prev.id, left.id, rank, result)) {
        heap.push_back({rank, static_cast<uint32_t>(left.prev), result});
        std::push_heap(heap.begin(), heap.end(), greater);
      }
    }
    if (left.next >= 0) {
      const Symbol& next = symbols[static_cast<std::size_t>(left.next)];
      if (merges_.find(left.id, next.id, rank, result)) {
        heap.push_back({rank, top.pos, result});
        std::push_heap(heap.begin(), heap.end(), greater);
      }
    }
  }
  for (int32_t i = 0; i >= 0; i = symbols[static_cast<std::size_t>(i)].next) {
    out.push_back(symbols[static_cast<std::size_t>(i)].id);
  }
}

}  // namespace mlab::tokenizer
