#include "models/runtime/quantized_kv_cache.hpp"

#include <ATen/ATen.h>

#include <tuple>
#include <utility>

#include "core/error.hpp"
#include "models/runtime/dense_kv_cache.hpp"

namespace mlab::models {

QuantizedKvCache::QuantizedKvCache(std::shared_ptr<const Quantizer> key_quantizer,
                                   std::shared_ptr<const Quantizer> value_quantizer,
                                   int64_t residual, AttentionImpl impl)
    : key_quantizer_(std::move(key_quantizer)),
      value_quantizer_(std::move(value_quantizer)),
      residual_(residual),
      impl_(impl) {
  MLAB_CHECK(key_quantizer_ && value_quantizer_, "QuantizedKvCache: a quantizer is missing");
  MLAB_CHECK(residual_ >= 0, "QuantizedKvCache: residual length must be >= 0, got ", residual_);
}

void QuantizedKvCache::quantize_all(const at::Tensor& k, const at::Tensor& v) {
  q_k_ = key_quantizer_->quantize(k.contiguous());
  q_v_ = value_quantizer_->quantize(v.contiguous());
  quantized_tokens_ = k.size(2);
  res_k_ = at::Tensor();
  res_v_ = at::Tensor();
}

std::pair<at::Tensor, at::Tensor> QuantizedKvCache::stored(const at::Tensor& k,
                                                           const at::Tensor& v) const {
  std::vector<at::Tensor> ks = {q_k_->dequantize()}, vs = {q_v_->dequantize()};
  if (res_k_.defined()) {
    ks.push_back(res_k_);
    vs.push_back(res_v_);
  }
  if (k.defined()) {
    ks.push_back(k);
    vs.push_back(v);
  }
  return {at::cat(ks, 2), at::cat(vs, 2)};
}

void QuantizedKvCache::append(const at::Tensor& k, const at::Tensor& v, const at::Tensor& valid) {
  TORCH_CHECK(k.dim() == 4 && v.dim() == 4 && k.sizes().slice(0, 3) == v.sizes().slice(0, 3),
              "QuantizedKvCache::append: k ", k.sizes(), " and v ", v.sizes(),
              " must be [B, H_kv, L, D]");
  const int64_t B = k.size(0), L = k.size(2);
  kv_heads_ = k.size(1);
  at::Tensor new_valid = valid.defined() ? valid.to(at::kBool).unsqueeze(1)
                                         : at::ones({B, 1, L}, k.options().dtype(at::kBool));
  if (valid.defined() && all_valid_ && !valid.all().item<bool>()) all_valid_ = false;
  if (!q_k_) {
    // The prefill: quantized for later steps, attended unquantized now.
    quantize_all(k, v);
    cur_k_ = k;
    cur_v_ = v;
    valid_ = new_valid;
    size_ = L;
    return;
  }
  TORCH_CHECK(k.size(0) == valid_.size(0), "QuantizedKvCache::append: batch ", k.size(0),
              " does not match the cache's ", valid_.size(0));
  std::tie(cur_k_, cur_v_) = stored(k, v);
  if (valid_.size(1) != 1) new_valid = new_valid.expand({-1, valid_.size(1), -1});
  valid_ = at::cat({valid_, new_valid}, 2);
  size_ += L;
  if (residual_tokens() + L >= residual_) {
    quantize_all(cur_k_, cur_v_);
  } else {
    res_k_ = res_k_.defined() ? at::cat({res_k_, k}, 2) : k.contiguous();
    res_v_ = res_v_.defined() ? at::cat({res_v_, v}, 2) : v.contiguous();
  }
}

at::Tensor QuantizedKvCache::attend(const at::Tensor& q, double scale) {
  TORCH_CHECK(cur_k_.defined(),
              "QuantizedKvCache::attend: nothing appended since the last "
              "forward");
  at::Tensor out = dense_attention(q, cur_k_, cur_v_, valid_, all_valid_, impl_, scale);
  if (pruner() == nullptr) after_prune();  // nobody needs the keys any more
  return out;
}

at::Tensor QuantizedKvCache::attention_stat(const at::Tensor& q, double scale,
                                            AttentionStat which) const {
  TORCH_CHECK(cur_k_.defined(), "QuantizedKvCache::attention_stat: no forward in progress");
  return dense_attention_stat(q, cur_k_, valid_, scale, which);
}

void QuantizedKvCache::after_prune() {
  cur_k_ = at::Tensor();
  cur_v_ = at::Tensor();
}

void QuantizedKvCache::keep(const at::Tensor& indices) {
  TORCH_CHECK(q_k_ && indices.dim() == 3 && indices.size(0) == valid_.size(0),
              "QuantizedKvCache::keep: indices ", indices.sizes(), " must be [B, H_kv, S']");
  auto [k, v] = cur_k_.defined() ? std::pair(cur_k_, cur_v_) : stored({}, {});
  TORCH_CHECK(indices.size(1) == k.size(1), "QuantizedKvCache::keep: indices ", indices.sizes(),
              " must be [B, H_kv = ", k.size(1), ", S']");
  const auto idx = indices.to(k.device(), at::kLong);
  const auto idx4 = idx.unsqueeze(-1);
  k = k.gather(2, idx4.expand({-1, -1, -1, k.size(3)}));
  v = v.gather(2, idx4.expand({-1, -1, -1, v.size(3)}));
  valid_ = valid_.expand({-1, k.size(1), -1}).gather(2, idx).contiguous();
  // NOTE(F7): pruning a quantized cache re-quantizes what it keeps (HQQ's strided groups cannot be
  // gathered; Quanto's per-token groups could be, at the same values up to re-rounding).
  quantize_all(k, v);
  if (cur_k_.defined()) {
    cur_k_ = k;
    cur_v_ = v;
  }
  size_ = idx.size(2);
  all_valid_ = false;
}

int64_t QuantizedKvCache::bytes() const {
  if (!q_k_) return 0;
  int64_t b = q_k_->bytes() + q_v_->bytes();
  if (res_k_.defined()) b += static_cast<int64_t>(res_k_.nbytes() + res_v_.nbytes());
  return b;
}

int64_t QuantizedKvCache::reserved_bytes() const {
  int64_t b = bytes();
  if (cur_k_.defined()) b += static_cast<int64_t>(cur_k_.nbytes() + cur_v_.nbytes());
  return b;
}

}  // namespace mlab::models
