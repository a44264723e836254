#pragma once
// StreamingLLM: attention sinks (Xiao et al. 2024, §3.2 "rolling KV cache with attention sinks"):
// the first `sink` valid tokens stay, and the most recent tokens fill the rest of the budget; the
// oldest tokens after the sinks are evicted first. No attention statistic is needed. Positions are
// not re-rotated (cached keys keep their original RoPE, as kvpress's StreamingLLMPress without
// KeyRerotationPress). One token set per layer.
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "methods/score_pruner.hpp"

namespace mlab::methods {

struct StreamingLlmOptions {
  PruneBudget budget{.sink = 4};
};

class StreamingLlmPruner final : public ScorePruner {
 public:
  // Throws mlab::Error for a budget without a size (ScorePruner).
  explicit StreamingLlmPruner(StreamingLlmOptions options);
  // From a method spec's options (keys: budget | tokens, sink; recent, recent_ratio and
  // protect_image are read too, though only protect_image changes the kept set). Parsed, not
  // range-checked.
  static std::unique_ptr<StreamingLlmPruner> from_options(
      const std::map<std::string, std::string>& options);

  models::AttentionStat stat() const override { return models::AttentionStat::kNone; }
  // "streaming_llm:budget=0.5,sink=4" (",protect_image=1" etc. when set).
  std::string_view name() const override { return name_; }
  const StreamingLlmOptions& options() const { return options_; }

 protected:
  // No scores: the eviction order is the age of the slots (ScorePruner's tie rule).
  at::Tensor score(const at::Tensor& stat, const at::Tensor& valid, int64_t new_tokens,
                   int64_t kv_heads) override;

 private:
  StreamingLlmOptions options_;
  std::string name_;
};

}  // namespace mlab::methods
