#include "models/runtime/dense_kv_cache.hpp"

#include <ATen/ATen.h>

#include <limits>

#include "compat/torch_compat.hpp"
#include "core/error.hpp"

namespace mlab::models {

at::Tensor causal_padding_mask(const at::Tensor& valid, int64_t L) {
  const int64_t S = valid.size(-1);
  const auto opts = valid.options();
  const at::Tensor causal = compat::causal_mask(L, S, opts);
  const at::Tensor self = at::cat({at::zeros({L, S - L}, opts), at::eye(L, opts)}, 1);
  return valid.unsqueeze(-2).logical_and(causal).logical_or(self);
}

at::Tensor grow_along(const at::Tensor& t, int64_t dim, int64_t capacity, int64_t size) {
  auto shape = t.sizes().vec();
  shape[dim] = capacity;
  at::Tensor out = at::empty(shape, t.options());
  if (size > 0) out.narrow(dim, 0, size).copy_(t.narrow(dim, 0, size));
  return out;
}

at::Tensor KvCache::attention_stat(const at::Tensor&, double, AttentionStat) const {
  MLAB_FAIL("a ", kind(),
            " cache computes no attention statistics itself (its attention layer hands them to "
            "prune())");
}

void KvCache::prune(const at::Tensor& stat, const at::Tensor& image, int64_t new_tokens) {
  if (!pruner_) return;
  const at::Tensor valid = token_valid();
  const at::Tensor keep = pruner_->select(stat, valid, image, new_tokens, kv_heads());
  if (keep.defined()) this->keep(keep);
  after_prune();
}

AttentionImpl parse_attention_impl(std::string_view name) {
  if (name == "sdpa") return AttentionImpl::kSdpa;
  if (name == "eager") return AttentionImpl::kEager;
  MLAB_FAIL("unknown attention implementation '", name, "' (expected sdpa or eager)");
}

std::string_view attention_impl_name(AttentionImpl impl) {
  return impl == AttentionImpl::kSdpa ? "sdpa" : "eager";
}

DenseKvCache::DenseKvCache(AttentionImpl impl, int64_t reserve_tokens)
    : impl_(impl), reserve_tokens_(reserve_tokens) {}

void DenseKvCache::grow(int64_t needed) {
  const int64_t capacity = k_.size(2);
  if (needed <= capacity) return;
  const int64_t cap = std::max({needed, 2 * capacity, reserve_tokens_});
  k_ = grow_along(k_, 2, cap, size_);
  v_ = grow_along(v_, 2, cap, size_);
  valid_ = grow_along(valid_, 2, cap, size_);
}

void DenseKvCache::append(const at::Tensor& k, const at::Tensor& v, const at::Tensor& valid) {
  TORCH_CHECK(k.dim() == 4 && v.dim() == 4 && k.sizes().slice(0, 3) == v.sizes().slice(0, 3),
              "DenseKvCache::append: k ", k.sizes(), " and v ", v.sizes(),
              " must be [B, H_kv, L, D]");
  const int64_t L = k.size(2);
  if (!k_.defined()) {
    const int64_t cap = std::max(L, reserve_tokens_);
    k_ = at::empty({k.size(0), k.size(1), cap, k.size(3)}, k.options());
    v_ = at::empty({v.size(0), v.size(1), cap, v.size(3)}, v.options());
    valid_ = at::empty({k.size(0), 1, cap}, k.options().dtype(at::kBool));
  } else {
    TORCH_CHECK(k.size(0) == k_.size(0) && k.size(1) == k_.size(1) && k.size(3) == k_.size(3) &&
                    v.size(3) == v_.size(3),
                "DenseKvCache::append: k ", k.sizes(), " does not match the cache [", k_.size(0),
                ", ", k_.size(1), ", S, ", k_.size(3), "]");
    grow(size_ + L);
  }
  k_.narrow(2, size_, L).copy_(k);
  v_.narrow(2, size_, L).copy_(v);
  auto valid_slot = valid_.narrow(2, size_, L);
  if (valid.defined()) {
    TORCH_CHECK(valid.dim() == 2 && valid.size(0) == k.size(0) && valid.size(1) == L,
                "DenseKvCache::append: valid ", valid.sizes(), " must be [B, L] = [", k.size(0),
                ", ", L, "]");
    valid_slot.copy_(valid.unsqueeze(1));
    if (all_valid_ && !valid.all().item<bool>()) all_valid_ = false;
  } else {
    valid_slot.fill_(true);
  }
  size_ += L;
}

at::Tensor DenseKvCache::keys() const { return k_.narrow(2, 0, size_); }
at::Tensor DenseKvCache::values() const { return v_.narrow(2, 0, size_); }
at::Tensor DenseKvCache::valid() const { return valid_.narrow(2, 0, size_); }

namespace {

// bool [B, 1 | H, L, S] (causal_padding_mask, KV-head masks repeated for the query heads).
at::Tensor mask_for(const at::Tensor& valid, int64_t L, int64_t n_rep) {
  at::Tensor mask = causal_padding_mask(valid, L);
  if (mask.size(1) > 1 && n_rep > 1) mask = mask.repeat_interleave(n_rep, 1);
  return mask;
}

}  // namespace

at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k_in, const at::Tensor& v_in,
                           const at::Tensor& valid, bool all_valid, AttentionImpl impl,
                           double scale) {
  TORCH_CHECK(q.dim() == 4 && k_in.dim() == 4 && q.size(0) == k_in.size(0) &&
                  q.size(1) % k_in.size(1) == 0 && q.size(3) == k_in.size(3) &&
                  q.size(2) <= k_in.size(2),
              "attention: q ", q.sizes(), " does not fit the cached keys ", k_in.sizes());
  const int64_t L = q.size(2);
  const int64_t n_rep = q.size(1) / k_in.size(1);
  at::Tensor k = k_in, v = v_in;
  std::optional<at::Tensor> mask;
  bool is_causal = false;
  if (!all_valid) {
    mask = mask_for(valid, L, n_rep);
  } else if (L > 1) {
    is_causal = true;  // no padding: plain causal, bottom-right aligned (compat)
  }
  if (impl == AttentionImpl::kEager) {
    if (n_rep > 1) {
      k = k.repeat_interleave(n_rep, 1);
      v = v.repeat_interleave(n_rep, 1);
    }
    return std::get<0>(compat::attention_with_weights(q, k, v, mask, is_causal, scale));
  }
  return compat::sdpa_gqa(q, k, v, mask, is_causal, scale);
}

at::Tensor reduce_attention_stat(AttentionStat which, int64_t L, int64_t per_query,
                                 const std::function<at::Tensor(int64_t, int64_t)>& probs) {
  TORCH_CHECK(which != AttentionStat::kNone && L > 0, "attention statistic: none asked");
  if (which == AttentionStat::kLastQuery) return probs(L - 1, 1).squeeze(2);
  // Blocks of queries so that [B, H, block, S] stays small for long prompts.
  const int64_t block =
      std::max<int64_t>(1, kAttentionStatBlockElements / std::max<int64_t>(1, per_query));
  at::Tensor sum;
  for (int64_t from = 0; from < L; from += block) {
    const at::Tensor part = probs(from, std::min(block, L - from)).sum(2);
    sum = sum.defined() ? sum + part : part;
  }
  return sum;
}

at::Tensor dense_attention_stat(const at::Tensor& q, const at::Tensor& keys,
                                const at::Tensor& valid, double scale, AttentionStat which) {
  TORCH_CHECK(
      q.dim() == 4 && keys.dim() == 4 && q.size(1) % keys.size(1) == 0 && q.size(2) <= keys.size(2),
      "attention statistic: q ", q.sizes(), " does not fit the cached keys ", keys.sizes());
  const int64_t L = q.size(2), H = q.size(1), n_rep = H / keys.size(1), S = keys.size(2);
  // f32 keys repeated per query head: [B, H, S, D]
  const at::Tensor k = keys.to(at::kFloat).repeat_interleave(n_rep, 1);
  const at::Tensor mask = mask_for(valid, L, n_rep);  // bool [B, 1 | H, L, S]
  auto probs = [&](int64_t from, int64_t count) {
    at::Tensor s = at::matmul(q.narrow(2, from, count).to(at::kFloat), k.transpose(-1, -2)) * scale;
    s = s.masked_fill(mask.narrow(2, from, count).logical_not(),
                      -std::numeric_limits<float>::infinity());
    return at::softmax(s, -1);  // f32 [B, H, count, S]
  };
  return reduce_attention_stat(which, L, q.size(0) * H * S, probs);
}

at::Tensor DenseKvCache::attend(const at::Tensor& q, double scale) {
  TORCH_CHECK(k_.defined(), "DenseKvCache::attend: the cache is empty");
  return dense_attention(q, keys(), values(), valid(), all_valid_, impl_, scale);
}

at::Tensor DenseKvCache::attention_stat(const at::Tensor& q, double scale,
                                        AttentionStat which) const {
  TORCH_CHECK(k_.defined(), "DenseKvCache::attention_stat: the cache is empty");
  return dense_attention_stat(q, keys(), valid(), scale, which);
}

void DenseKvCache::keep(const at::Tensor& indices) {
  TORCH_CHECK(k_.defined() && indices.dim() == 3 && indices.size(0) == k_.size(0) &&
                  indices.size(1) == k_.size(1),
              "DenseKvCache::keep: indices ", indices.sizes(), " must be [B, H_kv, S']");
  const auto idx = indices.to(k_.device(), at::kLong);
  const auto idx4 = idx.unsqueeze(-1);
  k_ = keys().gather(2, idx4.expand({-1, -1, -1, k_.size(3)})).contiguous();
  v_ = values().gather(2, idx4.expand({-1, -1, -1, v_.size(3)})).contiguous();
  valid_ = valid().expand({-1, k_.size(1), -1}).gather(2, idx).contiguous();
  size_ = idx.size(2);
  all_valid_ = false;
}

int64_t DenseKvCache::bytes() const {
  if (!k_.defined()) return 0;
  const int64_t per_token = k_.size(0) * k_.size(1) * k_.size(3) * k_.element_size() +
                            v_.size(0) * v_.size(1) * v_.size(3) * v_.element_size();
  return per_token * size_;
}

int64_t DenseKvCache::reserved_bytes() const {
  if (!k_.defined()) return 0;
  return static_cast<int64_t>(k_.nbytes() + v_.nbytes() + valid_.nbytes());
}

}  // namespace mlab::models
