#pragma once
// QuantizedKvCache: keys and values stored by a Quantizer (Quanto- or HQQ-style packed codes with
// per-group scales and zero points) plus a full-precision residual window, on the schedule of
// transformers' QuantizedCache (QuantizedLayer.update; specs/baselines.md §2.4, §1.5-4):
//   - the first append (the prefill) quantizes its K/V, but attention of that forward uses the
//     unquantized K/V;
//   - every later append attends over cat(dequantize(Q), residual, new) and then, when
//     residual + new >= R, re-quantizes all of it (old tokens from their reconstruction) and
//     empties the residual, else appends the new tokens to the residual.
// The full-precision K/V an attention forward reads is materialized for that forward only (as
// transformers does), and released once the forward (and a pruner, if any) is done with it.
#include <ATen/core/Tensor.h>

#include <memory>
#include <utility>

#include "models/runtime/kv_cache.hpp"
#include "models/runtime/quantizer.hpp"

namespace mlab::models {

class QuantizedKvCache final : public KvCache {
 public:
  // key_quantizer / value_quantizer: the formats of K and V (axis_key / axis_value may differ);
  // residual: R, the residual window length (transformers' residual_length, default 128).
  QuantizedKvCache(std::shared_ptr<const Quantizer> key_quantizer,
                   std::shared_ptr<const Quantizer> value_quantizer, int64_t residual,
                   AttentionImpl impl = AttentionImpl::kSdpa);

  std::string_view kind() const override { return "quantized"; }
  void append(const at::Tensor& k, const at::Tensor& v, const at::Tensor& valid) override;
  at::Tensor attend(const at::Tensor& q, double scale) override;
  // Dequantizes, gathers and re-quantizes every kept token (the residual is emptied).
  void keep(const at::Tensor& indices) override;
  int64_t tokens() const override { return size_; }
  // Packed codes + scales + zero points + the residual window in the KV dtype.
  int64_t bytes() const override;
  // bytes() plus the full-precision K/V materialized for the current forward, if still held.
  int64_t reserved_bytes() const override;
  // bool [B, H_kv, S] (a view).
  at::Tensor token_valid() const override {
    return valid_.defined() ? valid_.expand({-1, kv_heads_, -1}) : valid_;
  }
  int64_t kv_heads() const override { return kv_heads_; }
  at::Tensor attention_stat(const at::Tensor& q, double scale, AttentionStat which) const override;

  int64_t quantized_tokens() const { return quantized_tokens_; }
  int64_t residual_tokens() const { return res_k_.defined() ? res_k_.size(2) : 0; }
  // The keys / values the last forward attended over: any [B, H_kv, S, D] (undefined once
  // released).
  const at::Tensor& current_keys() const { return cur_k_; }
  const at::Tensor& current_values() const { return cur_v_; }

 protected:
  void after_prune() override;

 private:
  void quantize_all(const at::Tensor& k, const at::Tensor& v);
  // cat(dequantize(Q), residual[, k_new]) for keys and values: what the cache holds, in full
  // precision (k_new / v_new undefined: nothing appended).
  std::pair<at::Tensor, at::Tensor> stored(const at::Tensor& k_new, const at::Tensor& v_new) const;

  std::shared_ptr<const Quantizer> key_quantizer_, value_quantizer_;
  int64_t residual_;
  AttentionImpl impl_;
  std::unique_ptr<QuantizedTensor> q_k_, q_v_;  // the quantized part: tokens [0, quantized_tokens_)
  int64_t quantized_tokens_ = 0;
  at::Tensor res_k_, res_v_;  // any [B, H_kv, R', D], R' < R (undefined = empty)
  at::Tensor cur_k_, cur_v_;  // any [B, H_kv, S, D]: what this forward attends over
  at::Tensor valid_;          // bool [B, 1 | H_kv, S]
  int64_t size_ = 0;
  int64_t kv_heads_ = 0;
  bool all_valid_ = true;
};

}  // namespace mlab::models
