#pragma once
// MKL: the frequency-wise KL sensitivity of MHA2MLA-VLM's modality-adaptive partial RoPE (Fan et
// al. 2026, §2.1, Eq. 2-3): I[l, h, k] = E_D[ KL(P_full || P_masked_k) ], P_masked_k being the
// attention distribution with the k-th rotary subspace (dims k and k + D/2) zero-ablated in the
// query and the key. Scored per KV head (the mean over the query heads of its group, as GQA
// shares one keep-set per KV head, specs/method.md §2.2) and averaged over sampled query
// positions of every calibration sequence, image and text tokens alike.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mlab::methods {

class MklScorer {
 public:
  // max_queries: query positions sampled per sequence (evenly spaced, the last one included).
  MklScorer(int64_t layers, int64_t q_heads, int64_t kv_heads, int64_t head_dim,
            int64_t max_queries = 64);

  // One sequence of T valid tokens of layer `layer`, after RoPE: q any [T, H, D], k any
  // [T, H_kv, D]; causal attention with scale D^-1/2.
  void add(int64_t layer, const at::Tensor& q, const at::Tensor& k);

  // f64 [L, H_kv, D/2]: the mean KL per (layer, KV head, frequency); layers never seen are 0.
  at::Tensor scores() const;
  int64_t sequences(int64_t layer) const;

 private:
  int64_t layers_, q_heads_, kv_heads_, head_dim_, max_queries_;
  at::Tensor sum_;    // f64 [L, H_kv, D/2]
  at::Tensor count_;  // f64 [L]
};

}  // namespace mlab::methods
