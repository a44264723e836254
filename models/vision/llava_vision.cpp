#include "models/vision/llava_vision.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.hpp"
#include "models/image/llava_next_image_processor.hpp"

namespace mlab::models {
namespace {

const std::string kTower = "vision_tower.vision_model.";

// Python's floor division (the padding of unpad_image may be computed from a negative difference).
int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Python's int(round(x, 7)) for x >= 0: round to 7 decimals, then truncate (specs §2.4).
int64_t int_round7(double x) {
  const auto scaled = static_cast<int64_t>(std::nearbyint(x * 1e7));
  return scaled / 10000000;
}

// unpad_image on a ch x cw token grid of an H x W image (§2.4): the kept [row, col) ranges.
struct Extent {
  int64_t row_begin, row_end, col_begin, col_end;
  int64_t rows() const { return row_end - row_begin; }
  int64_t cols() const { return col_end - col_begin; }
};

Extent unpad_extent(int64_t height, int64_t width, int64_t ch, int64_t cw) {
  const double original_aspect = static_cast<double>(width) / static_cast<double>(height);
  const double current_aspect = static_cast<double>(cw) / static_cast<double>(ch);
  if (original_aspect > current_aspect) {
    const double scale = static_cast<double>(cw) / static_cast<double>(width);
    const int64_t pad = floor_div(ch - int_round7(static_cast<double>(height) * scale), 2);
    return {pad, std::max(pad, ch - pad), 0, cw};
  }
  const double scale = static_cast<double>(ch) / static_cast<double>(height);
  const int64_t pad = floor_div(cw - int_round7(static_cast<double>(width) * scale), 2);
  return {0, ch, pad, std::max(pad, cw - pad)};
}

const ClipVisionConfig& clip_of(const ModelConfig& config) {
  MLAB_CHECK(config.clip_vision.has_value(), "LlavaVision: config of family '",
             family_name(config.family), "' has no CLIP vision_config");
  return *config.clip_vision;
}

void check_llava_next(const ModelConfig& config, const char* who) {
  MLAB_CHECK(config.family == ModelFamily::kLlavaNext, who, ": needs a llava_next config, got '",
             family_name(config.family), "'");
  MLAB_CHECK(config.vision_feature_select_strategy == "default", who,
             ": llava_next packing needs vision_feature_select_strategy 'default', got '",
             config.vision_feature_select_strategy, "' (transformers rejects it too)");
}

std::string shape_of(const at::Tensor& t) { return str_cat(t.sizes()); }

}  // namespace

std::array<int64_t, 2> llava_next_grid_shape(const ModelConfig& config, int64_t height,
                                             int64_t width) {
  const int64_t side = clip_of(config).image_size;
  const auto best = image::select_best_resolution(height, width, config.image_grid_pinpoints);
  const std::array<int64_t, 2> grid{best[0] / side, best[1] / side};
  MLAB_CHECK(grid[0] > 0 && grid[1] > 0, "llava_next: pinpoint ", best[0], "x", best[1],
             " is smaller than the tile side ", side);
  return grid;
}

int64_t llava_next_image_tokens(const ModelConfig& config, int64_t height, int64_t width) {
  check_llava_next(config, "llava_next_image_tokens");
  const ClipVisionConfig& clip = clip_of(config);
  const int64_t g = clip.image_size / clip.patch_size;
  const auto [gh, gw] = llava_next_grid_shape(config, height, width);
  const Extent kept = unpad_extent(height, width, g * gh, g * gw);
  return g * g + kept.rows() * (kept.cols() + 1);
}

// ---- loading ------------------------------------------------------------------------------

LlavaVision LlavaVision::load(Weights& weights, const ModelConfig& config) {
  MLAB_CHECK(config.family == ModelFamily::kLlava || config.family == ModelFamily::kLlavaNext,
             "LlavaVision: family '", family_name(config.family), "' is not llava or llava_next");
  LlavaVision v(config);
  v.clip_ = clip_of(config);
  const auto& strategy = config.vision_feature_select_strategy;
  MLAB_CHECK(strategy == "default" || strategy == "full",
             "LlavaVision: vision_feature_select_strategy must be 'default' or 'full', got '",
             strategy, "'");
  if (config.family == ModelFamily::kLlavaNext) check_llava_next(config, "LlavaVision");
  MLAB_CHECK(!config.vision_feature_layer.empty(), "LlavaVision: vision_feature_layer is empty");
  const int64_t states = v.clip_.num_hidden_layers + 1;  // hidden_states entries
  for (int64_t index : config.vision_feature_layer) {
    const int64_t resolved = index < 0 ? index + states : index;
    MLAB_CHECK(resolved >= 0 && resolved < states, "LlavaVision: vision_feature_layer ", index,
               " is outside the ", states, " hidden states of a ", states - 1, "-layer CLIP");
    v.feature_layers_.push_back(resolved);
    v.layers_to_run_ = std::max(v.layers_to_run_, resolved);
  }
  v.clip_act_ = nn::parse_activation(v.clip_.hidden_act);
  v.projector_act_ = nn::parse_activation(config.projector_hidden_act);
  v.dtype_ = weights.options().dtype;
  v.device_ = weights.options().device;
  v.load_tower(weights);
  v.load_projector(weights);
  return v;
}

void LlavaVision::load_tower(Weights& weights) {
  const int64_t c = clip_.hidden_size, i = clip_.intermediate_size, p = clip_.patch_size;
  const int64_t positions = clip_.num_patches() + 1;
  class_embedding_ = weights.take(kTower + "embeddings.class_embedding", {c});
  patch_embedding_ =
      weights.take(kTower + "embeddings.patch_embedding.weight", {c, clip_.num_channels, p, p})
          .reshape({c, -1});
  position_embedding_ =
      weights.take(kTower + "embeddings.position_embedding.weight", {positions, c});
  pre_ln_w_ = weights.take(kTower + "pre_layrnorm.weight", {c});
  pre_ln_b_ = weights.take(kTower + "pre_layrnorm.bias", {c});
  for (int64_t j = 0; j < clip_.num_hidden_layers; ++j) {
    const std::string prefix = kTower + "encoder.layers." + std::to_string(j) + ".";
    const bool used = j < layers_to_run_;  // hidden_states[k] is the output of layer k - 1
    auto get = [&](const std::string& name, std::vector<int64_t> shape) {
      if (used) return weights.take(prefix + name, std::move(shape));
      weights.expect(prefix + name, std::move(shape));
      return at::Tensor();
    };
    ClipLayer l;
    l.ln1_w = get("layer_norm1.weight", {c});
    l.ln1_b = get("layer_norm1.bias", {c});
    l.q_w = get("self_attn.q_proj.weight", {c, c});
    l.q_b = get("self_attn.q_proj.bias", {c});
    l.k_w = get("self_attn.k_proj.weight", {c, c});
    l.k_b = get("self_attn.k_proj.bias", {c});
    l.v_w = get("self_attn.v_proj.weight", {c, c});
    l.v_b = get("self_attn.v_proj.bias", {c});
    l.o_w = get("self_attn.out_proj.weight", {c, c});
    l.o_b = get("self_attn.out_proj.bias", {c});
    l.ln2_w = get("layer_norm2.weight", {c});
    l.ln2_b = get("layer_norm2.bias", {c});
    l.fc1_w = get("mlp.fc1.weight", {i, c});
    l.fc1_b = get("mlp.fc1.bias", {i});
    l.fc2_w = get("mlp.fc2.weight", {c, i});
    l.fc2_b = get("mlp.fc2.bias", {c});
    if (used) layers_.push_back(std::move(l));
  }
  // Part of CLIPVisionModel, never on the LLaVA path (§2.1).
  weights.expect(kTower + "post_layernorm.weight", {c});
  weights.expect(kTower + "post_layernorm.bias", {c});
}

void LlavaVision::load_projector(Weights& weights) {
  const int64_t in = clip_.hidden_size * static_cast<int64_t>(feature_layers_.size());
  const int64_t out = config_.text.hidden_size;
  proj1_w_ = weights.take("multi_modal_projector.linear_1.weight", {out, in});
  proj2_w_ = weights.take("multi_modal_projector.linear_2.weight", {out, out});
  if (config_.multimodal_projector_bias) {
    proj1_b_ = weights.take("multi_modal_projector.linear_1.bias", {out});
    proj2_b_ = weights.take("multi_modal_projector.linear_2.bias", {out});
  }
  if (config_.family == ModelFamily::kLlavaNext)
    image_newline_ = weights.take("image_newline", {out});
}

void LlavaVision::for_each_parameter(const ParameterVisitor& visit) {
  visit(kTower + "embeddings.class_embedding", class_embedding_);
  visit(kTower + "embeddings.patch_embedding.weight", patch_embedding_);
  visit(kTower + "embeddings.position_embedding.weight", position_embedding_);
  visit(kTower + "pre_layrnorm.weight", pre_ln_w_);
  visit(kTower + "pre_layrnorm.bias", pre_ln_b_);
  for (std::size_t j = 0; j < layers_.size(); ++j) {
    ClipLayer& l = layers_[j];
    const std::string p = kTower + "encoder.layers." + std::to_string(j) + ".";
    visit(p + "layer_norm1.weight", l.ln1_w);
    visit(p + "layer_norm1.bias", l.ln1_b);
    visit(p + "self_attn.q_proj.weight", l.q_w);
    visit(p + "self_attn.q_proj.bias", l.q_b);
    visit(p + "self_attn.k_proj.weight", l.k_w);
    visit(p + "self_attn.k_proj.bias", l.k_b);
    visit(p + "self_attn.v_proj.weight", l.v_w);
    visit(p + "self_attn.v_proj.bias", l.v_b);
    visit(p + "self_attn.out_proj.weight", l.o_w);
    visit(p + "self_attn.out_proj.bias", l.o_b);
    visit(p + "layer_norm2.weight", l.ln2_w);
    visit(p + "layer_norm2.bias", l.ln2_b);
    visit(p + "mlp.fc1.weight", l.fc1_w);
    visit(p + "mlp.fc1.bias", l.fc1_b);
    visit(p + "mlp.fc2.weight", l.fc2_w);
    visit(p + "mlp.fc2.bias", l.fc2_b);
  }
  visit("multi_modal_projector.linear_1.weight", proj1_w_);
  if (proj1_b_) visit("multi_modal_projector.linear_1.bias", *proj1_b_);
  visit("multi_modal_projector.linear_2.weight", proj2_w_);
  if (proj2_b_) visit("multi_modal_projector.linear_2.bias", *proj2_b_);
  if (image_newline_.defined()) visit("image_newline", image_newline_);
}

// ---- CLIP (§2.1) --------------------------------------------------------------------------

void LlavaVision::check_pixel_tile_shape(const at::Tensor& pixel_values, int64_t tile_dim) const {
  const int64_t s = clip_.image_size;
  const bool ok = pixel_values.dim() == tile_dim + 3 &&
                  pixel_values.size(tile_dim) == clip_.num_channels &&
                  pixel_values.size(tile_dim + 1) == s && pixel_values.size(tile_dim + 2) == s;
  const char* expected = tile_dim == 1 ? "[N, " : tile_dim == 2 ? "[B, P_max, " : "[";
  MLAB_CHECK(ok, "LlavaVision: pixel_values must be ", expected, clip_.num_channels, ", ", s, ", ",
             s, "] (vision_config image_size ", s, "), got ", shape_of(pixel_values));
  MLAB_CHECK(at::isFloatingType(pixel_values.scalar_type()),
             "LlavaVision: pixel_values must be floating point, got ",
             c10::toString(pixel_values.scalar_type()));
}

at::Tensor LlavaVision::embed(const at::Tensor& pixel_values) const {
  // Conv2d with stride = kernel = P, as a matmul over the [3, P, P] patches in raster order.
  const int64_t n = pixel_values.size(0), p = clip_.patch_size, g = clip_.image_size / p;
  const at::Tensor patches = pixel_values.view({n, clip_.num_channels, g, p, g, p})
                                 .permute({0, 2, 4, 1, 3, 5})
                                 .reshape({n, g * g, -1});            // [N, g*g, 3*P*P]
  const at::Tensor embedded = nn::linear(patches, patch_embedding_);  // [N, g*g, C]
  const at::Tensor cls = class_embedding_.view({1, 1, -1}).expand({n, 1, clip_.hidden_size});
  const at::Tensor h = at::cat({cls, embedded}, 1) + position_embedding_;  // [N, 1+g*g, C]
  return nn::layer_norm(h, pre_ln_w_, pre_ln_b_, clip_.layer_norm_eps);
}

at::Tensor LlavaVision::clip_layer(const ClipLayer& l, const at::Tensor& h) const {
  const int64_t n = h.size(0), t = h.size(1), heads = clip_.num_attention_heads;
  const int64_t d = clip_.head_dim();
  const at::Tensor a = nn::layer_norm(h, l.ln1_w, l.ln1_b, clip_.layer_norm_eps);
  auto split = [&](const at::Tensor& x) { return x.view({n, t, heads, d}).transpose(1, 2); };
  const at::Tensor q = split(nn::linear(a, l.q_w, l.q_b));  // [N, H, T, D]
  const at::Tensor k = split(nn::linear(a, l.k_w, l.k_b));
  const at::Tensor v = split(nn::linear(a, l.v_w, l.v_b));
  const at::Tensor attn =
      at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, 0.0,
                                       /*is_causal=*/false, std::pow(static_cast<double>(d), -0.5));
  const at::Tensor x = h + nn::linear(attn.transpose(1, 2).reshape({n, t, -1}), l.o_w, l.o_b);
  const at::Tensor b = nn::layer_norm(x, l.ln2_w, l.ln2_b, clip_.layer_norm_eps);
  return x + nn::linear(nn::activate(nn::linear(b, l.fc1_w, l.fc1_b), clip_act_), l.fc2_w, l.fc2_b);
}

at::Tensor LlavaVision::tower_features(const at::Tensor& pixel_values) const {
  check_pixel_tile_shape(pixel_values, 1);
  at::Tensor h = embed(pixel_values.to(device_, dtype_).contiguous());
  std::vector<at::Tensor> states(static_cast<size_t>(layers_to_run_) + 1);  // needed ones only
  auto keep = [&](int64_t index) {
    if (std::find(feature_layers_.begin(), feature_layers_.end(), index) != feature_layers_.end())
      states[static_cast<size_t>(index)] = h;
  };
  keep(0);
  for (int64_t j = 0; j < layers_to_run_; ++j) {
    h = clip_layer(layers_[static_cast<size_t>(j)], h);
    keep(j + 1);
  }
  const bool drop_cls = config_.vision_feature_select_strategy == "default";
  std::vector<at::Tensor> selected;
  for (int64_t index : feature_layers_) {
    const at::Tensor& s = states[static_cast<size_t>(index)];
    selected.push_back(drop_cls ? s.slice(1, 1) : s);
  }
  return selected.size() == 1 ? selected.front().contiguous() : at::cat(selected, -1);
}

// ---- projector (§2.2) and packing (§2.4) --------------------------------------------------

at::Tensor LlavaVision::project(const at::Tensor& features) const {
  const int64_t in = proj1_w_.size(1);
  MLAB_CHECK(features.dim() >= 1 && features.size(-1) == in,
             "LlavaVision::project: features must be [..., ", in, "], got ", shape_of(features));
  const at::Tensor x = features.to(device_, dtype_);
  return nn::linear(nn::activate(nn::linear(x, proj1_w_, proj1_b_), projector_act_), proj2_w_,
                    proj2_b_);
}

at::Tensor LlavaVision::image_features(const at::Tensor& pixel_values,
                                       const std::optional<at::Tensor>& image_sizes) const {
  if (config_.family == ModelFamily::kLlava) return llava_features(pixel_values);
  MLAB_CHECK(image_sizes.has_value() && image_sizes->defined(),
             "LlavaVision: llava_next needs image_sizes [B, 2] (original height, width)");
  return llava_next_features(pixel_values, *image_sizes);
}

at::Tensor LlavaVision::llava_features(const at::Tensor& pixel_values) const {
  check_pixel_tile_shape(pixel_values, 1);
  const at::Tensor rows = project(tower_features(pixel_values));  // [B, T, D]
  return rows.reshape({-1, rows.size(-1)});
}

at::Tensor LlavaVision::llava_next_features(const at::Tensor& pixel_values,
                                            const at::Tensor& image_sizes) const {
  check_pixel_tile_shape(pixel_values, 2);
  const int64_t batch = pixel_values.size(0), max_tiles = pixel_values.size(1);
  MLAB_CHECK(image_sizes.dim() == 2 && image_sizes.size(1) == 2 && image_sizes.size(0) == batch,
             "LlavaVision: image_sizes must be [B, 2] with B = ", batch, " (pixel_values ",
             shape_of(pixel_values), "), got ", shape_of(image_sizes));
  MLAB_CHECK(!at::isFloatingType(image_sizes.scalar_type()),
             "LlavaVision: image_sizes must be integer (H, W), got ",
             c10::toString(image_sizes.scalar_type()));
  const at::Tensor sizes = image_sizes.to(at::kCPU, at::kLong).contiguous();
  const auto hw = sizes.accessor<int64_t, 2>();
  std::vector<at::Tensor> tiles;
  std::vector<int64_t> counts;
  for (int64_t b = 0; b < batch; ++b) {
    const auto [gh, gw] = llava_next_grid_shape(config_, hw[b][0], hw[b][1]);
    const int64_t n = 1 + gh * gw;
    MLAB_CHECK(n <= max_tiles, "LlavaVision: image ", b, " (", hw[b][1], "x", hw[b][0], ") needs ",
               n, " tiles but pixel_values has ", max_tiles);
    tiles.push_back(pixel_values[b].slice(0, 0, n));  // drop the batch padding tiles
    counts.push_back(n);
  }
  const at::Tensor projected = project(tower_features(at::cat(tiles, 0)));  // [sum n, T, D]
  std::vector<at::Tensor> rows;
  int64_t offset = 0;
  for (int64_t b = 0; b < batch; ++b) {
    rows.push_back(pack(projected.slice(0, offset, offset + counts[b]), hw[b][0], hw[b][1]));
    offset += counts[b];
  }
  return at::cat(rows, 0);
}

at::Tensor LlavaVision::pack(const at::Tensor& tiles, int64_t height, int64_t width) const {
  const int64_t d = tiles.size(-1), g = clip_.image_size / clip_.patch_size;
  const auto [gh, gw] = llava_next_grid_shape(config_, height, width);
  // [gh*gw, g*g, D] -> [D, g*gh, g*gw]: token grid whose rows are image rows.
  const at::Tensor grid = tiles.slice(0, 1)
                              .reshape({gh, gw, g, g, d})
                              .permute({4, 0, 2, 1, 3})
                              .reshape({d, g * gh, g * gw});
  const Extent kept = unpad_extent(height, width, g * gh, g * gw);
  const at::Tensor unpadded =
      grid.slice(1, kept.row_begin, kept.row_end).slice(2, kept.col_begin, kept.col_end);
  const at::Tensor newline = image_newline_.view({d, 1, 1}).expand({d, kept.rows(), 1});
  const at::Tensor with_newline = at::cat({unpadded, newline}, 2);  // [D, H', W'+1]
  return at::cat({tiles[0], with_newline.flatten(1, 2).t()}, 0);    // [g*g + H'(W'+1), D]
}

int64_t LlavaVision::image_tokens(int64_t height, int64_t width) const {
  if (config_.family == ModelFamily::kLlavaNext)
    return llava_next_image_tokens(config_, height, width);
  MLAB_CHECK(height > 0 && width > 0,
             "LlavaVision::image_tokens: image size must be positive, got ", width, "x", height);
  const bool cls = config_.vision_feature_select_strategy == "full";
  return clip_.num_patches() + (cls ? 1 : 0);
}

}  // namespace mlab::models
