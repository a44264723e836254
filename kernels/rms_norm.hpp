#pragma once
// RMSNorm (Zhang & Sennrich 2019) with Hugging Face's Llama/Qwen2 numerics:
//   y = weight * to(input dtype)( x_f32 * rsqrt(mean(x_f32^2) + eps) )
// The first kernel of the project: the CUDA path and its ATen reference (STYLE.md rule 12, 16).
#include <ATen/core/Tensor.h>

namespace mlab::kernels {

// x: f32|bf16|f16 [..., D]; weight: [D] (same dtype as x for the CUDA kernel; other dtypes take
// the reference path). Returns the promoted dtype of (weight, x) [..., D]. Any device: CUDA
// tensors use the kernel when mlab was built with CUDA, else the reference.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// Plain ATen ops, any device; the oracle of the kernel.
at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps);

// True when this build contains the CUDA kernels (MLAB_WITH_CUDA).
bool built_with_cuda();

}  // namespace mlab::kernels
