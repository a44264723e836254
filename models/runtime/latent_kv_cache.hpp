#pragma once
// LatentKvCache: the MLA cache of MHA2MLA-VLM (specs/method.md §3.2, §5.2): per token the joint
// latent c (d_c = n_kv * d_kv), the RoPE part of the key per KV head (r dims, post-rotation) and
// the token's modality. Keys and values are never stored; MlaAttention attends over the latent
// with absorbed up-projections (or reconstructs K/V from it, the authors' reference path).
#include <ATen/core/Tensor.h>

#include <memory>

#include "models/runtime/kv_cache.hpp"
#include "models/runtime/quantizer.hpp"

namespace mlab::models {

class LatentKvCache final : public KvCache {
 public:
  explicit LatentKvCache(int64_t reserve_tokens = 0) : reserve_tokens_(reserve_tokens) {}

  std::string_view kind() const override { return "latent"; }

  // Stores the latent c (and the RoPE key too when `rope_too`) through `quantizer`, on the
  // schedule of QuantizedKvCache (transformers' QuantizedCache: prefill attended unquantized,
  // residual window of `residual` tokens, re-quantization of everything when it fills;
  // specs/baselines.md §6.2). Call before the first append. latent() / k_rope() then return the
  // values the attention reads (old tokens dequantized); bytes() counts the quantized format.
  void set_quantizer(std::shared_ptr<const Quantizer> quantizer, int64_t residual, bool rope_too);

  // c: any [B, L, d_c]; k_rope: any [B, H_kv, L, r] (rotated); image: bool [B, L] or undefined
  // (text); valid: bool [B, L] or undefined (all valid).
  void append_latent(const at::Tensor& c, const at::Tensor& k_rope, const at::Tensor& image,
                     const at::Tensor& valid);

  // The dense-cache entry points do not apply: MlaAttention computes attention over the latent
  // (a latent cache holds no K/V). Both throw mlab::Error saying so.
  void append(const at::Tensor& k, const at::Tensor& v, const at::Tensor& valid) override;
  at::Tensor attend(const at::Tensor& q, double scale) override;

  void keep(const at::Tensor& indices) override;  // i64 [B, 1, S'] (the latent is shared by heads)
  int64_t tokens() const override { return size_; }
  // Latent + RoPE-key bytes of the cached tokens (the E_MLA of specs/method.md §4.2; with a
  // quantizer: packed codes, scales, zero points and the residual window); the 1-bit modality
  // flag and the validity bit per token are not counted (flag_bytes()).
  int64_t bytes() const override;
  int64_t flag_bytes() const;  // ceil(2 bits * B * S / 8)
  int64_t reserved_bytes() const override;
  at::Tensor token_valid() const override { return valid().unsqueeze(1); }  // bool [B, 1, S]
  int64_t kv_heads() const override { return 1; }

  at::Tensor latent() const;  // any [B, S, d_c]
  at::Tensor k_rope() const;  // any [B, H_kv, S, r]
  at::Tensor image() const;   // bool [B, S]
  at::Tensor valid() const;   // bool [B, S]
  bool has_image() const { return has_image_; }
  bool all_valid() const { return all_valid_; }

  // bool [B, 1, L, S]: valid keys up to each query's position, and the query itself.
  at::Tensor mask(int64_t L) const;

 private:
  void grow(int64_t needed);
  // Writes the reconstruction of the quantized tokens into the buffers (once per quantization).
  void materialize();
  void quantize_stored();

  int64_t reserve_tokens_;
  at::Tensor c_;       // any [B, capacity, d_c]
  at::Tensor k_rope_;  // any [B, H_kv, capacity, r]
  at::Tensor image_;   // bool [B, capacity]
  at::Tensor valid_;   // bool [B, capacity]
  int64_t size_ = 0;
  bool has_image_ = false;
  bool all_valid_ = true;
  // Quantized storage (set_quantizer): tokens [0, quantized_) are held by q_c_ / q_rope_, the
  // next residual_used_ in full precision; the buffers above hold what the attention reads.
  std::shared_ptr<const Quantizer> quantizer_;
  int64_t residual_ = 0;
  bool rope_too_ = false;
  std::unique_ptr<QuantizedTensor> q_c_, q_rope_;
  int64_t quantized_ = 0;
  int64_t residual_used_ = 0;
  bool pending_ = false;  // the buffers still hold full precision where q_c_ now stands
};

}  // namespace mlab::models
