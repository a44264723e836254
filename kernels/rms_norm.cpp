#include "kernels/rms_norm.hpp"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#if MLAB_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "kernels/rms_norm_cuda.h"
#endif

namespace mlab::kernels {

bool built_with_cuda() { return MLAB_WITH_CUDA != 0; }

at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const auto xf = x.to(at::kFloat);
  const auto normalized = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normalized.to(x.scalar_type());
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  TORCH_CHECK(x.dim() >= 1, "rms_norm: x must have at least one dimension, got ", x.sizes());
  TORCH_CHECK(weight.dim() == 1 && weight.size(0) == x.size(-1), "rms_norm: weight ",
              weight.sizes(), " does not match the last dimension of x ", x.sizes());
  TORCH_CHECK(weight.device() == x.device(), "rms_norm: weight on ", weight.device(), ", x on ",
              x.device());
#if MLAB_WITH_CUDA
  const auto st = x.scalar_type();
  const bool kernel_dtype = st == at::kFloat || st == at::kBFloat16 || st == at::kHalf;
  // The kernel has no backward: under autograd (training, F8) the reference's ATen ops run.
  const bool needs_grad =
      at::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad());
  if (x.is_cuda() && kernel_dtype && weight.scalar_type() == st && !needs_grad) {
    const c10::cuda::CUDAGuard guard(x.device());
    const auto xc = x.contiguous();
    const auto wc = weight.contiguous();
    auto out = at::empty_like(xc);
    const int64_t dim = x.size(-1);
    const int64_t rows = dim == 0 ? 0 : xc.numel() / dim;
    const auto type = st == at::kFloat      ? cuda::ElementType::kFloat32
                      : st == at::kBFloat16 ? cuda::ElementType::kBFloat16
                                            : cuda::ElementType::kFloat16;
    const int err = cuda::launch_rms_norm(xc.data_ptr(), wc.data_ptr(), out.data_ptr(), rows, dim,
                                          static_cast<float>(eps), type,
                                          c10::cuda::getCurrentCUDAStream().stream());
    TORCH_CHECK(err == 0, "rms_norm: CUDA launch failed: ", cuda::error_string(err));
    return out;
  }
#endif
  return rms_norm_reference(x, weight, eps);
}

}  // namespace mlab::kernels
