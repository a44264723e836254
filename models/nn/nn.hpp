#pragma once
// The small numeric building blocks shared by the vision towers and the decoders, each with the
// numerics of the transformers module it mirrors (specs/models.md §2-3).
#include <ATen/core/Tensor.h>

#include <optional>
#include <string_view>

namespace mlab::models::nn {

// y = x W^T (+ b). x: [..., in]; weight: [out, in]; bias: [out].
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight,
                  const std::optional<at::Tensor>& bias = std::nullopt);

// Llama/Qwen2 RMSNorm: weight * to(x.dtype)(x_f32 * rsqrt(mean(x_f32^2) + eps)).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// nn.LayerNorm over the last dimension (CLIP).
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                      double eps);

// Activation functions by their transformers ACT2FN name: "silu" | "swish", "gelu" (exact erf),
// "gelu_pytorch_tanh" | "gelu_new" (tanh approximation), "quick_gelu" (x * sigmoid(1.702 x)),
// "relu". Throws mlab::Error for another name.
enum class Activation { kSilu, kGelu, kGeluTanh, kQuickGelu, kRelu };
Activation parse_activation(std::string_view name);
at::Tensor activate(const at::Tensor& x, Activation activation);

// HF's rotate_half on the last dimension: cat(-x[..., d/2:], x[..., :d/2]).
at::Tensor rotate_half(const at::Tensor& x);
// x * cos + rotate_half(x) * sin (cos/sin broadcast against x).
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace mlab::models::nn
