#pragma once
// DenseKvCache: full-precision GQA keys and values, [B, H_kv, S, D], in a buffer that grows by
// doubling (amortised O(1) appends). The `full` method's cache and the reference for every other.
#include <ATen/core/Tensor.h>

#include <functional>

#include "models/runtime/kv_cache.hpp"

namespace mlab::models {

// Attention of q over full-precision k/v with the validity mask of the cached tokens (the
// attention every dense-format cache shares). q: any [B, H, L, D]; k, v: any [B, H_kv, S, D];
// valid: bool [B, 1 | H_kv, S]; all_valid: no padding and no pruning (plain causal attention).
// Returns any [B, H, L, D].
at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& valid, bool all_valid, AttentionImpl impl,
                           double scale);
// The statistic `which` of L queries from their probabilities: probs(from, count) gives f32
// [B, H, count, S] for the queries [from, from + count) (per_query = B * H * S elements a
// query); kLastQuery returns the last one's row, kQuerySum the sum over all L, taken in blocks of
// kAttentionStatBlockElements so that long prompts never hold [L, S] at once. f32 [B, H, S].
at::Tensor reduce_attention_stat(AttentionStat which, int64_t L, int64_t per_query,
                                 const std::function<at::Tensor(int64_t, int64_t)>& probs);
// The pruning statistic of q over k (KvCache::attention_stat): f32 [B, H, S].
at::Tensor dense_attention_stat(const at::Tensor& q, const at::Tensor& k, const at::Tensor& valid,
                                double scale, AttentionStat which);

class DenseKvCache final : public KvCache {
 public:
  // `reserve_tokens` pre-allocates room (prompt + new tokens) on the first append.
  explicit DenseKvCache(AttentionImpl impl = AttentionImpl::kSdpa, int64_t reserve_tokens = 0);

  std::string_view kind() const override { return "dense"; }
  void append(const at::Tensor& k, const at::Tensor& v, const at::Tensor& valid) override;
  at::Tensor attend(const at::Tensor& q, double scale) override;
  void keep(const at::Tensor& indices) override;
  int64_t tokens() const override { return size_; }
  int64_t bytes() const override;
  int64_t reserved_bytes() const override;
  // bool [B, H_kv, S] (a view).
  at::Tensor token_valid() const override {
    return k_.defined() ? valid().expand({-1, k_.size(1), -1}) : valid();
  }
  int64_t kv_heads() const override { return k_.defined() ? k_.size(1) : 0; }
  // Probabilities of q over the cached keys with this cache's mask, f32 [B, H, S]: the last
  // query's row, or the sum over the L queries (computed in blocks of queries, never [L, S] at
  // once for long prompts).
  at::Tensor attention_stat(const at::Tensor& q, double scale, AttentionStat which) const override;

  // Views of the cached tokens: any [B, H_kv, S, D]; valid: bool [B, 1 | H_kv, S].
  at::Tensor keys() const;
  at::Tensor values() const;
  at::Tensor valid() const;

 private:
  void grow(int64_t needed);

  AttentionImpl impl_;
  int64_t reserve_tokens_;
  at::Tensor k_;      // any [B, H_kv, capacity, D]
  at::Tensor v_;      // any [B, H_kv, capacity, D]
  at::Tensor valid_;  // bool [B, 1 | H_kv, capacity] (per head once keep() pruned per head)
  int64_t size_ = 0;
  bool all_valid_ = true;  // no padding and no pruning so far: plain causal attention
};

}  // namespace mlab::models
