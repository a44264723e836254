#pragma once
// Quantizer: the storage format of a quantized KV cache (DESIGN.md §3 "caches own the storage").
// A quantizer turns a full-precision tensor into a packed block and back; the cache decides when
// (transformers' QuantizedCache schedule, models/runtime/quantized_kv_cache.hpp). The methods
// implement it: methods/quanto (optimum-quanto 0.2.7 MaxOptimizer + WeightQBitsTensor math) and
// methods/hqq (hqq 0.2.2 Quantizer), each bit-exact with its package (specs/baselines.md §2-3).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

namespace mlab::models {

// One quantized tensor: packed codes plus per-group scales and zero points.
class QuantizedTensor {
 public:
  virtual ~QuantizedTensor() = default;
  // The reconstruction, in the shape and dtype of the tensor that was quantized.
  virtual at::Tensor dequantize() const = 0;
  // Bytes held: packed codes + scales + zero points (what the format needs; no spare capacity).
  virtual int64_t bytes() const = 0;
};

class Quantizer {
 public:
  virtual ~Quantizer() = default;
  // Quantizes `t` (any float dtype, any shape whose numel the group size divides; KV caches pass
  // [B, H_kv, S, D] or the latent [B, 1, S, d_c]). The arithmetic follows the package the
  // quantizer reproduces, in the dtype that package uses (Quanto: t's dtype; HQQ: f32 math, bf16
  // metadata). Throws c10::Error when the group size does not divide what the axis needs.
  virtual std::unique_ptr<QuantizedTensor> quantize(const at::Tensor& t) const = 0;
  // Bits per element of the codes (2, 4, ...).
  virtual int bits() const = 0;
  // "quanto:bits=4,group=64,axis=0" and the like, for logs.
  virtual std::string describe() const = 0;
};

}  // namespace mlab::models
