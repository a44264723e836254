#pragma once
// Tokenizer: a Hugging Face tokenizer.json runtime (model type BPE) that produces the same ids
// as the Python `tokenizers` library (0.23) and the same decoded text. Pipeline per input:
// added tokens are split off first (AddedVocabulary), every other stretch is normalized
// (Normalizer), pre-tokenized into pieces (PreTokenizer) and encoded piece by piece (BpeModel);
// with add_special_tokens the post-processor adds BOS/EOS (PostProcessor). Decoding maps ids
// to token strings and runs the decoder chain (Decoder).
//
// Thread safety: a Tokenizer is immutable after loading; encode/decode may run concurrently.
// No Torch dependency.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mlab::tokenizer {

class AddedVocabulary;
class BpeModel;
class Decoder;
class Normalizer;
class PostProcessor;
class PreTokenizer;

class Tokenizer {
 public:
  // Loads a tokenizer.json, or the tokenizer.json inside a model directory. Throws mlab::Error
  // ("tokenizer <path>: ...") for a missing/unreadable file, invalid JSON, unsupported component
  // types (named in the message) and malformed fields.
  static Tokenizer from_file(const std::filesystem::path& path);
  // Same from parsed JSON; `source` names it in error messages.
  static Tokenizer from_json(const nlohmann::json& config, std::string source);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of `text` (UTF-8; throws mlab::Error at the first invalid byte). Added tokens
  // written in the text are always recognised; add_special_tokens only controls the
  // post-processor (e.g. the BOS of Llama-2/Mistral).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  // Text of `ids` as tokenizers' Tokenizer.decode: unknown ids are skipped; with
  // skip_special_tokens the added tokens marked special are left out.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Id of a token string (added tokens first, then the model vocabulary); nullopt when absent.
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // Token string of an id (added tokens first); nullopt when absent.
  std::optional<std::string> id_to_token(int32_t id) const;
  // Number of distinct tokens, added tokens included (tokenizers' get_vocab_size(true)).
  std::size_t vocab_size() const;
  // True for ids of added tokens marked special.
  bool is_special(int32_t id) const;
  // The path or name the tokenizer was loaded from.
  const std::string& source() const { return source_; }

 private:
  Tokenizer();
  void encode_text(std::string_view text, bool at_origin, std::vector<int32_t>& ids) const;

  std::string source_;
  std::unique_ptr<AddedVocabulary> added_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
};

}  // namespace mlab::tokenizer

namespace mlab {
using tokenizer::Tokenizer;
}  // namespace mlab
