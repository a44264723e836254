#pragma once
// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): split normalized text into the pieces the
// model encodes independently (Hugging Face tokenizers' pre_tokenizers/*.rs). Supported types:
// Sequence, Split (String or Regex pattern, every SplitDelimiterBehavior, invert), ByteLevel,
// Metaspace. Others fail at load time with an error naming the type.
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace mlab::tokenizer {

// Pieces of one input stretch: byte ranges into one buffer, in order.
struct PieceList {
  struct Piece {
    std::size_t begin = 0;
    std::size_t end = 0;
    bool at_origin = false;  // starts at offset 0 of the original input (Metaspace "first")
  };
  std::string text;
  std::vector<Piece> pieces;

  std::string_view view(const Piece& piece) const {
    return std::string_view(text).substr(piece.begin, piece.end - piece.begin);
  }
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `list` by its refined pieces; empty pieces are dropped.
  virtual void pre_tokenize(PieceList& list) const = 0;

  // Builds the pre-tokenizer described by a tokenizer.json "pre_tokenizer" object; throws
  // mlab::Error naming the component for unknown types, malformed fields and bad regexes.
  static std::unique_ptr<PreTokenizer> from_json(const nlohmann::json& config);
};

}  // namespace mlab::tokenizer
