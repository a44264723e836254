#pragma once
// TOVA: Token Omission Via Attention (Oren et al. 2024, §3; schwartz-lab-NLP/TOVA
// src/tova_cache.py, specs/baselines.md §5.1): after every attention forward, a slot's score is
// the last query's attention probability averaged over ALL query heads, replaced (not
// accumulated) each forward; the lowest-scoring slots are evicted down to the budget, one token
// set per layer (every KV head keeps the same slots). Official TOVA protects nothing (sink 0,
// recent 0); EasyKV's variant uses sink 4 + recent_ratio 0.1, kvpress's TOVAPress keeps the last
// token (recent=1).
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "methods/score_pruner.hpp"

namespace mlab::methods {

struct TovaOptions {
  PruneBudget budget{.sink = 0, .recent = 0};
};

class TovaPruner final : public ScorePruner {
 public:
  // Throws mlab::Error for a budget without a size (ScorePruner).
  explicit TovaPruner(TovaOptions options);
  // From a method spec's options (keys: budget | tokens, sink, recent, recent_ratio,
  // protect_image; absent keys take TovaOptions' defaults). Parsed, not range-checked.
  static std::unique_ptr<TovaPruner> from_options(
      const std::map<std::string, std::string>& options);

  models::AttentionStat stat() const override { return models::AttentionStat::kLastQuery; }
  // "tova:budget=0.5,sink=0,recent=0,recent_ratio=0,protect_image=0"
  std::string_view name() const override { return name_; }
  const TovaOptions& options() const { return options_; }

 protected:
  // stat: f32 [B, H, S], the last new query's probabilities -> f32 [B, 1, S] (mean over H).
  at::Tensor score(const at::Tensor& stat, const at::Tensor& valid, int64_t new_tokens,
                   int64_t kv_heads) override;

 private:
  TovaOptions options_;
  std::string name_;
};

}  // namespace mlab::methods
