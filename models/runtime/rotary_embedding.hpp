#pragma once
// Rotary position embedding of the text decoders in Hugging Face's rotate-half layout (RoFormer,
// Su et al. 2021; specs/models.md §3.1), and Qwen2.5-VL's multimodal M-RoPE (§3.3): frequency j
// takes its angle from the t, h or w position stream by the contiguous mrope_section blocks.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "models/config/model_config.hpp"

namespace mlab::models {

// cos and sin for one forward, already in the activation dtype: any [B, 1, L, D].
struct RopeTables {
  at::Tensor cos;
  at::Tensor sin;
};

class RotaryEmbedding {
 public:
  // inv_freq[i] = 1 / theta^(2i / D) computed in f32 as transformers does. Throws mlab::Error
  // for rope types other than "default" (Llama-3.1 / YaRN scaling is not used by the paper's
  // models).
  static RotaryEmbedding from_config(const TextConfig& config, c10::Device device);

  // positions: i64 [B, L] (one stream) or [3, B, L] (M-RoPE t, h, w; a one-stream model takes
  // the first). Angles in f32, cos/sin cast to `dtype` (transformers' order).
  RopeTables tables(const at::Tensor& positions, c10::ScalarType dtype) const;

  const at::Tensor& inv_freq() const { return inv_freq_; }  // f32 [D/2]
  const std::vector<int64_t>& mrope_section() const { return mrope_section_; }

 private:
  at::Tensor inv_freq_;                 // f32 [D/2]
  std::vector<int64_t> mrope_section_;  // empty for one-stream RoPE; sums to D/2
};

}  // namespace mlab::models
