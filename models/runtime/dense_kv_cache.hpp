#pragma once
// DenseKvCache: full-precision GQA keys and values, [B, H_kv, S, D], in a buffer that grows by
// doubling (amortised O(1) appends). The `full` method's cache and the reference for every other.
#include <ATen/core/Tensor.h>

#include "models/runtime/kv_cache.hpp"

namespace mlab::models {

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

  // Views of the cached tokens: any [B, H_kv, S, D]; valid: bool [B, 1 | H_kv, S].
  at::Tensor keys() const;
  at::Tensor values() const;
  at::Tensor valid() const;

 private:
  void grow(int64_t needed);
  at::Tensor mask_for(int64_t L, int64_t n_rep) const;

  AttentionImpl impl_;
  int64_t reserve_tokens_;
  at::Tensor k_;      // any [B, H_kv, capacity, D]
  at::Tensor v_;      // any [B, H_kv, capacity, D]
  at::Tensor valid_;  // bool [B, 1 | H_kv, capacity] (per head once keep() pruned per head)
  int64_t size_ = 0;
  bool all_valid_ = true;  // no padding and no pruning so far: plain causal attention
};

}  // namespace mlab::models
