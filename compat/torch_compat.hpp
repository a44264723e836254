#pragma once
// compat/torch_compat.hpp: the only file that knows LibTorch versions differ (STYLE.md rule 15,
// specs/build.md §6). The project builds against the LibTorch inside pip torch==2.11.0; every
// version-specific call goes through here so a later LibTorch is a one-file change.
#include <ATen/ATen.h>
#include <torch/version.h>
#if MLAB_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <limits>
#include <optional>
#include <tuple>

#define MLAB_TORCH_VERSION (TORCH_VERSION_MAJOR * 100 + TORCH_VERSION_MINOR)  // 211 for 2.11
#define MLAB_TORCH_AT_LEAST(major, minor) (MLAB_TORCH_VERSION >= ((major)*100 + (minor)))

static_assert(MLAB_TORCH_AT_LEAST(2, 2), "mlab needs LibTorch >= 2.2 (pip torch==2.11.0 is used)");

#define MLAB_HAS_FLOAT8 MLAB_TORCH_AT_LEAST(2, 1)    // at::kFloat8_e4m3fn / at::kFloat8_e5m2
#define MLAB_HAS_UNSIGNED MLAB_TORCH_AT_LEAST(2, 3)  // at::kUInt16 / kUInt32 / kUInt64

namespace mlab::compat {

template <class T>
using optional = std::optional<T>;
inline constexpr std::nullopt_t nullopt = std::nullopt;

// "2.11.0" (the headers compiled against).
inline const char* torch_version() { return TORCH_VERSION; }

// LAPACK/cuSOLVER ops have no Half/BFloat16 kernels: upcast first.
inline at::Tensor to_linalg_dtype(const at::Tensor& a) {
  const auto st = a.scalar_type();
  return (st == at::kHalf || st == at::kBFloat16) ? a.to(at::kFloat) : a;
}

// a: [..., m, n] -> U [..., m, k], S [..., k], Vh [..., k, n], k = min(m, n); f32/f64.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> svd(const at::Tensor& a) {
  return at::linalg_svd(to_linalg_dtype(a), /*full_matrices=*/false);
}

// a: symmetric [..., n, n] -> eigenvalues ascending [..., n], eigenvectors [..., n, n].
inline std::tuple<at::Tensor, at::Tensor> eigh(const at::Tensor& a) {
  return at::linalg_eigh(to_linalg_dtype(a), "L");
}

// bool [L, S], true = attend. Bottom-right aligned (query i sees keys j <= i + S - L), which is
// what decoding against a cache needs. NB: torch's own is_causal is top-left aligned when L != S.
inline at::Tensor causal_mask(int64_t L, int64_t S, const at::TensorOptions& options) {
  return at::ones({L, S}, options.dtype(at::kBool)).tril(S - L);
}

// Reference attention that also returns the weights (H2O/TOVA need them; fused SDPA never
// returns them). q: [B, H, L, D], k/v: [B, H, S, D] (KV heads already repeated), mask: bool
// [.., L, S] (true = attend) or additive float. Returns out: q.dtype [B, H, L, D] and
// weights: f32 [B, H, L, S]. is_causal aligns the last query with the last key.
inline std::tuple<at::Tensor, at::Tensor> attention_with_weights(const at::Tensor& q,
                                                                 const at::Tensor& k,
                                                                 const at::Tensor& v,
                                                                 const optional<at::Tensor>& mask,
                                                                 bool is_causal, double scale) {
  auto scores = at::matmul(q.to(at::kFloat), k.to(at::kFloat).transpose(-2, -1)) * scale;
  const auto neg_inf = -std::numeric_limits<float>::infinity();
  if (is_causal) {
    scores =
        scores.masked_fill(causal_mask(q.size(-2), k.size(-2), q.options()).logical_not(), neg_inf);
  }
  if (mask.has_value()) {
    scores = mask->scalar_type() == at::kBool ? scores.masked_fill(mask->logical_not(), neg_inf)
                                              : scores + mask->to(at::kFloat);
  }
  auto weights = at::softmax(scores, -1);
  return {at::matmul(weights, v.to(at::kFloat)).to(q.scalar_type()), weights};
}

// Fused attention with the semantics of attention_with_weights (bottom-right causal alignment).
inline at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const optional<at::Tensor>& mask, bool is_causal, double scale) {
  TORCH_CHECK(!(is_causal && mask.has_value()), "sdpa: pass a mask or is_causal, not both");
  if (is_causal && q.size(-2) != k.size(-2)) {
    return at::scaled_dot_product_attention(q, k, v,
                                            causal_mask(q.size(-2), k.size(-2), q.options()),
                                            /*dropout_p=*/0.0, /*is_causal=*/false, scale);
  }
  return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, is_causal, scale);
}

// sdpa() for grouped-query attention: k/v may have H_kv heads with H % H_kv == 0 (q's heads
// h * n_rep ... share KV head h, as repeat_kv does). A mask with H heads or 1 broadcasts.
inline at::Tensor sdpa_gqa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const optional<at::Tensor>& mask, bool is_causal, double scale) {
  const bool gqa = q.size(-3) != k.size(-3);
  if (is_causal && q.size(-2) != k.size(-2)) {
    return at::scaled_dot_product_attention(
        q, k, v, causal_mask(q.size(-2), k.size(-2), q.options()), 0.0, false, scale, gqa);
  }
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, is_causal, scale, gqa);
}

// Peak bytes allocated by the CUDA caching allocator on `device` since the last reset (what
// torch.cuda.max_memory_allocated reports); -1 without CUDA.
// Keeps SDPA off the cuDNN attention backend. In LibTorch 2.11 it builds an execution plan for
// every new (batch, length) shape: 40-700 ms on an H100 the first time a shape is seen, which
// decode (the key length grows every step) and evaluation (every batch has new lengths) hit at
// every step (measured: 27 ms per decode step of the tiny fixture in bf16, vs 0.8 ms without).
// Flash and memory-efficient attention have no per-shape setup.
inline void disable_cudnn_sdpa() { at::globalContext().setSDPUseCuDNN(false); }

inline int64_t cuda_peak_allocated_bytes(int device) {
#if MLAB_WITH_CUDA
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  return stats.allocated_bytes[static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE)]
      .peak;
#else
  (void)device;
  return -1;
#endif
}

inline void cuda_reset_peak_bytes(int device) {
#if MLAB_WITH_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(device);
#else
  (void)device;
#endif
}

}  // namespace mlab::compat
