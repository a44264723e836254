// Pre-tokenizers (tokenizers/src/pre_tokenizers: sequence.rs, split.rs, byte_level.rs,
// metaspace.rs; the delimiter behaviours of tokenizer/normalizer.rs NormalizedString::split).
#include "models/tokenizer/pre_tokenizer.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "models/tokenizer/byte_level.hpp"
#include "models/tokenizer/json_access.hpp"
#include "models/tokenizer/regex.hpp"
#include "models/tokenizer/unicode.hpp"

namespace mlab::tokenizer {
namespace {

namespace ja = json_access;

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Range {
  std::size_t begin, end;
  bool is_match;
};

// Matches and gaps covering [0, text.size()) (tokenizers' Pattern::find_matches for regexes, over
// the onig crate's find_iter): empty matches are matches too (a split point), except one right at
// the end of the previous match; after an empty match the search goes on one character later.
// So an empty regex splits the text into its characters, as tokenizers does (F11 D11).
void find_matches(const Regex& regex, std::string_view text, std::vector<Range>& out) {
  out.clear();
  std::size_t prev = 0, start = 0, begin = 0, end = 0;
  bool matched = false;          // a match was accepted
  std::size_t last_match_end = 0;  // its end
  while (start <= text.size() && regex.find(text, start, begin, end)) {
    if (end == begin) {
      start = begin < text.size() ? begin + utf8_length(static_cast<uint8_t>(text[begin]))
                                  : text.size() + 1;
      if (matched && last_match_end == end) continue;  // empty right after a match
    } else {
      start = end;
    }
    matched = true;
    last_match_end = end;
    if (prev != begin) out.push_back({prev, begin, false});
    out.push_back({begin, end, true});
    prev = end;
  }
  if (prev != text.size()) out.push_back({prev, text.size(), false});
}

// Applies a delimiter behaviour to matches/gaps; appends the kept ranges (offset by `base`).
void split_ranges(std::vector<Range>& ranges, SplitBehavior behavior, bool invert,
                  std::vector<Range>& kept) {
  if (invert) {
    for (auto& r : ranges) r.is_match = !r.is_match;
  }
  kept.clear();
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const auto& r : ranges) kept.push_back({r.begin, r.end, false});
      break;
    case SplitBehavior::kRemoved:
      for (const auto& r : ranges) {
        if (!r.is_match) kept.push_back({r.begin, r.end, false});
      }
      break;
    case SplitBehavior::kContiguous:
      for (std::size_t i = 0; i < ranges.size(); ++i) {
        if (i > 0 && ranges[i].is_match == ranges[i - 1].is_match && !kept.empty()) {
          kept.back().end = ranges[i].end;
        } else {
          kept.push_back({ranges[i].begin, ranges[i].end, false});
        }
      }
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const auto& r : ranges) {
        if (r.is_match && !previous_match && !kept.empty()) {
          kept.back().end = r.end;
        } else {
          kept.push_back({r.begin, r.end, false});
        }
        previous_match = r.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (std::size_t i = ranges.size(); i-- > 0;) {
        const auto& r = ranges[i];
        if (r.is_match && !previous_match && !kept.empty()) {
          kept.back().begin = r.begin;
        } else {
          kept.push_back({r.begin, r.end, false});
        }
        previous_match = r.is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
  }
}

// Splits every piece with a regex; the text buffer is unchanged.
void split_pieces(PieceList& list, const Regex& regex, SplitBehavior behavior, bool invert) {
  std::vector<PieceList::Piece> out;
  out.reserve(list.pieces.size() * 4);
  std::vector<Range> ranges, kept;
  for (const auto& piece : list.pieces) {
    find_matches(regex, list.view(piece), ranges);
    split_ranges(ranges, behavior, invert, kept);
    for (const auto& r : kept) {
      if (r.end == r.begin) continue;
      out.push_back({piece.begin + r.begin, piece.begin + r.end, piece.at_origin && r.begin == 0});
    }
  }
  list.pieces.swap(out);
}

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void pre_tokenize(PieceList& list) const override {
    for (const auto& step : steps_) step->pre_tokenize(list);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(PieceList& list) const override {
    split_pieces(list, *pattern_.regex, behavior_, invert_);
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// GPT-2's byte-level pre-tokenizer: optional prefix space, optional GPT-2 regex split, then every
// byte replaced by its ByteLevelAlphabet character.
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) {
      regex_ = std::make_unique<Regex>(
          R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
    }
  }
  void pre_tokenize(PieceList& list) const override {
    const auto& alphabet = ByteLevelAlphabet::get();
    if (add_prefix_space_) {
      PieceList prefixed;
      prefixed.text.reserve(list.text.size() + list.pieces.size());
      for (const auto& piece : list.pieces) {
        const std::size_t begin = prefixed.text.size();
        if (list.text[piece.begin] != ' ') prefixed.text.push_back(' ');
        prefixed.text.append(list.view(piece));
        prefixed.pieces.push_back({begin, prefixed.text.size(), piece.at_origin});
      }
      list = std::move(prefixed);
    }
    if (regex_ != nullptr) split_pieces(list, *regex_, SplitBehavior::kIsolated, false);
    std::string mapped;
    mapped.reserve(list.text.size() + list.text.size() / 2);
    for (auto& piece : list.pieces) {
      const std::size_t begin = mapped.size();
      for (std::size_t i = piece.begin; i < piece.end; ++i) {
        mapped.append(alphabet.encode(static_cast<uint8_t>(list.text[i])));
      }
      piece.begin = begin;
      piece.end = mapped.size();
    }
    list.text.swap(mapped);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

// SentencePiece's metaspace: ' ' -> replacement, a replacement prepended (always / only at the
// input's start / never) unless already there, optionally split before each replacement.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {
    if (split_) regex_ = std::make_unique<Regex>(Regex::escape(replacement_));
  }
  void pre_tokenize(PieceList& list) const override {
    PieceList out;
    out.text.reserve(list.text.size() * 2);
    for (const auto& piece : list.pieces) {
      const std::size_t begin = out.text.size();
      const std::string_view text = list.view(piece);
      const bool starts = text.starts_with(replacement_) || text.starts_with(' ');
      if (!starts && (scheme_ == PrependScheme::kAlways ||
                      (scheme_ == PrependScheme::kFirst && piece.at_origin))) {
        out.text += replacement_;
      }
      for (const char c : text) {
        if (c == ' ')
          out.text += replacement_;
        else
          out.text.push_back(c);
      }
      out.pieces.push_back({begin, out.text.size(), piece.at_origin});
    }
    if (regex_ != nullptr) split_pieces(out, *regex_, SplitBehavior::kMergedWithNext, false);
    list = std::move(out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  std::unique_ptr<Regex> regex_;
};

SplitBehavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  MLAB_FAIL(where, ": unknown behavior '", name,
            "' (known: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

}  // namespace

std::unique_ptr<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& config) {
  const std::string type = ja::type_of(config, "pre_tokenizer");
  const std::string where = "pre_tokenizer." + type;
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& step : ja::get_array(config, "pretokenizers", where)) {
      steps.push_back(from_json(step));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Split") {
    Pattern pattern = parse_pattern(config, "pattern", where);
    const SplitBehavior behavior = parse_behavior(ja::get_string(config, "behavior", where), where);
    return std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior,
                                               ja::get_bool(config, "invert", where, false));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(
        ja::get_bool(config, "add_prefix_space", where, true),
        ja::get_bool(config, "use_regex", where, true));
  }
  if (type == "Metaspace") {
    std::string replacement = ja::get_string(config, "replacement", where);
    PrependScheme scheme = PrependScheme::kAlways;
    if (ja::has(config, "prepend_scheme")) {
      const std::string name = ja::get_string(config, "prepend_scheme", where);
      if (name == "always")
        scheme = PrependScheme::kAlways;
      else if (name == "first")
        scheme = PrependScheme::kFirst;
      else if (name == "never")
        scheme = PrependScheme::kNever;
      else
        MLAB_FAIL(where, ": unknown prepend_scheme '", name, "' (known: always, first, never)");
    } else if (!ja::get_bool(config, "add_prefix_space", where, true)) {
      scheme = PrependScheme::kNever;
    }
    return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme,
                                                   ja::get_bool(config, "split", where, true));
  }
  MLAB_FAIL("unsupported pre_tokenizer type '", type,
            "' (supported: Sequence, Split, ByteLevel, Metaspace)");
}

}  // namespace mlab::tokenizer
