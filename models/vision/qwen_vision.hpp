#pragma once
// The Qwen2.5-VL vision tower (specs/models.md §2.5; transformers'
// Qwen2_5_VisionTransformerPretrainedModel): Conv3d patch embedding as one matmul, 2-D rotary
// embedding, pre-RMSNorm blocks with window attention (full attention in fullatt_block_indexes),
// SwiGLU MLP with biases, and the patch merger (RMSNorm, 2x2 patches -> one row, GELU MLP).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <array>
#include <cstdint>
#include <vector>

#include "models/config/model_config.hpp"
#include "models/nn/nn.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/attention_layer.hpp"

namespace mlab::models {

// The token order and attention segments of the tower for a batch of grids (specs §2.5,
// transformers' get_window_index):
//   window_index:      merged-token indices (over all images, raster order per image) in window
//                      order: windows of W x W merged tokens (W = window_size / merge / patch),
//                      row-major over each frame's merged grid, row-major inside a window; empty
//                      windows of HF's padding are skipped.
//   cu_window_seqlens: [0, ...] cumulative patch counts of the windows (merge^2 per merged token).
//   cu_full_seqlens:   [0, ...] cumulative patch counts of the frames (full-attention blocks).
struct QwenWindowLayout {
  std::vector<int64_t> window_index;
  std::vector<int64_t> cu_window_seqlens;
  std::vector<int64_t> cu_full_seqlens;
};

// grid_thw: (t, h, w) in patches per image. Throws mlab::Error for a non-positive size, h or w not
// divisible by merge_size, or a window smaller than one merged token.
QwenWindowLayout qwen_window_layout(const std::vector<std::array<int64_t, 3>>& grid_thw,
                                    int64_t window_size, int64_t patch_size, int64_t merge_size);

class QwenVision {
 public:
  // Loads visual.* for config.family == kQwen2_5_VL (throws mlab::Error for another family, a
  // missing vision config, an unknown activation, a missing tensor or a wrong shape).
  static QwenVision load(Weights& weights, const ModelConfig& config);

  // pixel_values [S, C*T*P*P] (any float dtype and device; cast to the weights'), rows in the
  // processor's order (§4.4); grid_thw integer [n, 3] (t, h, w in patches; any device) ->
  // compute dtype [S / merge^2, out_hidden]: the merger output in raster order over each image's
  // merged grid, images in order. Throws mlab::Error for grid_thw not [n, 3] / not integer /
  // non-positive, h or w not divisible by merge, pixel_values not 2-D, a wrong row width, or rows
  // != sum t*h*w.
  at::Tensor image_features(const at::Tensor& pixel_values, const at::Tensor& grid_thw) const;

  // Rows image_features gives for one image of grid (t, h, w): t*h*w / merge^2. Throws
  // mlab::Error for a non-positive size or h, w not divisible by merge.
  int64_t image_tokens(int64_t t, int64_t h, int64_t w) const;

  // Visits the loaded weights under their canonical names (training, F8), in transformers 4.51's
  // Qwen2_5_VisionTransformerPretrainedModel.named_parameters() order: patch_embed (the Conv3d
  // kernel in its stored 5-D shape), the blocks, then the merger (swift's aligner).
  void for_each_parameter(const ParameterVisitor& visit);

  const QwenVisionConfig& config() const { return vision_; }

 private:
  struct Block {
    at::Tensor norm1_w, norm2_w;  // [C]
    at::Tensor qkv_w, qkv_b;      // [3C, C], [3C]
    at::Tensor proj_w, proj_b;    // [C, C], [C]
    at::Tensor gate_w, gate_b;    // [I, C], [I]
    at::Tensor up_w, up_b;        // [I, C], [I]
    at::Tensor down_w, down_b;    // [C, I], [C]
  };
  // Segments of one length, gathered into a batch: `rows` i64 [n * length] (device) lists the
  // sequence rows of n segments back to back; empty when the group is the whole sequence in order.
  struct SegmentGroup {
    int64_t length = 0;
    int64_t count = 0;
    at::Tensor rows;
  };

  explicit QwenVision(QwenVisionConfig vision) : vision_(std::move(vision)) {}
  void load_blocks(Weights& weights);
  std::vector<SegmentGroup> segment_groups(const std::vector<int64_t>& cu) const;
  // cos, sin f32 [S, D] of the 2-D rotary embedding for the patches in processor order.
  std::array<at::Tensor, 2> rotary(const std::vector<std::array<int64_t, 3>>& grids) const;
  // One block: x [S, C] -> [S, C]; cos/sin f32 [S, 1, 1, D].
  at::Tensor block(const Block& b, const at::Tensor& x, const at::Tensor& cos,
                   const at::Tensor& sin, const std::vector<SegmentGroup>& groups) const;
  // Block-diagonal attention: qkv [S, 3, H, D] (rotary applied) -> [S, H * D].
  at::Tensor attention(const at::Tensor& qkv, const std::vector<SegmentGroup>& groups) const;
  std::vector<std::array<int64_t, 3>> check_inputs(const at::Tensor& pixel_values,
                                                   const at::Tensor& grid_thw) const;

  QwenVisionConfig vision_;
  nn::Activation act_ = nn::Activation::kSilu;
  c10::ScalarType dtype_ = c10::kFloat;
  c10::Device device_ = c10::Device(c10::kCPU);

  at::Tensor patch_w_;                // [C, in_channels, T, P, P] (the Conv3d kernel, as stored)
  std::vector<Block> blocks_;         // depth entries
  at::Tensor ln_q_w_;                 // [C]
  at::Tensor merger1_w_, merger1_b_;  // [C * m^2, C * m^2], [C * m^2]
  at::Tensor merger2_w_, merger2_b_;  // [out_hidden, C * m^2], [out_hidden]
};

}  // namespace mlab::models
