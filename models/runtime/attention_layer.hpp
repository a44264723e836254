#pragma once
// AttentionLayer: the attention of one decoder layer, the unit a KV method swaps (DESIGN.md §3:
// MHA2MLA replaces GQA attention by latent attention; pruning and quantization keep the layer and
// change its cache).
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>

#include "models/runtime/kv_cache.hpp"
#include "models/runtime/rotary_embedding.hpp"

namespace mlab::models {

// What an attention layer knows about the L new tokens besides their hidden states.
struct TokenInfo {
  at::Tensor valid;  // bool [B, L]; undefined = every token valid (no padding)
  at::Tensor image;  // bool [B, L]: tokens of the image modality (MHA2MLA-VLM routes them to
                     // the image branch, specs/method.md §3.2); undefined = all text
};

// Called once per parameter tensor of a loaded model with its canonical checkpoint name and the
// tensor member itself (training sets requires_grad on it and updates it in place).
using ParameterVisitor = std::function<void(const std::string& name, at::Tensor& tensor)>;

class AttentionLayer {
 public:
  virtual ~AttentionLayer() = default;

  // x: any [B, L, E] (the normalised hidden states of L new tokens); rope: cos/sin of their
  // positions; tokens: padding and modality of the new tokens; cache: this layer's cache, which
  // receives the new tokens. Returns any [B, L, E] (after the output projection).
  virtual at::Tensor forward(const at::Tensor& x, const RopeTables& rope, const TokenInfo& tokens,
                             KvCache& cache) const = 0;

  // A fresh cache of the kind this layer needs, with room for `reserve_tokens`.
  virtual std::unique_ptr<KvCache> make_cache(AttentionImpl impl, int64_t reserve_tokens) const = 0;

  // Visits this layer's weights under `prefix` (e.g. "language_model.model.layers.0.self_attn."),
  // named as the checkpoint stores them (training, F8). Default: none (a wrapper that owns no
  // weights, e.g. the converter's observer).
  virtual void for_each_parameter(const std::string& prefix, const ParameterVisitor& visit) {
    (void)prefix;
    (void)visit;
  }
};

}  // namespace mlab::models
