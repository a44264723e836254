#include "methods/quanto/quanto_quantizer.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <utility>

namespace mlab::methods {

// Every tensor op below is the one optimum-quanto 0.2.7 runs, in the same order and dtype, so that
// each intermediate is rounded as PyTorch eager rounds it (tensor / int scalar, tensor + tensor,
// ... in bf16 are f32 computations rounded to bf16 once per op).

at::Tensor quanto_group(const at::Tensor& t, int axis, int64_t group) {
  TORCH_CHECK(axis == 0 || axis == -1, "quanto: axis must be 0 or -1, got ", axis);
  TORCH_CHECK(t.dim() >= 1, "quanto: cannot group a 0-d tensor");
  const int64_t axis_dim = t.size(axis);
  TORCH_CHECK(axis_dim > 0, "quanto: empty tensor of shape ", t.sizes());
  const int64_t axis_numel = t.numel() / axis_dim;
  TORCH_CHECK(group > 0 && group <= axis_numel && axis_numel % group == 0, "quanto: group size (",
              group, ") must be a divisor of (", axis_numel, ") for shape ", t.sizes(), ", axis ",
              axis);
  if (axis == 0) return t.reshape({-1, group});  // [N/G, G]
  const int64_t axis_groups = axis_numel / group;
  // [N/D/G, G, D] -> [G, D, N/D/G] -> [G, D*N/D/G]
  return t.reshape({axis_groups, group, axis_dim})
      .permute({1, 2, 0})
      .reshape({group, axis_dim * axis_groups});
}

at::Tensor quanto_ungroup(const at::Tensor& grouped, int axis, at::IntArrayRef shape) {
  if (grouped.sizes() == shape) return grouped;
  if (axis == 0) return grouped.reshape(shape);
  const int64_t group = grouped.size(0);
  const int64_t axis_dim = shape.back();
  const int64_t axis_groups = grouped.numel() / axis_dim / group;
  return grouped.reshape({group, axis_dim, axis_groups}).permute({2, 0, 1}).reshape(shape);
}

at::Tensor quanto_pack(const at::Tensor& codes, int bits) {
  TORCH_CHECK(bits == 2 || bits == 4, "quanto: pack bits must be 2 or 4, got ", bits);
  TORCH_CHECK(codes.scalar_type() == at::kByte && codes.dim() >= 1,
              "quanto: pack takes u8 codes of at least one dimension, got ", codes.scalar_type(),
              " ", codes.sizes());
  const int64_t values_per_item = 8 / bits;
  const int64_t rows = codes.size(0);
  const int64_t row_dim = (rows + values_per_item - 1) / values_per_item;
  std::vector<int64_t> packed_shape = codes.sizes().vec();
  packed_shape[0] = row_dim;
  at::Tensor packed = at::zeros(packed_shape, codes.options());
  // Slice i (rows [i*row_dim, (i+1)*row_dim)) goes to bit offset bits*i of rows [0, row_dim).
  for (int64_t i = 0; i < values_per_item && i * row_dim < rows; ++i) {
    const int64_t start = i * row_dim;
    const int64_t n = std::min(start + row_dim, rows) - start;
    packed.narrow(0, 0, n).bitwise_or_(at::bitwise_left_shift(codes.narrow(0, start, n), bits * i));
  }
  return packed;
}

at::Tensor quanto_unpack(const at::Tensor& packed, int bits, int64_t rows) {
  TORCH_CHECK(bits == 2 || bits == 4, "quanto: unpack bits must be 2 or 4, got ", bits);
  const int64_t values_per_item = 8 / bits;
  const int64_t mask = (1 << bits) - 1;
  std::vector<at::Tensor> parts;
  parts.reserve(values_per_item);
  for (int64_t i = 0; i < values_per_item; ++i) {
    parts.push_back(at::bitwise_and(at::bitwise_right_shift(packed, bits * i), mask));
  }
  return at::cat(parts).narrow(0, 0, rows);
}

QuantoTensor::QuantoTensor(at::Tensor packed, at::Tensor scale, at::Tensor shift, int bits,
                           int axis, int64_t group, std::vector<int64_t> shape)
    : packed_(std::move(packed)),
      scale_(std::move(scale)),
      shift_(std::move(shift)),
      bits_(bits),
      axis_(axis),
      group_(group),
      shape_(std::move(shape)) {}

at::Tensor QuantoTensor::codes() const {
  // Grouped rows: N/G for axis 0, G for axis -1.
  int64_t numel = 1;
  for (int64_t s : shape_) numel *= s;
  const int64_t rows = axis_ == 0 ? numel / group_ : group_;
  return quanto_unpack(packed_, bits_, rows);
}

at::Tensor QuantoTensor::dequantize() const {
  // QBitsDequantizer.forward: dqt = scale * data; dqt -= shift; ungroup.
  at::Tensor dqt = at::mul(scale_, codes());
  dqt.sub_(shift_);
  return quanto_ungroup(dqt, axis_, shape_);
}

int64_t QuantoTensor::bytes() const {
  return packed_.numel() * static_cast<int64_t>(packed_.element_size()) +
         scale_.numel() * static_cast<int64_t>(scale_.element_size()) +
         shift_.numel() * static_cast<int64_t>(shift_.element_size());
}

QuantoQuantizer::QuantoQuantizer(QuantoOptions options) : options_(options) {
  TORCH_CHECK(options_.bits == 2 || options_.bits == 4,
              "quanto: bits must be 2 or 4 (qint2/qint4), got ", options_.bits);
  TORCH_CHECK(options_.axis == 0 || options_.axis == -1, "quanto: axis must be 0 or -1, got ",
              options_.axis);
  TORCH_CHECK(options_.group > 0, "quanto: group must be positive, got ", options_.group);
}

QuantoTensor QuantoQuantizer::quantize_tensor(const at::Tensor& t) const {
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), "quanto: quantize takes a float tensor, got ",
              t.scalar_type());
  const int bits = options_.bits;
  // MaxOptimizer (AffineOptimizer.__call__): a grouped axis of size 1 becomes per-tensor, whose
  // reduction is over dim 0 — for axis 0 that makes a single group per-element (header).
  const at::Tensor grouped = quanto_group(t, options_.axis, options_.group);  // [rows, cols]
  const int64_t dim = (options_.axis == 0 && grouped.size(0) != 1) ? 1 : 0;
  const at::Tensor rmin = at::amin(grouped, {dim}, /*keepdim=*/true);
  const at::Tensor rmax = at::amax(grouped, {dim}, /*keepdim=*/true);
  const int64_t qrange = (int64_t{1} << bits) - 1;  // qmax - qmin
  at::Tensor scale = at::div(at::sub(rmax, rmin), qrange);
  at::Tensor shift = at::neg(rmin);
  // quantize_affine with a float shift.
  at::Tensor data = at::round(at::div(at::add(grouped, shift), scale));
  // 0/0 (constant group) is NaN, whose u8 cast is implementation-defined: q = 0 (x86's result).
  data.masked_fill_(at::isnan(data), 0);
  const at::Tensor codes = at::clamp(data, 0, qrange).to(at::kByte);
  return QuantoTensor(quanto_pack(codes, bits), std::move(scale), std::move(shift), bits,
                      options_.axis, options_.group, t.sizes().vec());
}

std::unique_ptr<models::QuantizedTensor> QuantoQuantizer::quantize(const at::Tensor& t) const {
  return std::make_unique<QuantoTensor>(quantize_tensor(t));
}

std::string QuantoQuantizer::describe() const {
  return "quanto:bits=" + std::to_string(options_.bits) +
         ",group=" + std::to_string(options_.group) + ",axis=" + std::to_string(options_.axis);
}

}  // namespace mlab::methods
