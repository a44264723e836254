#pragma once
// TextDecoder: the Llama (LLaVA-1.5 Vicuna, LLaVA-NeXT Llama-3) and Qwen2 (Qwen2.5-VL) decoder
// stacks (specs/models.md §3): embeddings, pre-norm blocks of attention + SwiGLU MLP with
// RMSNorm, final norm, LM head.
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/config/model_config.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/attention_layer.hpp"
#include "models/runtime/kv_cache.hpp"

namespace mlab::models {

struct DecoderLayer {
  at::Tensor input_norm;                      // any [E]
  at::Tensor post_attention_norm;             // any [E]
  std::unique_ptr<AttentionLayer> attention;  // GqaAttention unless a method swapped it
  at::Tensor gate, up, down;                  // any [I, E], [I, E], [E, I]
  std::optional<at::Tensor> gate_bias, up_bias, down_bias;  // mlp_bias only
};

// One cache per layer, in layer order.
using KvCaches = std::vector<std::unique_ptr<KvCache>>;

// Makes the cache of one layer (a KV method's choice of storage and eviction, methods/): the
// layer index, its attention (whose make_cache() gives the default), the attention
// implementation and the tokens to reserve room for.
using CacheFactory = std::function<std::unique_ptr<KvCache>(
    int64_t layer, const AttentionLayer& attention, AttentionImpl impl, int64_t reserve_tokens)>;

class TextDecoder {
 public:
  // Loads the decoder of `config`: LLaVA families under "language_model.model." with the head
  // "language_model.lm_head.weight", Qwen2.5-VL under "model." with "lm_head.weight" (a tied
  // head reuses the embeddings).
  static TextDecoder load(Weights& weights, const ModelConfig& config);

  // ids: i64 [B, L] -> any [B, L, E]. Throws mlab::Error for an id outside the embedding.
  at::Tensor embed(const at::Tensor& ids) const;

  // h: any [B, L, E] (embeddings of L new tokens); rope: their cos/sin; tokens: their padding
  // and modality; caches: one per layer (make_caches). Returns the final-normed hidden states
  // any [B, L, E].
  at::Tensor forward(at::Tensor h, const RopeTables& rope, const TokenInfo& tokens,
                     KvCaches& caches) const;

  // hidden: any [..., E] -> logits f32 [..., V] (the head runs in the weights' dtype).
  at::Tensor logits(const at::Tensor& hidden) const;

  // One cache per layer: each attention's own kind, or what `factory` makes when given.
  KvCaches make_caches(AttentionImpl impl, int64_t reserve_tokens,
                       const CacheFactory& factory = {}) const;

  // Visits every weight of the decoder under its canonical checkpoint name (embeddings, per layer
  // the norms, the attention's tensors and the MLP, the final norm, the head; a tied head is not
  // visited twice), in that order (training, F8).
  void for_each_parameter(const ParameterVisitor& visit);

  // Activation checkpointing (F8, `mla-bench train --activation-checkpointing`; HF's
  // gradient_checkpointing): with it on and grad mode on, forward() keeps no activations inside
  // the layers (each layer's input only) and the backward reruns each layer into a fresh cache
  // of the layer's own kind (attention make_cache with `impl`, the caller's cache
  // implementation). Needs empty caches from make_caches() without a factory (a training forward).
  // Off by default; without grad mode forward() is the same either way.
  void set_activation_checkpointing(bool on, AttentionImpl impl) {
    checkpoint_impl_ = on ? std::optional<AttentionImpl>(impl) : std::nullopt;
  }
  bool activation_checkpointing() const { return checkpoint_impl_.has_value(); }

  const TextConfig& config() const { return config_; }
  std::vector<DecoderLayer>& layers() { return layers_; }
  const std::vector<DecoderLayer>& layers() const { return layers_; }

 private:
  TextConfig config_;
  std::string prefix_;     // "language_model.model." (LLaVA) | "model." (Qwen2.5-VL)
  std::string head_name_;  // the head's canonical name; empty when tied to the embeddings
  at::Tensor embed_tokens_;  // any [V, E]
  std::vector<DecoderLayer> layers_;
  at::Tensor norm_;     // any [E]
  at::Tensor lm_head_;  // any [V, E]
  std::optional<AttentionImpl> checkpoint_impl_;  // set: activation checkpointing on
};

}  // namespace mlab::models
