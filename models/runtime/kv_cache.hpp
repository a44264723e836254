#pragma once
// KvCache: the per-layer KV state of one attention layer (DESIGN.md §3, after llama.cpp's
// llama_memory_i). Attention owns the math of q/k/v; a cache owns storage and the attention over
// what it stores. Implementations: DenseKvCache (F3); quantized and latent caches come with the
// methods that need them.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
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

// The attention statistic a pruning method scores tokens with (specs/baselines.md §6.3).
enum class AttentionStat {
  kNone,       // no attention needed (StreamingLLM: positions only)
  kLastQuery,  // probabilities of the last new query over the cached tokens (TOVA)
  kQuerySum,   // probabilities summed over the L new queries (H2O's accumulated attention)
};

// Elements of the f32 probability block [B, H, queries, S] an attention statistic is computed in
// (256 MiB): long prompts are summed over query blocks of this size, never all [L, S] at once.
inline constexpr int64_t kAttentionStatBlockElements = int64_t{1} << 26;

// A pruning policy (methods/h2o, methods/tova, methods/streaming_llm): one instance per layer
// cache, owning its per-token scores. The attention layer calls KvCache::prune() after every
// attention forward (prefill and decode); the policy keeps its state in step with the cache's
// token slots (slot i of its scores is slot i of the cache, before and after every keep()).
class TokenPruner {
 public:
  virtual ~TokenPruner() = default;
  // The statistic select() needs (computed only when not kNone).
  virtual AttentionStat stat() const = 0;
  // After an attention forward over the cache. L new tokens were appended as the last L slots
  // (S slots in all); stat: f32 [B, H, S] for the H query heads (undefined when stat() is kNone);
  // valid: bool [B, 1 | H_kv, S] (false = left padding or a pruned-away slot of a per-head
  // cache; undefined = all valid); image: bool [B, L] for
  // the new tokens (undefined = text); kv_heads: H_kv of the cache (1 for the MLA latent, whose
  // tokens are shared by every head). Returns i64 [B, H_kv | 1, S'] ascending slot indices to
  // keep (S' < S), or an undefined tensor to keep every slot. Never synchronises with the device
  // beyond what the cache sizes (host integers) already tell.
  virtual at::Tensor select(const at::Tensor& stat, const at::Tensor& valid,
                            const at::Tensor& image, int64_t new_tokens, int64_t kv_heads) = 0;
  // "h2o:budget=0.5,..." for logs.
  virtual std::string_view name() const = 0;
};

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

  // --- Pruning (methods that evict tokens; none by default) ---
  // The statistic of queries q over the cached keys, as TokenPruner::stat() asks: f32 [B, H, S].
  // q: any [B, H, L, D] (the queries just attended). The default throws (caches whose attention
  // is computed elsewhere, like the MLA latent, get their statistic from their attention layer).
  virtual at::Tensor attention_stat(const at::Tensor& q, double scale, AttentionStat which) const;
  // bool [B, 1 | H_kv, S]: validity of the cached tokens (false = left padding).
  virtual at::Tensor token_valid() const = 0;
  // How many token sets the cache can keep apart: H_kv for K/V caches (keep() takes one index
  // list per KV head), 1 for the MLA latent (shared by every head); 0 while empty.
  virtual int64_t kv_heads() const = 0;
  void set_pruner(std::unique_ptr<TokenPruner> pruner) { pruner_ = std::move(pruner); }
  TokenPruner* pruner() const { return pruner_.get(); }
  // Hands the statistic of the last attention forward (L new tokens; image: bool [B, L] or
  // undefined) to the pruner and applies its choice with keep(). No-op without a pruner.
  void prune(const at::Tensor& stat, const at::Tensor& image, int64_t new_tokens);

 protected:
  // Called at the end of prune() (whether or not tokens were dropped): a cache may release what
  // it kept for the pruner's statistic.
  virtual void after_prune() {}

 private:
  std::unique_ptr<TokenPruner> pruner_;
};

}  // namespace mlab::models
