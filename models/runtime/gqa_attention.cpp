#include "models/runtime/gqa_attention.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "models/nn/nn.hpp"
#include "models/runtime/dense_kv_cache.hpp"

namespace mlab::models {

std::unique_ptr<GqaAttention> GqaAttention::load(Weights& weights, const TextConfig& config,
                                                 const std::string& prefix) {
  auto a = std::make_unique<GqaAttention>();
  a->heads = config.num_attention_heads;
  a->kv_heads = config.num_key_value_heads;
  a->head_dim = config.head_dim;
  const int64_t E = config.hidden_size, qd = a->heads * a->head_dim,
                kvd = a->kv_heads * a->head_dim;
  a->q_weight = weights.take(prefix + "q_proj.weight", {qd, E});
  a->k_weight = weights.take(prefix + "k_proj.weight", {kvd, E});
  a->v_weight = weights.take(prefix + "v_proj.weight", {kvd, E});
  a->o_weight = weights.take(prefix + "o_proj.weight", {E, qd});
  if (config.attention_bias) {
    a->q_bias = weights.take(prefix + "q_proj.bias", {qd});
    a->k_bias = weights.take(prefix + "k_proj.bias", {kvd});
    a->v_bias = weights.take(prefix + "v_proj.bias", {kvd});
  }
  if (config.attention_out_bias) a->o_bias = weights.take(prefix + "o_proj.bias", {E});
  return a;
}

at::Tensor GqaAttention::forward(const at::Tensor& x, const RopeTables& rope,
                                 const TokenInfo& tokens, KvCache& cache) const {
  const int64_t B = x.size(0), L = x.size(1);
  // [B, L, H*D] -> [B, H, L, D]
  auto heads_first = [&](const at::Tensor& t, int64_t h) {
    return t.view({B, L, h, head_dim}).transpose(1, 2);
  };
  at::Tensor q = heads_first(nn::linear(x, q_weight, q_bias), heads);
  at::Tensor k = heads_first(nn::linear(x, k_weight, k_bias), kv_heads);
  at::Tensor v = heads_first(nn::linear(x, v_weight, v_bias), kv_heads);
  q = nn::apply_rotary(q, rope.cos, rope.sin);
  k = nn::apply_rotary(k, rope.cos, rope.sin);
  cache.append(k, v, tokens.valid);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  at::Tensor o = cache.attend(q, scale);  // [B, H, L, D]
  if (TokenPruner* p = cache.pruner()) {
    // A pruning method scores the tokens with this forward's attention, then evicts.
    const AttentionStat which = p->stat();
    cache.prune(
        which == AttentionStat::kNone ? at::Tensor() : cache.attention_stat(q, scale, which),
        tokens.image, L);
  }
  return nn::linear(o.transpose(1, 2).reshape({B, L, heads * head_dim}), o_weight, o_bias);
}

std::unique_ptr<KvCache> GqaAttention::make_cache(AttentionImpl impl,
                                                  int64_t reserve_tokens) const {
  return std::make_unique<DenseKvCache>(impl, reserve_tokens);
}

void GqaAttention::for_each_parameter(const std::string& prefix, const ParameterVisitor& visit) {
  visit(prefix + "q_proj.weight", q_weight);
  if (q_bias) visit(prefix + "q_proj.bias", *q_bias);
  visit(prefix + "k_proj.weight", k_weight);
  if (k_bias) visit(prefix + "k_proj.bias", *k_bias);
  visit(prefix + "v_proj.weight", v_weight);
  if (v_bias) visit(prefix + "v_proj.bias", *v_bias);
  visit(prefix + "o_proj.weight", o_weight);
  if (o_bias) visit(prefix + "o_proj.bias", *o_bias);
}

}  // namespace mlab::models
