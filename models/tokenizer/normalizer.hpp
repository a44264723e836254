#pragma once
// Normalizers of tokenizer.json ("normalizer"): text -> text, applied to every stretch of input
// between added tokens (Hugging Face tokenizers' normalizers/*.rs). Supported types: Sequence,
// Prepend, Replace (String or Regex pattern), NFC, NFD, Strip. Others fail at load time with an
// error naming the type.
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace mlab::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites `text` (valid UTF-8) in place.
  virtual void normalize(std::string& text) const = 0;

  // Builds the normalizer described by a tokenizer.json "normalizer" object; throws mlab::Error
  // naming the component for unknown types and malformed fields.
  static std::unique_ptr<Normalizer> from_json(const nlohmann::json& config);
};

}  // namespace mlab::tokenizer
