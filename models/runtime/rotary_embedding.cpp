#include "models/runtime/rotary_embedding.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"

namespace mlab::models {

RotaryEmbedding RotaryEmbedding::from_config(const TextConfig& config, c10::Device device) {
  MLAB_CHECK(config.rope.type == "default", "rope type '", config.rope.type,
             "' is not supported (only the default RoPE of the paper's models)");
  RotaryEmbedding rope;
  const int64_t D = config.head_dim;
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  const at::Tensor exponent = at::arange(0, D, 2, f32.dtype(at::kLong)).to(at::kFloat) / D;
  rope.inv_freq_ = at::pow(config.rope.theta, exponent).reciprocal();
  rope.mrope_section_ = config.rope.mrope_section;
  return rope;
}

RopeTables RotaryEmbedding::tables(const at::Tensor& positions, c10::ScalarType dtype) const {
  TORCH_CHECK(positions.dim() == 2 || (positions.dim() == 3 && positions.size(0) == 3),
              "RotaryEmbedding: positions ", positions.sizes(), " must be [B, L] or [3, B, L]");
  const at::Tensor pos = positions.to(inv_freq_.device(), at::kFloat);
  at::Tensor freqs;  // f32 [B, L, D/2]
  if (mrope_section_.empty()) {
    freqs = (positions.dim() == 3 ? pos[0] : pos).unsqueeze(-1) * inv_freq_;
  } else {
    const at::Tensor streams = positions.dim() == 3 ? pos : pos.unsqueeze(0).expand({3, -1, -1});
    const at::Tensor all = streams.unsqueeze(-1) * inv_freq_;  // f32 [3, B, L, D/2]
    std::vector<at::Tensor> parts;
    int64_t start = 0;
    for (std::size_t s = 0; s < mrope_section_.size(); ++s) {
      parts.push_back(all[static_cast<int64_t>(s % 3)].narrow(-1, start, mrope_section_[s]));
      start += mrope_section_[s];
    }
    freqs = at::cat(parts, -1);
  }
  const at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(1);  // f32 [B, 1, L, D]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

}  // namespace mlab::models
