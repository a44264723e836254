#pragma once
// MlaAttention: MHA2MLA-VLM's multi-head latent attention (Fan et al. 2026, §2; specs/method.md
// §2.6, §3.1, §3.6, §5.2). Per layer:
//   q = W_q x (rows permuted: the RoPE rows of every head, then the NoPE rows), RoPE on the r kept
//   dims only; k_rope = RoPE(W_kr x) per KV head; the joint latent c = W_dkv^m x of the token's
//   modality m (image | text) is cached with k_rope and the modality flag (LatentKvCache);
//   k_nope = W_uk^m c + b_k^m, v = W_uv^m c + b_v^m.
// Attention over the cache either reconstructs K/V (the authors' path; used for prefill) or
// absorbs W_uk into the query and applies W_uv after the weighted latent sum (§5.2; decode).
// Stage 1 (partial RoPE only) is the same layer without a down projection: c = x.
#include <ATen/core/Tensor.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/config/model_config.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/attention_layer.hpp"
#include "models/runtime/latent_kv_cache.hpp"

namespace mlab::models {

// One modality's low-rank K/V path.
struct MlaBranch {
  std::optional<at::Tensor> down;    // any [d_c, E]; nullopt in stage 1 (the latent is x itself)
  at::Tensor up_k;                   // any [H_kv * (D - r), d_c]
  at::Tensor up_v;                   // any [H_kv * D, d_c]
  std::optional<at::Tensor> k_bias;  // any [H_kv * (D - r)] (Qwen2)
  std::optional<at::Tensor> v_bias;  // any [H_kv * D] (Qwen2)
};

// How decode steps (L == 1) attend: absorbed latent attention (§5.2) or K/V reconstruction.
enum class MlaDecode { kAbsorbed, kReconstruct };

// The `mha2mla` block of a converted model's config.json.
struct MlaConfig {
  int stage = 2;          // 1: partial RoPE only (no latent compression); 2: MLA
  int64_t rope_dim = 32;  // r: RoPE dims kept per head (rope_dim_for_mla)
  int64_t d_kv = 0;       // latent per KV head (low_rank); d_c = H_kv * d_kv (stage 2)
  std::string strategy;   // partial_rope_version
  std::string svd_init;   // md | activation | weight (stage 2)
  // Kept frequencies [layer][kv head] (ascending, r/2 each).
  std::vector<std::vector<std::vector<int64_t>>> kept_frequencies;
  // Parses config.raw["mha2mla"]; nullopt when absent. Throws mlab::Error naming the key.
  static std::optional<MlaConfig> from_model_config(const ModelConfig& config);
};

class MlaAttention final : public AttentionLayer {
 public:
  // Loads a converted layer: <prefix>q_proj, k_r_proj, kv_proj_img.{down_kv,up_k,up_v},
  // kv_proj_text.{...}, o_proj (stage 1: kv_proj.{up_k,up_v}), shapes from `config` and `mla`.
  static std::unique_ptr<MlaAttention> load(Weights& weights, const TextConfig& config,
                                            const MlaConfig& mla, int64_t layer,
                                            const std::string& prefix);

  at::Tensor forward(const at::Tensor& x, const RopeTables& rope, const TokenInfo& tokens,
                     KvCache& cache) const override;
  std::unique_ptr<KvCache> make_cache(AttentionImpl impl, int64_t reserve_tokens) const override;
  // The names load() reads (stage 1: kv_proj.*, whose tensors `text` and `image` share, once).
  void for_each_parameter(const std::string& prefix, const ParameterVisitor& visit) override;

  // The columns of the D-wide cos/sin each KV head's RoPE dims use: [K_g, K_g + D/2] -> i64
  // [H_kv, r].
  static at::Tensor rope_index_for(const std::vector<std::vector<int64_t>>& kept, int64_t head_dim);

  // The tensors (public: the converter fills them, tests read them).
  int64_t heads = 0, kv_heads = 0, head_dim = 0, rope_dim = 0;
  at::Tensor q_weight;               // any [H*D, E], rows permuted (RoPE rows, then NoPE rows)
  std::optional<at::Tensor> q_bias;  // any [H*D] (Qwen2), permuted alike
  at::Tensor k_rope_weight;          // any [H_kv*r, E]
  std::optional<at::Tensor> k_rope_bias;
  MlaBranch text, image;
  at::Tensor o_weight;  // any [E, H*D]
  std::optional<at::Tensor> o_bias;
  at::Tensor rope_index;  // i64 [H_kv, r]
  MlaDecode decode = MlaDecode::kAbsorbed;
  AttentionImpl impl = AttentionImpl::kSdpa;

  // The latent of x for the given modality mask: any [B, L, d_c].
  at::Tensor latent(const at::Tensor& x, const at::Tensor& image_mask) const;
  // Attention of the queries over the cache by K/V reconstruction / by absorption.
  // q_rope: [B, H, L, r] rotated, q_nope: [B, H, L, D - r] -> [B, H, L, D].
  at::Tensor attend_reconstruct(const at::Tensor& q_rope, const at::Tensor& q_nope,
                                const LatentKvCache& cache) const;
  at::Tensor attend_absorbed(const at::Tensor& q_rope, const at::Tensor& q_nope,
                             const LatentKvCache& cache) const;
  // Masked absorbed logits of the new queries [from, from + count): f32 [B, H_kv, G*count, S].
  at::Tensor absorbed_scores(const at::Tensor& q_rope, const at::Tensor& q_nope,
                             const LatentKvCache& cache, int64_t from, int64_t count) const;
  // The pruning statistic over the latent tokens from the absorbed logits (specs/baselines.md
  // §6.2): f32 [B, H, S], the last query's probabilities or their sum over the L new queries.
  at::Tensor latent_attention_stat(const at::Tensor& q_rope, const at::Tensor& q_nope,
                                   const LatentKvCache& cache, AttentionStat which) const;
};

}  // namespace mlab::models
