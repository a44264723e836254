#pragma once
// Decoders of tokenizer.json ("decoder"): token strings -> text (tokenizers' decoders/*.rs,
// each a decode_chain over the token list, the results concatenated). Supported types: Sequence,
// ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace. Others fail at load time with an
// error naming the type.
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace mlab::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the token strings in place (may fuse them).
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;

  static std::unique_ptr<Decoder> from_json(const nlohmann::json& config);
};

}  // namespace mlab::tokenizer
