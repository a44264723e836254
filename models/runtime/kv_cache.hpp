#pragma once
// KvCache: the per-layer KV state of one attention layer (DESIGN.md §3, after llama.cpp's
// llama_memory_i). Attention owns the math of q/k/v; a cache owns storage and the attention over
// what it stores. Implementations: DenseKvCache (F3); quantized and latent caches come with the
// methods that need them.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string_view>

namespace mlab::models {

// How attention scores are computed: kSdpa = at::scaled_dot_product_attention (fused where the
// device has a kernel); kEager = explicit softmax in f32 (transformers' "eager" numerics).
enum class AttentionImpl { kSdpa, kEager };
// "sdpa" | "eager"; throws mlab::Error otherwise.
AttentionImpl parse_attention_impl(std::string_view name);
std::string_view attention_impl_name(AttentionImpl impl);

// The attention mask of L new queries over S cached tokens (the new ones last): a query sees the
// valid cached tokens up to its own position (causal, bottom-right aligned) and always itself
// (a padding query must stay finite). valid: bool [B, h, S] (h = 1 or per KV head) ->
// bool [B, h, L, S].
at::Tensor causal_padding_mask(const at::Tensor& valid, int64_t L);

// `t` with dimension `dim` enlarged to `capacity` entries, the first `size` of them copied.
at::Tensor grow_along(const at::Tensor& t, int64_t dim, int64_t capacity, int64_t size);

class KvCache {
 public:
  virtual ~KvCache() = default;

  // A short name for logs and results ("dense", ...).
  virtual std::string_view kind() const = 0;

  // Stores the keys and values of L new tokens. k, v: any [B, H_kv, L, D] (keys with RoPE
  // applied); valid: bool [B, L] (false = left padding: never attended by other tokens).
  virtual void append(const at::Tensor& k, const at::Tensor& v, const at::Tensor& valid) = 0;

  // Attention of the queries of the last L appended tokens over every cached token.
  // q: any [B, H, L, D] -> [B, H, L, D]. Query i sees the valid cached tokens up to its own
  // position (causal, bottom-right aligned); a padding query sees only itself (its output is
  // never used, but must stay finite). H must be a multiple of H_kv (GQA).
  virtual at::Tensor attend(const at::Tensor& q, double scale) = 0;

  // Keeps, for every batch row and KV head, the cached tokens at `indices` (i64 [B, H_kv, S'],
  // ascending), dropping the others (pruning methods).
  virtual void keep(const at::Tensor& indices) = 0;

  // S: cached tokens per row (padding included).
  virtual int64_t tokens() const = 0;
  // Bytes of the stored keys and values of the cached tokens (what the cache's format needs for
  // S tokens, scales and other per-token metadata included; spare capacity excluded).
  virtual int64_t bytes() const = 0;
  // Bytes allocated on the device, spare capacity included.
  virtual int64_t reserved_bytes() const = 0;
};

}  // namespace mlab::models
