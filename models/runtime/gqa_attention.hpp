#pragma once
// GqaAttention: Llama / Qwen2 self-attention (specs/models.md §3.1-3.2): q/k/v projections (Qwen2
// with biases), RoPE on q and k, grouped-query attention over a DenseKvCache, output projection.
#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

#include "models/config/model_config.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/attention_layer.hpp"

namespace mlab::models {

class GqaAttention final : public AttentionLayer {
 public:
  // Loads <prefix>q_proj ... o_proj (prefix e.g. "model.layers.3.self_attn.").
  static std::unique_ptr<GqaAttention> load(Weights& weights, const TextConfig& config,
                                            const std::string& prefix);

  at::Tensor forward(const at::Tensor& x, const RopeTables& rope, const TokenInfo& tokens,
                     KvCache& cache) const override;
  std::unique_ptr<KvCache> make_cache(AttentionImpl impl, int64_t reserve_tokens) const override;
  void for_each_parameter(const std::string& prefix, const ParameterVisitor& visit) override;

  // The projections, public for conversion (MHA2MLA reads them).
  at::Tensor q_weight, k_weight, v_weight, o_weight;  // any [H*D, E], [H_kv*D, E] x2, [E, H*D]
  std::optional<at::Tensor> q_bias, k_bias, v_bias;   // any [H*D], [H_kv*D] x2 (Qwen2)
  std::optional<at::Tensor> o_bias;                   // any [E]
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
};

}  // namespace mlab::models
