#pragma once
// The vision side of LLaVA-1.5 and LLaVA-NeXT (specs/models.md §2.1-2.4): the CLIP ViT up to the
// deepest feature layer (§2.1), the two-layer GELU projector (§2.2) and LLaVA-NeXT's
// any-resolution packing (base tile, unpadded tile grid, image_newline after every grid row;
// §2.4). Mirrors transformers' CLIPVisionModel, LlavaMultiModalProjector and
// LlavaNextModel.pack_image_features.
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "models/config/model_config.hpp"
#include "models/nn/nn.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/attention_layer.hpp"

namespace mlab::models {

// Rows a LLaVA-NeXT image of original size height x width gets (the processor's placeholder
// expansion, specs §2.4): base tile (image_size / patch_size)^2 + H' (W' + 1) for the unpadded
// grid H' x W'. `config` must be a llava_next config with strategy "default"; throws mlab::Error
// otherwise or for a non-positive size.
int64_t llava_next_image_tokens(const ModelConfig& config, int64_t height, int64_t width);

// (gh, gw): the tile grid select_best_resolution gives an image of height x width (§2.4,
// transformers' get_anyres_image_grid_shape); the image has 1 + gh * gw tiles.
std::array<int64_t, 2> llava_next_grid_shape(const ModelConfig& config, int64_t height,
                                             int64_t width);

class LlavaVision {
 public:
  // Loads the CLIP tower up to the deepest feature layer (the later layers and post_layernorm are
  // only expect()ed), the projector and, for llava_next, image_newline [text hidden]. Throws
  // mlab::Error for another family, a missing CLIP config, a wrong shape or a missing tensor, an
  // unknown strategy, or strategy "full" with llava_next (transformers rejects it too).
  static LlavaVision load(Weights& weights, const ModelConfig& config);

  // CLIP (§2.1): pixel_values [N, 3, S, S] (any float dtype and device; cast to the weights'),
  // S = image_size -> compute dtype [N, T, C * len(vision_feature_layer)], T = patches (strategy
  // "default") or patches + 1 ("full", CLS first); several feature layers are concatenated on
  // the channel dimension in config order.
  at::Tensor tower_features(const at::Tensor& pixel_values) const;

  // Projector (§2.2): [..., C * len(vision_feature_layer)] -> [..., text hidden].
  at::Tensor project(const at::Tensor& features) const;

  // The rows that replace the image placeholder tokens, images in order: [sum_b tokens_b, text
  // hidden] in the compute dtype.
  //   llava: pixel_values [B, 3, S, S] -> B * T rows (image_sizes ignored).
  //   llava_next: pixel_values [B, P_max, 3, S, S] (tiles past 1 + gh * gw are padding) and
  //   image_sizes integer [B, 2] (original H, W) -> per image: base rows, then the unpadded grid
  //   with image_newline after each row (§2.4).
  // Throws mlab::Error for a wrong rank / channel count / side, a missing image_sizes
  // (llava_next), image_sizes not [B, 2], or fewer tiles than an image needs.
  at::Tensor image_features(const at::Tensor& pixel_values,
                            const std::optional<at::Tensor>& image_sizes) const;

  // Rows image_features gives for an image of original size height x width (llava: T whatever
  // the size). Equals the processor's placeholder expansion.
  int64_t image_tokens(int64_t height, int64_t width) const;

  // Visits the loaded weights under their canonical names (training, F8): the CLIP layers that
  // run (patch_embedding as stored here, flattened to [C, 3 * P * P]), the projector and, for
  // llava_next, image_newline.
  void for_each_parameter(const ParameterVisitor& visit);

  const ModelConfig& config() const { return config_; }

 private:
  struct ClipLayer {
    at::Tensor ln1_w, ln1_b, ln2_w, ln2_b;  // [C]
    at::Tensor q_w, k_w, v_w, o_w;          // [C, C]
    at::Tensor q_b, k_b, v_b, o_b;          // [C]
    at::Tensor fc1_w, fc1_b;                // [I, C], [I]
    at::Tensor fc2_w, fc2_b;                // [C, I], [C]
  };

  explicit LlavaVision(ModelConfig config) : config_(std::move(config)) {}
  void load_tower(Weights& weights);
  void load_projector(Weights& weights);
  // [N, 3, S, S] -> hidden_states[0] [N, 1 + patches, C] (embeddings + pre_layrnorm).
  at::Tensor embed(const at::Tensor& pixel_values) const;
  // One pre-norm encoder layer: [N, T, C] -> [N, T, C].
  at::Tensor clip_layer(const ClipLayer& layer, const at::Tensor& h) const;
  at::Tensor llava_features(const at::Tensor& pixel_values) const;
  at::Tensor llava_next_features(const at::Tensor& pixel_values,
                                 const at::Tensor& image_sizes) const;
  // One image's tiles after the projector [1 + gh * gw, patches, D] -> its packed rows (§2.4).
  at::Tensor pack(const at::Tensor& tiles, int64_t height, int64_t width) const;
  void check_pixel_tile_shape(const at::Tensor& pixel_values, int64_t tile_dim) const;

  ModelConfig config_;
  ClipVisionConfig clip_;
  std::vector<int64_t> feature_layers_;  // hidden_states indices, made non-negative
  int64_t layers_to_run_ = 0;            // max(feature_layers_): encoder layers evaluated
  nn::Activation clip_act_ = nn::Activation::kQuickGelu;
  nn::Activation projector_act_ = nn::Activation::kGelu;
  c10::ScalarType dtype_ = c10::kFloat;
  c10::Device device_ = c10::Device(c10::kCPU);

  at::Tensor class_embedding_;                   // [C]
  at::Tensor patch_embedding_;                   // [C, 3 * P * P] (the conv kernel, flattened)
  at::Tensor position_embedding_;                // [1 + patches, C]
  at::Tensor pre_ln_w_, pre_ln_b_;               // [C]
  std::vector<ClipLayer> layers_;                // layers_to_run_ entries
  at::Tensor proj1_w_;                           // [text hidden, C * len(feature layers)]
  at::Tensor proj2_w_;                           // [text hidden, text hidden]
  std::optional<at::Tensor> proj1_b_, proj2_b_;  // [text hidden] (multimodal_projector_bias)
  at::Tensor image_newline_;                     // llava_next: [text hidden]
};

}  // namespace mlab::models
