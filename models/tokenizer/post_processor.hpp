#pragma once
// Post-processors of tokenizer.json ("post_processor"): the special tokens added around a single
// sequence when add_special_tokens is true (tokenizers' processors/*.rs). Supported types:
// TemplateProcessing (the "single" template), ByteLevel (no effect on ids), Sequence,
// RobertaProcessing, BertProcessing. Others fail at load time with an error naming the type.
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <vector>

namespace mlab::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Rewrites the ids of one encoded sequence (called only with add_special_tokens).
  virtual void process(std::vector<int32_t>& ids) const = 0;

  static std::unique_ptr<PostProcessor> from_json(const nlohmann::json& config);
};

}  // namespace mlab::tokenizer
