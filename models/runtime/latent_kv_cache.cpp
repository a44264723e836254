#include "models/runtime/latent_kv_cache.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"

namespace mlab::models {

void LatentKvCache::grow(int64_t needed) {
  const int64_t capacity = c_.size(1);
  if (needed <= capacity) return;
  const int64_t cap = std::max({needed, 2 * capacity, reserve_tokens_});
  c_ = grow_along(c_, 1, cap, size_);
  k_rope_ = grow_along(k_rope_, 2, cap, size_);
  image_ = grow_along(image_, 1, cap, size_);
  valid_ = grow_along(valid_, 1, cap, size_);
}

void LatentKvCache::set_quantizer(std::shared_ptr<const Quantizer> quantizer, int64_t residual,
                                  bool rope_too) {
  MLAB_CHECK(!c_.defined(), "LatentKvCache::set_quantizer: the cache already holds tokens");
  MLAB_CHECK(residual >= 0, "LatentKvCache: residual length must be >= 0, got ", residual);
  quantizer_ = std::move(quantizer);
  residual_ = residual;
  rope_too_ = rope_too;
}

void LatentKvCache::materialize() {
  if (!pending_) return;
  c_.narrow(1, 0, quantized_).copy_(q_c_->dequantize().squeeze(1));
  if (q_rope_) k_rope_.narrow(2, 0, quantized_).copy_(q_rope_->dequantize());
  pending_ = false;
}

void LatentKvCache::quantize_stored() {
  q_c_ = quantizer_->quantize(latent().unsqueeze(1).contiguous());  // [B, 1, S, d_c]
  if (rope_too_) q_rope_ = quantizer_->quantize(k_rope().contiguous());
  quantized_ = size_;
  residual_used_ = 0;
  pending_ = true;
}

void LatentKvCache::append_latent(const at::Tensor& c, const at::Tensor& k_rope,
                                  const at::Tensor& image, const at::Tensor& valid) {
  TORCH_CHECK(c.dim() == 3 && k_rope.dim() == 4 && k_rope.size(0) == c.size(0) &&
                  k_rope.size(2) == c.size(1),
              "LatentKvCache::append_latent: c ", c.sizes(), " must be [B, L, d_c] and k_rope ",
              k_rope.sizes(), " [B, H_kv, L, r]");
  const int64_t B = c.size(0), L = c.size(1);
  if (!c_.defined()) {
    const int64_t cap = std::max(L, reserve_tokens_);
    c_ = at::empty({B, cap, c.size(2)}, c.options());
    k_rope_ = at::empty({B, k_rope.size(1), cap, k_rope.size(3)}, k_rope.options());
    image_ = at::zeros({B, cap}, c.options().dtype(at::kBool));
    valid_ = at::ones({B, cap}, c.options().dtype(at::kBool));
  } else {
    TORCH_CHECK(B == c_.size(0) && c.size(2) == c_.size(2) && k_rope.size(1) == k_rope_.size(1) &&
                    k_rope.size(3) == k_rope_.size(3),
                "LatentKvCache::append_latent: c ", c.sizes(), " / k_rope ", k_rope.sizes(),
                " do not match the cache");
    grow(size_ + L);
  }
  c_.narrow(1, size_, L).copy_(c);
  k_rope_.narrow(2, size_, L).copy_(k_rope);
  if (image.defined()) {
    image_.narrow(1, size_, L).copy_(image);
    if (!has_image_ && image.any().item<bool>()) has_image_ = true;
  } else {
    image_.narrow(1, size_, L).fill_(false);
  }
  if (valid.defined()) {
    valid_.narrow(1, size_, L).copy_(valid);
    if (all_valid_ && !valid.all().item<bool>()) all_valid_ = false;
  } else {
    valid_.narrow(1, size_, L).fill_(true);
  }
  size_ += L;
  if (!quantizer_) return;
  if (!q_c_) {
    quantize_stored();  // the prefill: attended unquantized, stored quantized
    return;
  }
  materialize();  // old tokens as the attention must now see them
  if (residual_used_ + L >= residual_) {
    quantize_stored();  // this forward still reads the buffers as they are
  } else {
    residual_used_ += L;
  }
}

void LatentKvCache::append(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  MLAB_FAIL(
      "LatentKvCache holds the MLA latent, not K/V: it is filled and attended by MlaAttention");
}

at::Tensor LatentKvCache::attend(const at::Tensor&, double) {
  MLAB_FAIL(
      "LatentKvCache holds the MLA latent, not K/V: it is filled and attended by MlaAttention");
}

at::Tensor LatentKvCache::latent() const { return c_.narrow(1, 0, size_); }
at::Tensor LatentKvCache::k_rope() const { return k_rope_.narrow(2, 0, size_); }
at::Tensor LatentKvCache::image() const { return image_.narrow(1, 0, size_); }
at::Tensor LatentKvCache::valid() const { return valid_.narrow(1, 0, size_); }

at::Tensor LatentKvCache::mask(int64_t L) const {
  return causal_padding_mask(valid().unsqueeze(1), L);
}

void LatentKvCache::keep(const at::Tensor& indices) {
  if (quantizer_ && q_c_) materialize();
  TORCH_CHECK(
      c_.defined() && indices.dim() == 3 && indices.size(0) == c_.size(0) && indices.size(1) == 1,
      "LatentKvCache::keep: indices ", indices.sizes(), " must be [B, 1, S']");
  const at::Tensor idx = indices.to(c_.device(), at::kLong).squeeze(1);  // [B, S']
  c_ = latent().gather(1, idx.unsqueeze(-1).expand({-1, -1, c_.size(2)})).contiguous();
  k_rope_ =
      k_rope()
          .gather(
              2,
              idx.view({idx.size(0), 1, -1, 1}).expand({-1, k_rope_.size(1), -1, k_rope_.size(3)}))
          .contiguous();
  image_ = image().gather(1, idx).contiguous();
  valid_ = valid().gather(1, idx).contiguous();
  size_ = idx.size(1);
  all_valid_ = false;
  // NOTE(F7): a quantized latent re-quantizes what it keeps (as QuantizedKvCache::keep).
  if (quantizer_ && q_c_) quantize_stored();
}

int64_t LatentKvCache::bytes() const {
  if (!c_.defined()) return 0;
  const int64_t B = c_.size(0);
  if (quantizer_ && q_c_) {
    const int64_t rest = size_ - quantized_;  // residual tokens in full precision
    int64_t b = q_c_->bytes() + B * rest * c_.size(2) * c_.element_size();
    const int64_t rope_token = k_rope_.size(1) * k_rope_.size(3) * k_rope_.element_size();
    b += q_rope_ ? q_rope_->bytes() + B * rest * rope_token : B * size_ * rope_token;
    return b;
  }
  const int64_t per_token =
      c_.size(2) * c_.element_size() + k_rope_.size(1) * k_rope_.size(3) * k_rope_.element_size();
  return B * size_ * per_token;
}

int64_t LatentKvCache::flag_bytes() const {
  return c_.defined() ? (2 * c_.size(0) * size_ + 7) / 8 : 0;
}

int64_t LatentKvCache::reserved_bytes() const {
  if (!c_.defined()) return 0;
  return static_cast<int64_t>(c_.nbytes() + k_rope_.nbytes() + image_.nbytes() + valid_.nbytes());
}

}  // namespace mlab::models
