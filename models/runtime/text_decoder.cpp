#include "models/runtime/text_decoder.hpp"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "core/error.hpp"
#include "models/runtime/activation_checkpoint.hpp"
#include "models/nn/nn.hpp"
#include "models/runtime/gqa_attention.hpp"
#include "models/runtime/mla_attention.hpp"

namespace mlab::models {

namespace {

DecoderLayer load_layer(Weights& w, const TextConfig& c, const std::optional<MlaConfig>& mla,
                        int64_t index, const std::string& prefix) {
  const int64_t E = c.hidden_size, I = c.intermediate_size;
  DecoderLayer layer;
  layer.input_norm = w.take(prefix + "input_layernorm.weight", {E});
  layer.post_attention_norm = w.take(prefix + "post_attention_layernorm.weight", {E});
  if (mla) {
    layer.attention = MlaAttention::load(w, c, *mla, index, prefix + "self_attn.");
  } else {
    layer.attention = GqaAttention::load(w, c, prefix + "self_attn.");
  }
  layer.gate = w.take(prefix + "mlp.gate_proj.weight", {I, E});
  layer.up = w.take(prefix + "mlp.up_proj.weight", {I, E});
  layer.down = w.take(prefix + "mlp.down_proj.weight", {E, I});
  if (c.mlp_bias) {
    layer.gate_bias = w.take(prefix + "mlp.gate_proj.bias", {I});
    layer.up_bias = w.take(prefix + "mlp.up_proj.bias", {I});
    layer.down_bias = w.take(prefix + "mlp.down_proj.bias", {E});
  }
  return layer;
}

// One pre-norm block (the Llama / Qwen2 decoder layer): attention, then the SwiGLU MLP, each
// added to the residual stream.
at::Tensor layer_forward(const DecoderLayer& layer, const at::Tensor& h, const RopeTables& rope,
                         const TokenInfo& tokens, KvCache& cache, double eps) {
  const at::Tensor a =
      h + layer.attention->forward(nn::rms_norm(h, layer.input_norm, eps), rope, tokens, cache);
  const at::Tensor x = nn::rms_norm(a, layer.post_attention_norm, eps);
  const at::Tensor act = at::silu(nn::linear(x, layer.gate, layer.gate_bias)) *
                         nn::linear(x, layer.up, layer.up_bias);
  return a + nn::linear(act, layer.down, layer.down_bias);
}

}  // namespace

TextDecoder TextDecoder::load(Weights& w, const ModelConfig& config) {
  const TextConfig& c = config.text;
  MLAB_CHECK(c.hidden_act == "silu", "text hidden_act '", c.hidden_act,
             "' is not supported (Llama/Qwen2 use silu)");
  for (const auto& type : c.layer_types) {
    MLAB_CHECK(type == "full_attention", "layer type '", type,
               "' is not supported (sliding-window attention is off in the paper's models)");
  }
  const bool qwen = config.family == ModelFamily::kQwen2_5_VL;
  const std::string prefix = qwen ? "model." : "language_model.model.";
  const std::string head = qwen ? "lm_head.weight" : "language_model.lm_head.weight";
  const int64_t V = c.vocab_size, E = c.hidden_size;
  // A converted MHA2MLA-VLM model (config.json "mha2mla") has latent attention in every layer.
  const std::optional<MlaConfig> mla = MlaConfig::from_model_config(config);
  TextDecoder d;
  d.config_ = c;
  d.prefix_ = prefix;
  d.embed_tokens_ = w.take(prefix + "embed_tokens.weight", {V, E});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    d.layers_.push_back(load_layer(w, c, mla, i, prefix + "layers." + std::to_string(i) + "."));
  }
  d.norm_ = w.take(prefix + "norm.weight", {E});
  if (config.tie_word_embeddings && !w.contains(head)) {
    d.lm_head_ = d.embed_tokens_;
  } else {
    d.lm_head_ = w.take(head, {V, E});
    d.head_name_ = head;
  }
  return d;
}

at::Tensor TextDecoder::embed(const at::Tensor& ids) const {
  const int64_t V = embed_tokens_.size(0);
  if (ids.numel() > 0) {
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    MLAB_CHECK(lo >= 0 && hi < V, "token id ", lo < 0 ? lo : hi,
               " is outside the embedding table (", V, " rows)");
  }
  return at::embedding(embed_tokens_, ids.to(embed_tokens_.device()));
}

at::Tensor TextDecoder::forward(at::Tensor h, const RopeTables& rope, const TokenInfo& tokens,
                                KvCaches& caches) const {
  TORCH_CHECK(caches.size() == layers_.size(), "TextDecoder::forward: ", caches.size(),
              " caches for ", layers_.size(), " layers");
  const double eps = config_.rms_norm_eps;
  const bool checkpoint = checkpoint_impl_.has_value() && at::GradMode::is_enabled();
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const DecoderLayer& layer = layers_[i];
    if (!checkpoint) {
      h = layer_forward(layer, h, rope, tokens, *caches[i], eps);
      continue;
    }
    // Activation checkpointing (HF gradient_checkpointing: each decoder layer under
    // torch.utils.checkpoint): the forward appends to the caller's cache, the backward's rerun
    // to a fresh cache of the layer's own kind, so both attend over the same tokens. That holds
    // only when the caller's cache starts empty (a training forward's throwaway caches).
    MLAB_CHECK(caches[i]->tokens() == 0,
               "activation checkpointing needs empty caches (a one-shot forward), layer ", i,
               " holds ", caches[i]->tokens(), " tokens");
    std::vector<at::Tensor> params;
    const_cast<DecoderLayer&>(layer).attention->for_each_parameter(
        "", [&](const std::string&, at::Tensor& t) {
          if (t.requires_grad()) params.push_back(t);
        });
    for (const at::Tensor* t : {&layer.input_norm, &layer.post_attention_norm, &layer.gate,
                                &layer.up, &layer.down}) {
      if (t->requires_grad()) params.push_back(*t);
    }
    for (const auto* b : {&layer.gate_bias, &layer.up_bias, &layer.down_bias}) {
      if (*b && (*b)->requires_grad()) params.push_back(**b);
    }
    KvCache* cache = caches[i].get();
    const AttentionImpl impl = *checkpoint_impl_;
    // rope and tokens by value: the backward runs after this frame is gone.
    h = checkpointed(h, params,
                     [&layer, rope, tokens, cache, impl, eps](const at::Tensor& x, bool recompute) {
                       if (!recompute) return layer_forward(layer, x, rope, tokens, *cache, eps);
                       const auto fresh = layer.attention->make_cache(impl, x.size(1));
                       return layer_forward(layer, x, rope, tokens, *fresh, eps);
                     });
  }
  return nn::rms_norm(h, norm_, eps);
}

void TextDecoder::for_each_parameter(const ParameterVisitor& visit) {
  visit(prefix_ + "embed_tokens.weight", embed_tokens_);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    DecoderLayer& l = layers_[i];
    const std::string p = prefix_ + "layers." + std::to_string(i) + ".";
    visit(p + "input_layernorm.weight", l.input_norm);
    l.attention->for_each_parameter(p + "self_attn.", visit);
    visit(p + "post_attention_layernorm.weight", l.post_attention_norm);
    visit(p + "mlp.gate_proj.weight", l.gate);
    if (l.gate_bias) visit(p + "mlp.gate_proj.bias", *l.gate_bias);
    visit(p + "mlp.up_proj.weight", l.up);
    if (l.up_bias) visit(p + "mlp.up_proj.bias", *l.up_bias);
    visit(p + "mlp.down_proj.weight", l.down);
    if (l.down_bias) visit(p + "mlp.down_proj.bias", *l.down_bias);
  }
  visit(prefix_ + "norm.weight", norm_);
  if (!head_name_.empty()) visit(head_name_, lm_head_);
}

at::Tensor TextDecoder::logits(const at::Tensor& hidden) const {
  return nn::linear(hidden, lm_head_).to(at::kFloat);
}

KvCaches TextDecoder::make_caches(AttentionImpl impl, int64_t reserve_tokens,
                                  const CacheFactory& factory) const {
  KvCaches caches;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const AttentionLayer& attention = *layers_[i].attention;
    caches.push_back(factory ? factory(static_cast<int64_t>(i), attention, impl, reserve_tokens)
                             : attention.make_cache(impl, reserve_tokens));
    TORCH_CHECK(caches.back() != nullptr, "make_caches: the cache factory gave no cache for layer ",
                i);
  }
  return caches;
}

}  // namespace mlab::models
