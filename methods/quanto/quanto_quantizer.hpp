#pragma once
// Quanto-style affine quantization: optimum-quanto 0.2.7 `MaxOptimizer` + `quantize_weight` as
// transformers' QuantoQuantizedCache calls them (specs/baselines.md §2), bit-exact with the package
// on CPU (tests/methods/test_quantizers.cpp compares its bytes):
//   grouped = group(t, axis, G)          axis 0: [N/G, G] (G contiguous elements per group);
//                                        axis -1: [G, D*N/D/G] (G consecutive rows of one channel)
//   scale = (max - min) / (2^b - 1), shift = -min     per group, in t's dtype (each op rounded)
//   q = clamp(round_half_even((grouped + shift) / scale), 0, 2^b - 1)   u8, in t's dtype
//   packed = PackedTensor.pack(q): row j of [ceil(rows / (8/b)), cols] holds q rows j + i*row_dim
//            at bit offset b*i
//   dequantize = ungroup(scale * q - shift), in t's dtype.
// Where the package's result is undefined (0/0 = NaN cast to u8 when a group is constant, scale 0),
// q = 0, which is what the package's CPU cast gives on x86; the reconstruction (0*0 + min = min) is
// the package's either way. A tensor that is a single axis-0 group (N == G) takes the package's
// per-tensor path: min/max over dim 0 of [1, G], i.e. per element, so scale = 0, shift = -x,
// q = 0 and an exact reconstruction, with scale/shift of shape [1, G]; reproduced as such.
// The group-size check is the package's: G | numel / size(axis) (for axis 0: numel / size(0)).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/runtime/quantizer.hpp"

namespace mlab::methods {

struct QuantoOptions {
  int bits = 4;        // 2 or 4 (qint2 / qint4)
  int64_t group = 64;  // q_group_size
  int axis = 0;        // 0 (contiguous groups, the transformers default) or -1 (per channel)
};

// One tensor quantized by QuantoQuantizer: WeightQBitsTensor's _data._data, _scale and _shift.
class QuantoTensor final : public models::QuantizedTensor {
 public:
  // packed: u8 [ceil(rows / (8/bits)), cols]; scale, shift: the input dtype, [rows, 1] (axis 0) or
  // [1, cols] (axis -1), where [rows, cols] is quanto_group's shape; shape: the input's shape.
  QuantoTensor(at::Tensor packed, at::Tensor scale, at::Tensor shift, int bits, int axis,
               int64_t group, std::vector<int64_t> shape);

  // scale * q - shift in the input dtype, ungrouped to the input shape.
  at::Tensor dequantize() const override;
  // packed bytes + scale bytes + shift bytes (N*b/8 + (N/G)*4 for bf16 when 8/b divides rows).
  int64_t bytes() const override;

  const at::Tensor& packed() const { return packed_; }  // u8 [ceil(rows / (8/b)), cols]
  const at::Tensor& scale() const { return scale_; }    // dtype [rows, 1] | [1, cols]
  const at::Tensor& shift() const { return shift_; }    // dtype [rows, 1] | [1, cols]
  // The unpacked codes: u8 [rows, cols] (the grouped layout, values in [0, 2^b - 1]).
  at::Tensor codes() const;
  int bits() const { return bits_; }
  int axis() const { return axis_; }
  int64_t group() const { return group_; }
  const std::vector<int64_t>& shape() const { return shape_; }

 private:
  at::Tensor packed_, scale_, shift_;
  int bits_ = 4;
  int axis_ = 0;
  int64_t group_ = 64;
  std::vector<int64_t> shape_;
};

class QuantoQuantizer final : public models::Quantizer {
 public:
  // Throws c10::Error unless bits is 2 or 4, axis 0 or -1 and group > 0.
  explicit QuantoQuantizer(QuantoOptions options);

  // t: any float dtype and shape. Throws c10::Error when the group size does not divide numel
  // (axis 0) or numel / size(-1) (axis -1), as the package's group() does.
  std::unique_ptr<models::QuantizedTensor> quantize(const at::Tensor& t) const override;
  // The same, typed.
  QuantoTensor quantize_tensor(const at::Tensor& t) const;
  int bits() const override { return options_.bits; }
  std::string describe() const override;
  const QuantoOptions& options() const { return options_; }

 private:
  QuantoOptions options_;
};

// optimum-quanto grouped.group(): t -> [N/G, G] (axis 0) or [G, D*N/D/G] (axis -1).
at::Tensor quanto_group(const at::Tensor& t, int axis, int64_t group);
// optimum-quanto grouped.ungroup() back to `shape`.
at::Tensor quanto_ungroup(const at::Tensor& grouped, int axis, at::IntArrayRef shape);
// PackedTensor.pack: codes u8 [rows, ...] (values < 2^bits) -> u8 [ceil(rows / (8/bits)), ...].
at::Tensor quanto_pack(const at::Tensor& codes, int bits);
// PackedTensor.unpack: the inverse, keeping the first `rows` rows.
at::Tensor quanto_unpack(const at::Tensor& packed, int bits, int64_t rows);

}  // namespace mlab::methods
