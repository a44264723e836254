#pragma once
// H2O: heavy-hitter oracle (Zhang et al. 2023, §3.3, FMInference/H2O utils_real_drop) as EasyKV's
// h2o_head runs it (specs/baselines.md §4): after every attention forward each cached slot adds
// the attention it received from the new queries (a new slot starts with its own column sum),
// and the slots with the lowest accumulated attention outside the sinks and the recent window are
// evicted (ScorePruner). GQA: the statistic of the G = H / H_kv query heads of a KV head is
// averaged (EasyKV's A.reshape(B, H_kv, G, q, k).mean(2)), giving a token set per KV head, or
// over all H heads for one set per layer (per_kv_head = false; an MLA latent is always one set).
// normalize divides a slot's sum by the number of queries that saw it: one-shot after a prefill
// of n tokens this is kvpress's ObservedAttentionPress, score_j = Σ_i A[i, j] / (n − j).
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "methods/score_pruner.hpp"

namespace mlab::methods {

struct H2oOptions {
  // EasyKV defaults: 4 sink tokens (temp_length), a recent window of int(0.1 * budget).
  PruneBudget budget{.sink = 4, .recent_ratio = 0.1};
  bool per_kv_head = true;  // one token set per KV head (EasyKV h2o_head), else per layer
  bool normalize = false;   // mean instead of sum over the queries that saw a slot (kvpress)
};

class H2oPruner final : public ScorePruner {
 public:
  // Throws mlab::Error for a budget without a size (ScorePruner).
  explicit H2oPruner(H2oOptions options);
  // From a method spec's options (keys: budget | tokens, sink, recent, recent_ratio,
  // protect_image, per_kv_head, normalize; absent keys take H2oOptions' defaults). Values are
  // parsed, not range-checked (methods/kv_memory.cpp validates specs).
  static std::unique_ptr<H2oPruner> from_options(const std::map<std::string, std::string>& options);

  models::AttentionStat stat() const override { return models::AttentionStat::kQuerySum; }
  // "h2o:budget=0.5,sink=4,recent=0,recent_ratio=0.1,protect_image=0,per_kv_head=1,normalize=0"
  std::string_view name() const override { return name_; }
  const H2oOptions& options() const { return options_; }
  // f32 [B, 1 | H_kv, S]: the accumulated attention of every cached slot (undefined before the
  // first forward).
  const at::Tensor& accumulated() const { return accumulated_; }

 protected:
  // stat: f32 [B, H, S], the new queries' probabilities summed over the queries.
  at::Tensor score(const at::Tensor& stat, const at::Tensor& valid, int64_t new_tokens,
                   int64_t kv_heads) override;
  void gather(const at::Tensor& keep) override;

 private:
  H2oOptions options_;
  std::string name_;
  at::Tensor accumulated_;  // f32 [B, h, S]
  at::Tensor observers_;    // f32 [B, h, S]: valid queries that saw each slot (normalize only)
};

}  // namespace mlab::methods
