// Qwen2.5-VL vision tower (specs/models.md §2.5), mirroring transformers'
// modeling_qwen2_5_vl.py: Qwen2_5_VisionTransformerPretrainedModel.forward, get_window_index,
// rot_pos_emb, Qwen2_5_VLVisionBlock and Qwen2_5_VLPatchMerger.
#include "models/vision/qwen_vision.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "core/error.hpp"

namespace mlab::models {
namespace {

constexpr double kRmsEps = 1e-6;  // every RMSNorm of the tower (§2.5)

void check_grid(int64_t t, int64_t h, int64_t w, int64_t merge) {
  MLAB_CHECK(t > 0 && h > 0 && w > 0, "Qwen2.5-VL vision: grid (t, h, w) = (", t, ", ", h, ", ", w,
             ") must be positive");
  MLAB_CHECK(h % merge == 0 && w % merge == 0, "Qwen2.5-VL vision: grid (t, h, w) = (", t, ", ", h,
             ", ", w, "): h and w must be divisible by spatial_merge_size ", merge);
}

// One frame's windows (§2.5): `side` merged tokens a side, row-major over the merged grid
// [h2, w2]; appends merged indices (offset by `off`) and cumulative patch counts.
void append_frame_windows(int64_t h2, int64_t w2, int64_t side, int64_t unit, int64_t off,
                          QwenWindowLayout& layout) {
  for (int64_t wy = 0; wy < h2; wy += side) {
    for (int64_t wx = 0; wx < w2; wx += side) {
      const int64_t rows = std::min(wy + side, h2) - wy;
      const int64_t cols = std::min(wx + side, w2) - wx;
      for (int64_t r = wy; r < wy + rows; ++r)
        for (int64_t c = wx; c < wx + cols; ++c) layout.window_index.push_back(off + r * w2 + c);
      layout.cu_window_seqlens.push_back(layout.cu_window_seqlens.back() + unit * rows * cols);
    }
  }
}

}  // namespace

QwenWindowLayout qwen_window_layout(const std::vector<std::array<int64_t, 3>>& grid_thw,
                                    int64_t window_size, int64_t patch_size, int64_t merge_size) {
  MLAB_CHECK(merge_size > 0 && patch_size > 0, "Qwen2.5-VL vision: merge size ", merge_size,
             " and patch size ", patch_size, " must be positive");
  const int64_t side = window_size / merge_size / patch_size;  // merged tokens a window side
  MLAB_CHECK(side > 0, "Qwen2.5-VL vision: window_size ", window_size,
             " is smaller than one merged token (", merge_size * patch_size, " px)");
  const int64_t unit = merge_size * merge_size;
  QwenWindowLayout layout;
  layout.cu_window_seqlens = {0};
  layout.cu_full_seqlens = {0};
  int64_t off = 0;
  for (const auto& [t, h, w] : grid_thw) {
    check_grid(t, h, w, merge_size);
    const int64_t h2 = h / merge_size, w2 = w / merge_size;
    for (int64_t f = 0; f < t; ++f) {
      append_frame_windows(h2, w2, side, unit, off, layout);
      off += h2 * w2;
      layout.cu_full_seqlens.push_back(layout.cu_full_seqlens.back() + h * w);
    }
  }
  return layout;
}

QwenVision QwenVision::load(Weights& weights, const ModelConfig& config) {
  MLAB_CHECK(config.family == ModelFamily::kQwen2_5_VL, "QwenVision: the model family is ",
             family_name(config.family), ", not qwen2_5_vl");
  MLAB_CHECK(config.qwen_vision.has_value(), "QwenVision: the config has no vision_config");
  QwenVision v(*config.qwen_vision);
  v.act_ = nn::parse_activation(v.vision_.hidden_act);
  v.dtype_ = weights.options().dtype;
  v.device_ = weights.options().device;
  const QwenVisionConfig& c = v.vision_;
  const int64_t hidden = c.hidden_size,
                merged = hidden * c.spatial_merge_size * c.spatial_merge_size;
  v.patch_w_ =
      weights.take("visual.patch_embed.proj.weight",
                   {hidden, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size});
  v.load_blocks(weights);
  v.ln_q_w_ = weights.take("visual.merger.ln_q.weight", {hidden});
  v.merger1_w_ = weights.take("visual.merger.mlp.0.weight", {merged, merged});
  v.merger1_b_ = weights.take("visual.merger.mlp.0.bias", {merged});
  v.merger2_w_ = weights.take("visual.merger.mlp.2.weight", {c.out_hidden_size, merged});
  v.merger2_b_ = weights.take("visual.merger.mlp.2.bias", {c.out_hidden_size});
  return v;
}

void QwenVision::load_blocks(Weights& weights) {
  const int64_t c = vision_.hidden_size, inter = vision_.intermediate_size;
  for (int64_t j = 0; j < vision_.depth; ++j) {
    const std::string p = "visual.blocks." + std::to_string(j) + ".";
    Block b;
    b.norm1_w = weights.take(p + "norm1.weight", {c});
    b.norm2_w = weights.take(p + "norm2.weight", {c});
    b.qkv_w = weights.take(p + "attn.qkv.weight", {3 * c, c});
    b.qkv_b = weights.take(p + "attn.qkv.bias", {3 * c});
    b.proj_w = weights.take(p + "attn.proj.weight", {c, c});
    b.proj_b = weights.take(p + "attn.proj.bias", {c});
    b.gate_w = weights.take(p + "mlp.gate_proj.weight", {inter, c});
    b.gate_b = weights.take(p + "mlp.gate_proj.bias", {inter});
    b.up_w = weights.take(p + "mlp.up_proj.weight", {inter, c});
    b.up_b = weights.take(p + "mlp.up_proj.bias", {inter});
    b.down_w = weights.take(p + "mlp.down_proj.weight", {c, inter});
    b.down_b = weights.take(p + "mlp.down_proj.bias", {c});
    blocks_.push_back(std::move(b));
  }
}

void QwenVision::for_each_parameter(const ParameterVisitor& visit) {
  visit("visual.patch_embed.proj.weight", patch_w_);
  for (std::size_t j = 0; j < blocks_.size(); ++j) {
    Block& b = blocks_[j];
    const std::string p = "visual.blocks." + std::to_string(j) + ".";
    visit(p + "norm1.weight", b.norm1_w);
    visit(p + "norm2.weight", b.norm2_w);
    visit(p + "attn.qkv.weight", b.qkv_w);
    visit(p + "attn.qkv.bias", b.qkv_b);
    visit(p + "attn.proj.weight", b.proj_w);
    visit(p + "attn.proj.bias", b.proj_b);
    visit(p + "mlp.gate_proj.weight", b.gate_w);
    visit(p + "mlp.gate_proj.bias", b.gate_b);
    visit(p + "mlp.up_proj.weight", b.up_w);
    visit(p + "mlp.up_proj.bias", b.up_b);
    visit(p + "mlp.down_proj.weight", b.down_w);
    visit(p + "mlp.down_proj.bias", b.down_b);
  }
  visit("visual.merger.ln_q.weight", ln_q_w_);
  visit("visual.merger.mlp.0.weight", merger1_w_);
  visit("visual.merger.mlp.0.bias", merger1_b_);
  visit("visual.merger.mlp.2.weight", merger2_w_);
  visit("visual.merger.mlp.2.bias", merger2_b_);
}

int64_t QwenVision::image_tokens(int64_t t, int64_t h, int64_t w) const {
  const int64_t merge = vision_.spatial_merge_size;
  check_grid(t, h, w, merge);
  return t * h * w / (merge * merge);
}

std::vector<std::array<int64_t, 3>> QwenVision::check_inputs(const at::Tensor& pixel_values,
                                                             const at::Tensor& grid_thw) const {
  MLAB_CHECK(grid_thw.dim() == 2 && grid_thw.size(1) == 3,
             "Qwen2.5-VL vision: grid_thw must be [n, 3], got ", grid_thw.sizes());
  MLAB_CHECK(
      !at::isFloatingType(grid_thw.scalar_type()) && !at::isComplexType(grid_thw.scalar_type()),
      "Qwen2.5-VL vision: grid_thw must be an integer tensor, got ", grid_thw.scalar_type());
  const at::Tensor g = grid_thw.to(at::kCPU, at::kLong).contiguous();
  std::vector<std::array<int64_t, 3>> grids;
  int64_t patches = 0;
  for (int64_t i = 0; i < g.size(0); ++i) {
    const int64_t* row = g.data_ptr<int64_t>() + 3 * i;
    check_grid(row[0], row[1], row[2], vision_.spatial_merge_size);
    grids.push_back({row[0], row[1], row[2]});
    patches += row[0] * row[1] * row[2];
  }
  const int64_t width = patch_w_[0].numel();
  MLAB_CHECK(pixel_values.dim() == 2 && pixel_values.size(1) == width,
             "Qwen2.5-VL vision: pixel_values must be [S, ", width,
             "] (in_channels * temporal_patch_size * patch_size^2), got ", pixel_values.sizes());
  MLAB_CHECK(at::isFloatingType(pixel_values.scalar_type()),
             "Qwen2.5-VL vision: pixel_values must be floating point, got ",
             pixel_values.scalar_type());
  MLAB_CHECK(pixel_values.size(0) == patches, "Qwen2.5-VL vision: pixel_values has ",
             pixel_values.size(0), " rows but grid_thw gives sum t*h*w = ", patches);
  return grids;
}

// rot_pos_emb (§2.5): (row, col) of every patch in merge-block order, angles row*inv ++ col*inv
// in f32, emb = cat(ang, ang).
std::array<at::Tensor, 2> QwenVision::rotary(
    const std::vector<std::array<int64_t, 3>>& grids) const {
  const int64_t merge = vision_.spatial_merge_size;
  std::vector<float> rows, cols;
  for (const auto& [t, h, w] : grids) {
    for (int64_t f = 0; f < t; ++f)
      for (int64_t bh = 0; bh < h / merge; ++bh)
        for (int64_t bw = 0; bw < w / merge; ++bw)
          for (int64_t i = 0; i < merge; ++i)
            for (int64_t j = 0; j < merge; ++j) {
              rows.push_back(static_cast<float>(bh * merge + i));
              cols.push_back(static_cast<float>(bw * merge + j));
            }
  }
  const int64_t dim = vision_.head_dim() / 2;  // Qwen2_5_VisionRotaryEmbedding(head_dim / 2)
  const at::Tensor inv =
      at::pow(vision_.rope_theta, at::arange(0, dim, 2, at::kFloat) / static_cast<double>(dim))
          .reciprocal();  // [dim / 2]
  const auto column = [&](std::vector<float>& v) {
    return at::from_blob(v.data(), {static_cast<int64_t>(v.size()), 1}, at::kFloat).clone();
  };
  const at::Tensor ang = at::cat({column(rows) * inv, column(cols) * inv}, 1);  // [S, dim]
  const at::Tensor emb = at::cat({ang, ang}, 1).to(device_);                    // [S, head_dim]
  return {emb.cos(), emb.sin()};
}

// Segments grouped by length so that each group is one batched SDPA call without padding.
std::vector<QwenVision::SegmentGroup> QwenVision::segment_groups(
    const std::vector<int64_t>& cu) const {
  std::map<int64_t, std::vector<int64_t>> by_length;  // length -> starts
  for (size_t s = 0; s + 1 < cu.size(); ++s) by_length[cu[s + 1] - cu[s]].push_back(cu[s]);
  std::vector<SegmentGroup> groups;
  for (const auto& [length, starts] : by_length) {
    SegmentGroup g{length, static_cast<int64_t>(starts.size()), at::Tensor()};
    if (by_length.size() > 1) {
      const at::Tensor base = at::tensor(starts, at::kLong).unsqueeze(1);
      g.rows = (base + at::arange(length, at::kLong)).reshape(-1).to(device_);
    }
    groups.push_back(std::move(g));
  }
  return groups;
}

// Block-diagonal non-causal attention, scale head_dim^-0.5 (§2.5).
at::Tensor QwenVision::attention(const at::Tensor& qkv,
                                 const std::vector<SegmentGroup>& groups) const {
  const int64_t s = qkv.size(0), heads = qkv.size(2), d = qkv.size(3);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const auto run = [&](const at::Tensor& rows_qkv, const SegmentGroup& g) {
    // [n * len, 3, H, D] -> 3 x [n, H, len, D]
    const at::Tensor p = rows_qkv.view({g.count, g.length, 3, heads, d}).permute({2, 0, 3, 1, 4});
    const at::Tensor o = at::scaled_dot_product_attention(p[0], p[1], p[2], {}, 0.0, false, scale);
    return o.permute({0, 2, 1, 3}).reshape({g.count * g.length, heads * d});
  };
  if (groups.size() == 1 && !groups[0].rows.defined()) return run(qkv, groups[0]);
  at::Tensor out = at::empty({s, heads * d}, qkv.options());
  for (const SegmentGroup& g : groups)
    out.index_copy_(0, g.rows, run(qkv.index_select(0, g.rows), g));
  return out;
}

// Qwen2_5_VLVisionBlock: pre-RMSNorm attention with 2-D rotary (f32, cast back), SwiGLU MLP.
at::Tensor QwenVision::block(const Block& b, const at::Tensor& x, const at::Tensor& cos,
                             const at::Tensor& sin, const std::vector<SegmentGroup>& groups) const {
  const int64_t s = x.size(0), heads = vision_.num_heads;
  const at::Tensor a = nn::rms_norm(x, b.norm1_w, kRmsEps);
  const at::Tensor qkv = nn::linear(a, b.qkv_w, b.qkv_b).view({s, 3, heads, -1});  // [S,3,H,D]
  const at::Tensor qk = nn::apply_rotary(qkv.narrow(1, 0, 2).to(at::kFloat), cos, sin);
  const at::Tensor rotated = at::cat({qk.to(x.scalar_type()), qkv.narrow(1, 2, 1)}, 1);
  const at::Tensor h = x + nn::linear(attention(rotated, groups), b.proj_w, b.proj_b);
  const at::Tensor n = nn::rms_norm(h, b.norm2_w, kRmsEps);
  const at::Tensor mlp =
      nn::activate(nn::linear(n, b.gate_w, b.gate_b), act_) * nn::linear(n, b.up_w, b.up_b);
  return h + nn::linear(mlp, b.down_w, b.down_b);
}

at::Tensor QwenVision::image_features(const at::Tensor& pixel_values,
                                      const at::Tensor& grid_thw) const {
  const auto grids = check_inputs(pixel_values, grid_thw);
  if (grids.empty())
    return at::empty({0, vision_.out_hidden_size}, at::TensorOptions(dtype_).device(device_));
  const int64_t unit = vision_.spatial_merge_size * vision_.spatial_merge_size;
  const QwenWindowLayout layout = qwen_window_layout(grids, vision_.window_size, vision_.patch_size,
                                                     vision_.spatial_merge_size);
  // perm = [unit*m + k for m in window_index for k < unit]: patch rows in window order.
  const at::Tensor window_index = at::tensor(layout.window_index, at::kLong).to(device_);
  const at::Tensor perm =
      (window_index.unsqueeze(1) * unit + at::arange(unit, window_index.options())).reshape(-1);
  // The Conv3d with stride = kernel over one patch is a matmul with the flattened kernel.
  at::Tensor x =
      nn::linear(pixel_values.to(device_, dtype_), patch_w_.reshape({patch_w_.size(0), -1}))
          .index_select(0, perm);
  auto [cos, sin] = rotary(grids);
  cos = cos.index_select(0, perm).view({cos.size(0), 1, 1, -1});  // [S, 1, 1, D]
  sin = sin.index_select(0, perm).view({sin.size(0), 1, 1, -1});
  const auto window_groups = segment_groups(layout.cu_window_seqlens);
  const auto full_groups = segment_groups(layout.cu_full_seqlens);
  const auto& full = vision_.fullatt_block_indexes;
  for (int64_t j = 0; j < vision_.depth; ++j) {
    const bool is_full = std::find(full.begin(), full.end(), j) != full.end();
    x = block(blocks_[j], x, cos, sin, is_full ? full_groups : window_groups);
  }
  // Qwen2_5_VLPatchMerger: RMSNorm per patch, merge^2 consecutive patches -> one row, GELU MLP.
  const at::Tensor m = nn::rms_norm(x, ln_q_w_, kRmsEps).reshape({-1, merger1_w_.size(1)});
  const at::Tensor y =
      nn::linear(nn::activate(nn::linear(m, merger1_w_, merger1_b_), nn::Activation::kGelu),
                 merger2_w_, merger2_b_);
  return y.index_select(0, at::argsort(window_index));  // back to raster order
}

}  // namespace mlab::models
