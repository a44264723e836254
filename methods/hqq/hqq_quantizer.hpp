#pragma once
// HQQ-style affine quantization: hqq 0.2.2 `Quantizer.quantize(..., channel_wise=True,
// round_zero=False, bitpack=True)` + `Quantizer.cuda` + `Quantizer.dequantize` as transformers'
// HQQQuantizedCache calls them (specs/baselines.md §3), bit-exact with the package on CPU
// (tests/methods/test_quantizers.cpp compares its bytes):
//   W = t.float() reshaped to [G, N/G] (axis 0: group j = flat[i*N/G + j], i < G, strided) or
//       [N/G, G] (axis 1: contiguous groups); min/max over `axis`
//   scale = clamp(reciprocal(max - min) * (2^b - 1), max=2e4)   f32 (Python's int / tensor is
//       Tensor.__rtruediv__ = reciprocal() * int, not a division)
//   zero  = -min * scale                                           f32, not rounded
//   [optimize: zero refined by optimize_weights_proximal_legacy, hqq_optimize_proximal below]
//   q     = clamp(round_half_even(W * scale + zero), 0, 2^b - 1)
//   meta: scale' = compute(reciprocal(scale) * 1.0), zero' = compute(zero)   (Quantizer.cuda casts
//       them to the compute dtype)
//   packed = BitPack: 8 -> u8 as is; 4/2/1 -> u8, the first rows/(8/b) rows in the highest bits;
//       3 -> i32, rows zero-padded to a multiple of 10, 10 codes per word (first slice << 27)
//   dequantize = ((unpack(packed) in compute dtype - zero') * scale').reshape(shape)
// The u8 packings need rows (G on axis 0, N/G on axis 1) divisible by 8/b, as the package does.
// For 3 bits on axis 1 the package's dequantize keeps shape[0]*shape[1]/G unpacked rows, which is
// N/G only for 2-D tensors (for B,H,S,D tensors it fails or, when shape[0]*shape[1] == G, silently
// broadcasts one row); this implementation keeps N/G rows (the package's result where it works).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/runtime/quantizer.hpp"

namespace mlab::methods {

struct HqqOptions {
  int bits = 4;           // 1, 2, 3, 4 or 8 (transformers' HQQ backend accepts these)
  int64_t group = 64;     // q_group_size
  int axis = 0;           // 0 (strided groups, the transformers default) or 1 (contiguous)
  bool optimize = false;  // the half-quadratic proximal solver (transformers leaves it off)
  // optimize_weights_proximal_legacy's opt_params defaults (hqq 0.2.2).
  double lp_norm = 0.7;
  double beta = 10.0;
  double kappa = 1.01;
  int iters = 20;
  // The dtype of the metadata and of dequantize(). Unset: the input's dtype, which is what
  // transformers 5.x passes (compute_dtype = the cache's dtype) and, for a bf16 model, what the
  // authors' transformers 4.x cache_config passed (compute_dtype = model.dtype).
  std::optional<at::ScalarType> compute_dtype = std::nullopt;
};

// One tensor quantized by HqqQuantizer: the packed W_q and the meta after Quantizer.cuda.
class HqqTensor final : public models::QuantizedTensor {
 public:
  // packed: u8 [rows / (8/b), cols] (b = 1, 2, 4), u8 [rows, cols] (8) or i32 [ceil(rows/10), cols]
  // (3), where [rows, cols] = [G, N/G] (axis 0) or [N/G, G] (axis 1); scale, zero: compute dtype
  // [1, N/G] (axis 0) or [N/G, 1] (axis 1); shape: the input's shape.
  HqqTensor(at::Tensor packed, at::Tensor scale, at::Tensor zero, int bits, int axis, int64_t group,
            std::vector<int64_t> shape);

  // (codes - zero) * scale in the compute dtype, reshaped to the input shape.
  at::Tensor dequantize() const override;
  // packed bytes + scale bytes + zero bytes (N*b/8 + (N/G)*4 for bf16 metadata, b != 3).
  int64_t bytes() const override;

  const at::Tensor& packed() const { return packed_; }  // u8 | i32 (3 bits), see constructor
  const at::Tensor& scale() const { return scale_; }    // compute dtype, 1 / the f32 scale
  const at::Tensor& zero() const { return zero_; }      // compute dtype
  // The unpacked codes: u8 [rows, cols].
  at::Tensor codes() const;
  int bits() const { return bits_; }
  int axis() const { return axis_; }
  int64_t group() const { return group_; }
  const std::vector<int64_t>& shape() const { return shape_; }

 private:
  at::Tensor packed_, scale_, zero_;
  int bits_ = 4;
  int axis_ = 0;
  int64_t group_ = 64;
  std::vector<int64_t> shape_;
};

class HqqQuantizer final : public models::Quantizer {
 public:
  // Throws c10::Error unless bits is in {1, 2, 3, 4, 8}, axis 0 or 1, group > 0, iters > 0.
  explicit HqqQuantizer(HqqOptions options);

  // t: any float dtype and shape with group | numel. Throws c10::Error when the group size does
  // not divide numel or the rows to pack are not a multiple of 8/bits.
  std::unique_ptr<models::QuantizedTensor> quantize(const at::Tensor& t) const override;
  // The same, typed.
  HqqTensor quantize_tensor(const at::Tensor& t) const;
  int bits() const override { return options_.bits; }
  std::string describe() const override;
  const HqqOptions& options() const { return options_; }

 private:
  HqqOptions options_;
};

// Quantizer.quantize before the codes: W = t.float() grouped and the min-max scale/zero.
struct HqqMinMax {
  at::Tensor w;       // f32 [G, N/G] (axis 0) | [N/G, G] (axis 1)
  at::Tensor scale;   // f32 [1, N/G] | [N/G, 1]: clamp((2^b - 1) / (max - min), max=2e4)
  at::Tensor zero;    // f32, same shape: -min * scale
  int64_t qmax = 15;  // 2^b - 1
};
// Throws c10::Error when t is not a float tensor or the group size does not divide numel.
HqqMinMax hqq_minmax(const at::Tensor& t, const HqqOptions& options);

// What optimize_weights_proximal_legacy computed, iteration by iteration.
struct HqqProximalResult {
  at::Tensor codes;               // f32 [rows, cols]: round(W * scale + zero) clamped (final)
  at::Tensor scale;               // f32, the input scale (the solver keeps it)
  at::Tensor zero;                // f32, the zero of the last iteration run
  std::vector<at::Tensor> zeros;  // f32, the zero after each iteration's update
  std::vector<double> errors;     // each iteration's mean |W - (q - zero_before) / scale|
};

// hqq 0.2.2 optimize_weights_proximal_legacy on CPU (f32): w f32 [rows, cols] grouped as above,
// scale/zero f32 [1, cols] (axis 0) or [rows, 1] (axis 1), codes in [0, qmax]. Stops at the first
// iteration whose error is not below the best so far (that iteration's zero update is kept, as in
// the package) or after options.iters iterations. Only options.lp_norm/beta/kappa/iters are read.
HqqProximalResult hqq_optimize_proximal(const at::Tensor& w, const at::Tensor& scale,
                                        const at::Tensor& zero, int64_t qmax, int axis,
                                        const HqqOptions& options);

// BitPack.pack_<bits>: codes (f32 or u8 [rows, cols], values in [0, 2^bits - 1]) -> packed.
at::Tensor hqq_pack(const at::Tensor& codes, int bits);
// BitPack.unpack_<bits> into `dtype`, keeping the first `rows` rows.
at::Tensor hqq_unpack(const at::Tensor& packed, int bits, int64_t rows, at::ScalarType dtype);

}  // namespace mlab::methods
