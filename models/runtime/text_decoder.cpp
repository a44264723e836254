#include "models/runtime/text_decoder.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"
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
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const DecoderLayer& layer = layers_[i];
    h = h +
        layer.attention->forward(nn::rms_norm(h, layer.input_norm, eps), rope, tokens, *caches[i]);
    const at::Tensor x = nn::rms_norm(h, layer.post_attention_norm, eps);
    const at::Tensor act = at::silu(nn::linear(x, layer.gate, layer.gate_bias)) *
                           nn::linear(x, layer.up, layer.up_bias);
    h = h + nn::linear(act, layer.down, layer.down_bias);
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
