#include "methods/hqq/hqq_quantizer.hpp"

#include <ATen/ATen.h>

#include <tuple>
#include <utility>

namespace mlab::methods {

// Every tensor op below is the one hqq 0.2.2 runs (hqq/core/{quantize,optimize,bitpack}.py), in
// the same order and dtype, so that each intermediate is rounded as PyTorch eager rounds it.

namespace {

bool supported_bits(int bits) {
  return bits == 1 || bits == 2 || bits == 3 || bits == 4 || bits == 8;
}

// shrink_lp_op: sign(x) * relu(|x| - |x|^(p-1) / beta) (p = 1: relu(|x| - 1/beta)).
at::Tensor shrink_lp(const at::Tensor& x, double beta, double lp_norm) {
  if (lp_norm == 1) return at::mul(at::sign(x), at::relu(at::sub(at::abs(x), 1.0 / beta)));
  return at::mul(
      at::sign(x),
      at::relu(at::sub(at::abs(x), at::mul(at::pow(at::abs(x), lp_norm - 1), 1.0 / beta))));
}

}  // namespace

at::Tensor hqq_pack(const at::Tensor& codes, int bits) {
  TORCH_CHECK(supported_bits(bits), "hqq: pack bits must be 1, 2, 3, 4 or 8, got ", bits);
  TORCH_CHECK(codes.dim() == 2, "hqq: pack takes 2-D codes, got ", codes.sizes());
  const int64_t rows = codes.size(0);
  if (bits == 8) return codes.to(at::kByte);  // pack_8bit_u8
  if (bits == 3) {
    // pack_3bit_32: zero-pad the rows to a multiple of 10, then 10 slices per int32 word.
    at::Tensor w =
        at::zeros({10 * ((rows + 9) / 10), codes.size(1)}, codes.options().dtype(at::kInt));
    w.narrow(0, 0, rows).copy_(codes);
    const int64_t step = w.size(0) / 10;
    at::Tensor packed = at::bitwise_left_shift(w.narrow(0, 0, step), 27);
    for (int64_t k = 1; k < 10; ++k) {
      packed =
          at::bitwise_or(packed, at::bitwise_left_shift(w.narrow(0, k * step, step), 27 - 3 * k));
    }
    return packed;
  }
  // pack_{4,2,1}bit_u8: slice k of rows/(8/b) rows goes to bits [b*(8/b-1-k), b*(8/b-k)).
  const int64_t per_byte = 8 / bits;
  TORCH_CHECK(rows % per_byte == 0, "hqq: ", bits, "-bit packing needs rows divisible by ",
              per_byte, " (the package fails otherwise), got ", rows, " rows");
  const at::Tensor q = codes.to(at::kByte);
  const int64_t step = rows / per_byte;
  at::Tensor packed = at::bitwise_left_shift(q.narrow(0, 0, step), bits * (per_byte - 1));
  for (int64_t k = 1; k < per_byte; ++k) {
    const at::Tensor slice = q.narrow(0, k * step, step);
    const int64_t shift = bits * (per_byte - 1 - k);
    packed = at::bitwise_or(packed, shift > 0 ? at::bitwise_left_shift(slice, shift) : slice);
  }
  return packed;
}

at::Tensor hqq_unpack(const at::Tensor& packed, int bits, int64_t rows, at::ScalarType dtype) {
  TORCH_CHECK(supported_bits(bits), "hqq: unpack bits must be 1, 2, 3, 4 or 8, got ", bits);
  if (bits == 8) return packed.to(dtype);  // unpack_8bit_u8
  const int64_t per_word = bits == 3 ? 10 : 8 / bits;
  const int64_t step = packed.size(0);
  at::Tensor out = at::empty({per_word * step, packed.size(1)}, packed.options().dtype(dtype));
  const int64_t top = bits == 3 ? 27 : bits * (per_word - 1);
  for (int64_t k = 0; k < per_word; ++k) {
    const int64_t shift = top - bits * k;
    const int64_t mask = ((int64_t{1} << bits) - 1) << shift;
    out.narrow(0, k * step, step)
        .copy_(at::bitwise_right_shift(at::bitwise_and(packed, mask), shift));
  }
  return out.narrow(0, 0, rows);
}

HqqTensor::HqqTensor(at::Tensor packed, at::Tensor scale, at::Tensor zero, int bits, int axis,
                     int64_t group, std::vector<int64_t> shape)
    : packed_(std::move(packed)),
      scale_(std::move(scale)),
      zero_(std::move(zero)),
      bits_(bits),
      axis_(axis),
      group_(group),
      shape_(std::move(shape)) {}

at::Tensor HqqTensor::codes() const {
  int64_t numel = 1;
  for (int64_t s : shape_) numel *= s;
  const int64_t rows = axis_ == 0 ? group_ : numel / group_;
  return hqq_unpack(packed_, bits_, rows, at::kByte);
}

at::Tensor HqqTensor::dequantize() const {
  // Quantizer.dequantize: unpack into the compute dtype, (W_r - zero) * scale, reshape.
  int64_t numel = 1;
  for (int64_t s : shape_) numel *= s;
  const int64_t rows = axis_ == 0 ? group_ : numel / group_;
  const at::Tensor w_r = hqq_unpack(packed_, bits_, rows, scale_.scalar_type());
  return at::mul(at::sub(w_r, zero_), scale_).reshape(shape_);
}

int64_t HqqTensor::bytes() const {
  return packed_.numel() * static_cast<int64_t>(packed_.element_size()) +
         scale_.numel() * static_cast<int64_t>(scale_.element_size()) +
         zero_.numel() * static_cast<int64_t>(zero_.element_size());
}

HqqQuantizer::HqqQuantizer(HqqOptions options) : options_(options) {
  TORCH_CHECK(supported_bits(options_.bits), "hqq: bits must be 1, 2, 3, 4 or 8, got ",
              options_.bits);
  TORCH_CHECK(options_.axis == 0 || options_.axis == 1, "hqq: axis must be 0 or 1, got ",
              options_.axis);
  TORCH_CHECK(options_.group > 0, "hqq: group must be positive, got ", options_.group);
  TORCH_CHECK(options_.iters > 0, "hqq: iters must be positive, got ", options_.iters);
  TORCH_CHECK(!options_.compute_dtype || at::isFloatingType(*options_.compute_dtype),
              "hqq: compute_dtype must be a float dtype, got ", *options_.compute_dtype);
}

HqqProximalResult hqq_optimize_proximal(const at::Tensor& w, const at::Tensor& scale,
                                        const at::Tensor& zero, int64_t qmax, int axis,
                                        const HqqOptions& options) {
  // optimize_weights_proximal_legacy with device = CPU: dtype f32.
  const double lp_norm = options.lp_norm;
  double beta = options.beta;
  const at::Tensor w_f = w.to(at::kFloat);
  HqqProximalResult r;
  r.scale = scale.to(at::kFloat);
  at::Tensor z = zero.to(at::kFloat);
  double best_error = 1e4;
  for (int i = 0; i < options.iters; ++i) {
    const at::Tensor w_q = at::clamp(at::round(at::add(at::mul(w_f, r.scale), z)), 0, qmax);
    const at::Tensor w_r = at::div(at::sub(w_q, z), r.scale);
    const at::Tensor w_e = shrink_lp(at::sub(w_f, w_r), beta, lp_norm);
    z = at::mean(at::sub(w_q, at::mul(at::sub(w_f, w_e), r.scale)), {axis}, /*keepdim=*/true);
    beta *= options.kappa;
    const double error = at::abs(at::sub(w_f, w_r)).mean().item<float>();
    r.zeros.push_back(z);
    r.errors.push_back(error);
    if (error < best_error) {
      best_error = error;
    } else {
      break;  // NB: the zero updated in this iteration is kept (as in hqq 0.2.2)
    }
  }
  r.zero = z;
  r.codes = at::clamp(at::round(at::add(at::mul(w, r.scale), r.zero)), 0, qmax);
  return r;
}

HqqMinMax hqq_minmax(const at::Tensor& t, const HqqOptions& options) {
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), "hqq: quantize takes a float tensor, got ",
              t.scalar_type());
  const int64_t group = options.group;
  const int axis = options.axis;
  TORCH_CHECK(t.numel() > 0 && t.numel() % group == 0,
              "hqq: group_size should be divisible by the total tensor dimensions. shape: ",
              t.sizes(), ", group_size: ", group);
  HqqMinMax m;
  m.w = t.to(at::kFloat);
  m.w = axis == 1 ? m.w.reshape({-1, group}) : m.w.reshape({group, -1});
  const at::Tensor w_min = std::get<0>(at::min(m.w, axis, /*keepdim=*/true));
  const at::Tensor w_max = std::get<0>(at::max(m.w, axis, /*keepdim=*/true));
  m.qmax = (int64_t{1} << options.bits) - 1;
  // (max_v / (_max - _min)).clamp(max=2e4): int / tensor is reciprocal() * int in PyTorch.
  m.scale = at::clamp(at::mul(at::reciprocal(at::sub(w_max, w_min)), m.qmax), std::nullopt, 2e4);
  m.zero = at::mul(at::neg(w_min), m.scale);
  return m;
}

HqqTensor HqqQuantizer::quantize_tensor(const at::Tensor& t) const {
  const at::ScalarType compute = options_.compute_dtype.value_or(t.scalar_type());
  HqqMinMax m = hqq_minmax(t, options_);
  at::Tensor codes;
  if (options_.optimize) {
    HqqProximalResult r =
        hqq_optimize_proximal(m.w, m.scale, m.zero, m.qmax, options_.axis, options_);
    codes = std::move(r.codes);
    m.scale = std::move(r.scale);
    m.zero = std::move(r.zero);
  } else {
    codes = at::clamp(at::round(at::add(at::mul(m.w, m.scale), m.zero)), 0, m.qmax);
  }
  // meta["scale"] = 1.0 / scale (= reciprocal() * 1.0); Quantizer.cuda casts the meta.
  at::Tensor meta_scale = at::mul(at::reciprocal(m.scale), 1.0).to(compute);
  at::Tensor meta_zero = m.zero.to(compute);
  return HqqTensor(hqq_pack(codes, options_.bits), std::move(meta_scale), std::move(meta_zero),
                   options_.bits, options_.axis, options_.group, t.sizes().vec());
}

std::unique_ptr<models::QuantizedTensor> HqqQuantizer::quantize(const at::Tensor& t) const {
  return std::make_unique<HqqTensor>(quantize_tensor(t));
}

std::string HqqQuantizer::describe() const {
  std::string s = "hqq:bits=" + std::to_string(options_.bits) +
                  ",group=" + std::to_string(options_.group) +
                  ",axis=" + std::to_string(options_.axis);
  if (options_.optimize) s += ",optimize=proximal";
  if (options_.compute_dtype)
    s += std::string(",compute_dtype=") + c10::toString(*options_.compute_dtype);
  return s;
}

}  // namespace mlab::methods
